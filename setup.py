from setuptools import find_packages, setup

setup(
    name="ddnmf_tf",
    version="0.1.0",
    description="DDNMF (deep denoising non-negative matrix factorization, Chen et al. 2021) in TensorFlow/Keras",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    python_requires=">=3.10",
    packages=find_packages(include=["ddnmf_tf", "ddnmf_tf.*"]),
    install_requires=[
        # The plain `tensorflow` wheel runs on CPU-only machines; GPU users add the `gpu` extra.
        "tensorflow>=2.16,<2.22",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # needed by tensorflow-datasets 4.9.10, which does not declare it
        "tensorboard>=2.16",
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "matplotlib>=3.8",
        "umap-learn>=0.5",
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.16,<2.22"],
        # bench/ runs on the main requirements; the profiler plugin shows its trace in TensorBoard's Profile tab.
        "bench": ["tensorboard-plugin-profile>=2.16"],
        "dev": ["pytest>=8"],
    },
    entry_points={
        "console_scripts": [
            "ddnmf-train=ddnmf_tf.cli.run:cli",
            "ddnmf-evaluate=ddnmf_tf.cli.evaluate:cli",
            "ddnmf-export=ddnmf_tf.cli.export:cli",
            "ddnmf-encode=ddnmf_tf.cli.encode:cli",
        ],
    },
)
