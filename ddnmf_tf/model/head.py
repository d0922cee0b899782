"""The clustering head: a softmax classifier on H that carries UMAP+GMM's clustering into the served graph.

UMAP+GMM (N2D's clusterer) finds the curved clusters of H but cannot be
served: it is refitted on each set it clusters. The head learns it. After
the DDNMF epochs it trains with the networks for `head_epochs` (SCAN's
self-labelling step, on H):

    p(j | x) = softmax(MLP(H(x)))_j                                         the served clusters
    CE(x)    = mean_i [y_i >= 0] (-log p(y_i | x_i))
    L        = L_in + head_weight * (CE(x~) + CE(x)) / 2                     x~: the student's noisy copy

The first targets y are UMAP+GMM's clusters of the training set's H (UMAP
with `head_umap_neighbors` neighbours), fitted on a seeded sample of at most
`head_init_sample` examples; every other example takes the cluster most of
its nearest sampled neighbours in H hold.
An example has a target (y >= 0) only where that cluster is confident: its
GMM posterior, or its neighbours' mean posterior for it, at least
`head_confidence`. At `head_refits` head epochs spread evenly over the
phase (`refit_epochs`) UMAP+GMM is refitted on the H of that moment and its
confident clusters, each numbered as the head's cluster it matches, become
the targets; every `head_update_every` head steps (0: never) the targets
become the head's own confident predictions on the clean examples. With
`head_shift` the head epochs' images (both copies of a pair alike) move by
up to that many pixels along each axis.
"""

import keras
import numpy as np
from keras import ops
from sklearn.neighbors import NearestNeighbors

from ddnmf_tf import evaluation
from ddnmf_tf.config import derive_seed

NEIGHBOURS = 10  # sampled neighbours that give an example outside the sample its first target


@keras.saving.register_keras_serializable(package="ddnmf_tf")
class ClusteringHead(keras.layers.Layer):
    """p(cluster | H): a ReLU MLP of `hidden` widths and a softmax over `clusters`; [batch, K] from H [batch, r].

    `logits` gives the scores before the softmax (what the loss takes).
    """

    def __init__(self, clusters, hidden=(256, 256), seed=0, **kwargs):
        super().__init__(**kwargs)
        self.clusters, self.hidden, self.seed = int(clusters), tuple(int(width) for width in hidden), int(seed)

    def build(self, input_shape):
        # One attribute per variable (not a list), so that tf.train.Checkpoint names each: head/layer/kernel_0, ...
        widths = (int(input_shape[-1]), *self.hidden, self.clusters)
        for number, (width, out) in enumerate(zip(widths[:-1], widths[1:])):
            initializer = keras.initializers.GlorotUniform(derive_seed(self.seed, "head", number))
            setattr(self, f"kernel_{number}", self.add_weight(name=f"kernel_{number}", shape=(width, out),
                                                              initializer=initializer))
            setattr(self, f"bias_{number}", self.add_weight(name=f"bias_{number}", shape=(out,), initializer="zeros"))

    def logits(self, h):
        for number in range(len(self.hidden) + 1):
            h = ops.matmul(h, getattr(self, f"kernel_{number}")) + getattr(self, f"bias_{number}")
            if number < len(self.hidden):
                h = ops.relu(h)
        return h

    def call(self, h):
        return ops.softmax(self.logits(h), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.clusters)

    def get_config(self):
        return {**super().get_config(), "clusters": self.clusters, "hidden": list(self.hidden), "seed": self.seed}


def start_sample_size(sample, count):
    """How many of `count` training examples the UMAP+GMM start fits: at most `sample` (0: all)."""
    return min(sample, count) if sample > 0 else count


def initial_targets(features, clusters, seed, umap_neighbors, sample=0, confidence=0.0):
    """The head's first targets, int64 [n] (-1: none), from UMAP+GMM on the training set's H [n, r].

    UMAP+GMM fits a sample of `start_sample_size(sample, n)` examples drawn
    with `seed`; each other example takes the cluster that most of its
    NEIGHBOURS nearest sampled examples hold, with their mean posterior for it
    as its confidence. Clusters less confident than `confidence` are -1.
    """
    features = np.asarray(features, np.float32)
    size = start_sample_size(sample, len(features))
    fitted = (np.arange(len(features)) if size == len(features)
              else np.sort(np.random.default_rng(seed).choice(len(features), size, replace=False)))
    embedding = evaluation.embed_umap(features[fitted], clusters, seed, umap_neighbors)
    posteriors = evaluation.fit_full_gmm(embedding, clusters, seed).predict_proba(embedding)
    targets, confidences = posteriors.argmax(axis=1), posteriors.max(axis=1)
    if size < len(features):
        rest = np.setdiff1d(np.arange(len(features)), fitted)
        neighbours = NearestNeighbors(n_neighbors=min(NEIGHBOURS, size)).fit(features[fitted])
        near = neighbours.kneighbors(features[rest], return_distance=False)
        mean_posterior = posteriors[near].mean(axis=1)  # [rest, K]
        all_targets, all_confidences = np.empty(len(features), np.int64), np.empty(len(features))
        all_targets[fitted], all_confidences[fitted] = targets, confidences
        all_targets[rest] = np.array([np.bincount(row, minlength=clusters).argmax() for row in targets[near]])
        all_confidences[rest] = mean_posterior[np.arange(len(rest)), all_targets[rest]]
        targets, confidences = all_targets, all_confidences
    return confident(targets, confidences, confidence)


def confident(clusters, confidences, confidence):
    """`clusters` (int [n]) where `confidences` [n] reach `confidence`, -1 elsewhere (int64 [n])."""
    return np.where(np.asarray(confidences) >= confidence, np.asarray(clusters), -1).astype(np.int64)


def refit_epochs(config):
    """The head epochs (0-based, within the head phase) at whose start UMAP+GMM refits the targets: `head_refits`
    of them, evenly spaced, as a set (head_epochs 10, head_refits 1: {5})."""
    epochs, refits = config.head_epochs, config.head_refits
    return {epochs * number // (refits + 1) for number in range(1, refits + 1)} - {0}


def renumbered(targets, predicted, clusters):
    """Refitted `targets` (int [n], -1: none) with each cluster numbered as the one of the head's `predicted`
    clusters (int [n]) it matches (the Hungarian matching ACC uses), so that a refit keeps the head's outputs'
    meaning (int64 [n])."""
    targets, kept = np.asarray(targets), np.asarray(targets) >= 0
    numbering = evaluation.cluster_to_label(np.asarray(predicted)[kept], targets[kept], clusters)
    return np.where(kept, numbering[np.maximum(targets, 0)], -1).astype(np.int64)


def self_labels(probabilities, confidence):
    """The head's self-labelling targets from its predictions [n, K] on the clean examples (int64 [n], -1: none)."""
    probabilities = np.asarray(probabilities)
    return confident(probabilities.argmax(axis=1), probabilities.max(axis=1), confidence)
