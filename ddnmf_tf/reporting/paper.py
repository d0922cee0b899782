"""The paper's numbers that the package reproduces: Tables 1-3 of Chen, Jin, Liu and Zhang (2021)."""


PAPER = "Chen, Jin, Liu and Zhang (2021), Front. Neurorobot. 15:701194"
# Tables 1 and 2 of the paper: (ACC, NMI, ARI) on 10,000 images each.
PAPER_TABLES = {
    "mnist": {
        "K-means": (0.5548, 0.5189, 0.3878), "GMM": (0.5604, 0.5357, 0.4097),
        "NMF+K-means": (0.5156, 0.4273, 0.3053), "NMF+GMM": (0.5518, 0.4396, 0.3277),
        "AE2+K-means": (0.5885, 0.5252, 0.4067), "AE2+GMM": (0.6303, 0.5553, 0.4439),
        "AE2+NMF+K-means": (0.5325, 0.4935, 0.3749), "AE2+NMF+GMM": (0.5732, 0.4928, 0.3863),
        "DDNMF+K-means": (0.8115, 0.7015, 0.6489), "DDNMF+GMM": (0.7484, 0.6567, 0.5742),
    },
    "fashion_mnist": {
        "K-means": (0.4873, 0.5160, 0.3517), "GMM": (0.5226, 0.5138, 0.3538),
        "NMF+K-means": (0.5299, 0.5331, 0.3665), "NMF+GMM": (0.5422, 0.5063, 0.3340),
        "AE2+K-means": (0.5386, 0.5359, 0.3822), "AE2+GMM": (0.5854, 0.4986, 0.3644),
        "AE2+NMF+K-means": (0.5538, 0.5515, 0.3874), "AE2+NMF+GMM": (0.5637, 0.5225, 0.3637),
        "DDNMF+K-means": (0.6312, 0.5967, 0.4676), "DDNMF+GMM": (0.6547, 0.6065, 0.4740),
    },
}
NOISE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
# Table 3 of the paper: ACC at each masking level (its NMI and ARI rows are not restated in DESIGN.md).
PAPER_NOISE_ACC = {
    ("mnist", "DDNMF"): dict(zip(NOISE_LEVELS, (0.7381, 0.6653, 0.6927, 0.7840, 0.5831, 0.6528, 0.7406, 0.6726))),
    ("mnist", "AE1"): dict(zip(NOISE_LEVELS, (0.7622, 0.7138, 0.7026, 0.7223, 0.6967, 0.6790, 0.7059, 0.5704))),
    ("fashion_mnist", "DDNMF"): dict(zip(NOISE_LEVELS, (0.6036, 0.5913, 0.5712, 0.6312, 0.5769, 0.5260, 0.4848, 0.4959))),
    ("fashion_mnist", "AE1"): dict(zip(NOISE_LEVELS, (0.4727, 0.4655, 0.4689, 0.4838, 0.4705, 0.4709, 0.4580, 0.4797))),
}
