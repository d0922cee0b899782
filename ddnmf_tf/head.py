"""The clustering head: DEC's Student's t soft assignment of H to K trainable centres, and its self-training target.

After the DDNMF epochs the head trains with the networks for `head_epochs`
(IDEC's joint phase, Guo et al. 2017, on H instead of an autoencoder's code):

    q_ij = (1 + ||h_i - mu_j||^2)^-1 / sum_k (1 + ||h_i - mu_k||^2)^-1        (DEC eq 1)
    p_ij = (q_ij^2 / f_j) / sum_k (q_ik^2 / f_k),  f_j = sum_i q_ij            (DEC eq 3)
    L    = L_in + head_weight * KL(P || Q)                                     (IDEC eq 4)

P is recomputed from the whole training set every `head_update_every`
steps and held fixed in between. The centres mu start from K-means on the
training set's H, or (`head_init="umap_gmm"`) as the means in H of UMAP+GMM's
clusters, whose one-hot assignments are then the first P. UMAP+GMM fits on a
seeded sample of at most `head_init_sample` examples (0: all of them), and the
rest join their nearest centre, so the start's cost stops growing with the
training set.
"""

import keras
import numpy as np
from keras import ops

from ddnmf_tf.config import HEAD_INITS



def squared_distances(h, centers):
    """||h_i - mu_j||^2 of every example and centre: [batch, K] from H [batch, r] and centres [K, r]."""
    offsets = ops.expand_dims(h, 1) - ops.expand_dims(centers, 0)
    return ops.sum(ops.square(offsets), axis=-1)


def soft_assignment(distances):
    """Q from squared distances [batch, K]: Student's t with one degree of freedom (DEC eq 1); rows sum to 1."""
    kernel = 1.0 / (1.0 + distances)
    return kernel / ops.sum(kernel, axis=-1, keepdims=True)


def target_distribution(q):
    """P (DEC eq 3) of a whole set's Q [n, K] (numpy): each q squared, over its cluster's frequency, rows normalised."""
    q = np.asarray(q, np.float64)
    weight = q ** 2 / q.sum(axis=0)
    return (weight / weight.sum(axis=1, keepdims=True)).astype(np.float32)


def soft_assignments(features, centers, chunk=65536):
    """Q of every row of H `features` (numpy [n, r]) to `centers` [K, r], in chunks of `chunk` rows (numpy [n, K])."""
    centers = np.asarray(centers, np.float32)
    return np.concatenate([
        np.asarray(soft_assignment(squared_distances(np.asarray(features[start:start + chunk], np.float32), centers)))
        for start in range(0, len(features), chunk)])


@keras.saving.register_keras_serializable(package="ddnmf_tf")
class ClusteringHead(keras.layers.Layer):
    """Q = soft_assignment(H, centres): the probability of each of `clusters` clusters, [batch, K] from H [batch, r].

    The centres (`centers`, [K, r]) are the layer's one variable, set from
    K-means or UMAP+GMM on H before the head trains (`set_centers`).
    """

    def __init__(self, clusters, **kwargs):
        super().__init__(**kwargs)
        self.clusters = int(clusters)

    def build(self, input_shape):
        self.centers = self.add_weight(name="centers", shape=(self.clusters, int(input_shape[-1])),
                                       initializer="zeros")

    def call(self, h):
        return soft_assignment(squared_distances(h, self.centers))

    def set_centers(self, centers):
        self.centers.assign(np.asarray(centers, np.float32))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.clusters)

    def get_config(self):
        return {**super().get_config(), "clusters": self.clusters}


def start_sample_size(init, sample, count):
    """How many of `count` training examples the `init` start fits: UMAP+GMM's at most `sample` (0: all)."""
    return min(sample, count) if init == "umap_gmm" and sample > 0 else count


def initial_centers(features, clusters, init, seed, umap_neighbors, sample=0):
    """(centres [K, r], first P [n, K] or None) of the head on the training set's H [n, r].

    kmeans: K-means's centres (P then comes from Q). umap_gmm: the mean H
    of each cluster UMAP+GMM finds, and its one-hot assignments as P; a
    cluster it leaves empty takes K-means's centre. With `sample` > 0 and
    fewer than n, UMAP+GMM and that K-means fit on `sample` examples drawn
    with `seed`, and every other example's P is its nearest centre's.
    """
    from ddnmf_tf import evaluation

    if init not in HEAD_INITS:
        raise ValueError(f"unknown head_init {init!r}; choose one of {', '.join(HEAD_INITS)}")
    features = np.asarray(features, np.float32)
    size = start_sample_size(init, sample, len(features))
    fitted = None if size == len(features) else np.sort(np.random.default_rng(seed).choice(len(features), size,
                                                                                           replace=False))
    fit_on = features if fitted is None else features[fitted]
    kmeans = evaluation.fit_kmeans(fit_on, clusters, seed).cluster_centers_
    if init == "kmeans":
        return kmeans.astype(np.float32), None
    assignments = evaluation.cluster(fit_on, "umap_gmm", clusters, seed, umap_neighbors)
    centers = np.array([fit_on[assignments == j].mean(axis=0) if np.any(assignments == j) else kmeans[j]
                        for j in range(clusters)], np.float32)
    if fitted is not None:
        nearest = soft_assignments(features, centers).argmax(axis=1)  # Student's t falls with distance
        nearest[fitted] = assignments
        assignments = nearest
    return centers, np.eye(clusters, dtype=np.float32)[assignments]
