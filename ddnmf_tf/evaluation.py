"""Clustering-based evaluation of a learned representation H: ACC, NMI and ARI.

Following Chen et al. (2021), the representation H ([N, r]) is clustered with
K-means and with a Gaussian mixture, and each clustering is compared with the
true labels by

* ACC: accuracy under the best one-to-one matching of cluster ids to labels
  (Hungarian algorithm on the contingency matrix),
* NMI: sklearn's normalized mutual information with its default
  ``average_method="arithmetic"``, i.e. MI / ((H(true) + H(pred)) / 2),
* ARI: sklearn's adjusted Rand index.

Besides the paper's two clusterers on H ("kmeans", "gmm"), "umap_kmeans" and
"umap_gmm" first embed H with UMAP as N2D does (McConville et al., 2020:
n_components = number of clusters, min_dist 0, euclidean; 100 neighbours
where N2D took 20: docs/choices.md) and cluster the embedding:
K-means, or a full-covariance GMM as in N2D.
These are reported beside the paper's clusterers, never instead of them.

Labels below zero mark unlabeled samples: they take part in clustering but not
in scoring. All clusterers are seeded, so the same seed gives the same scores.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.mixture import GaussianMixture

from ddnmf_tf.config import check_whole

UMAP_NEIGHBORS = 100  # docs/choices.md, the UMAP neighbour count


def _check_label_pair(y_true, y_pred):
    """Return both label vectors as 1-D arrays of equal, non-zero length."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(
            f"labels must be 1-D, got shapes {y_true.shape} and {y_pred.shape}"
        )
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred differ in length: {len(y_true)} != {len(y_pred)}"
        )
    if len(y_true) == 0:
        raise ValueError("cannot score an empty labelling")
    return y_true, y_pred


def _check_n_clusters(n_clusters):
    """Raise ValueError unless n_clusters is a positive integer."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise ValueError(f"n_clusters must be an integer, got {n_clusters!r}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, got {n_clusters}")


def _as_feature_matrix(features):
    """Return features as a non-empty, finite, numeric 2-D array."""
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(
            f"features must be a 2-D array [samples, dims], got shape {features.shape}"
        )
    if features.size == 0:
        raise ValueError(f"features are empty (shape {features.shape})")
    if not np.issubdtype(features.dtype, np.number):
        raise ValueError(f"features must be numeric, got dtype {features.dtype}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or infinite values")
    # float64: in float32 sklearn's GMM fails ("ill-defined empirical covariance") on an H saturated at 1.0.
    return features.astype(np.float64)


def _check_features(features, n_clusters):
    """Return features as a valid 2-D array with at least n_clusters rows."""
    _check_n_clusters(n_clusters)
    features = _as_feature_matrix(features)
    if len(features) < n_clusters:
        raise ValueError(
            f"need at least n_clusters={n_clusters} samples, got {len(features)}"
        )
    return features


def _check_method(method):
    """Raise ValueError unless method names one of CLUSTERERS."""
    if method not in CLUSTERERS:
        raise ValueError(
            f"unknown clustering method {method!r}; valid methods: {', '.join(CLUSTERERS)}"
        )


def clustering_accuracy(y_true, y_pred):
    """Fraction of samples correct under the best one-to-one cluster-to-label map."""
    y_true, y_pred = _check_label_pair(y_true, y_pred)
    counts = contingency_matrix(y_true, y_pred)  # [classes, clusters]
    class_rows, cluster_cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[class_rows, cluster_cols].sum() / len(y_true))


def cluster_to_label(y_true, y_pred, n_clusters):
    """The label of each of `n_clusters` clusters, int64 [n_clusters]: the Hungarian matching that ACC uses,
    and, for a cluster left unmatched (more clusters than classes), the most frequent label among its members
    (-1 for an empty one)."""
    classes, counts, (class_rows, cluster_cols) = hungarian_matching(y_true, y_pred, n_clusters)
    labels = np.where(counts.sum(axis=0) > 0, classes[counts.argmax(axis=0)], -1)
    labels[cluster_cols] = classes[class_rows]
    return labels.astype(np.int64)


def hungarian_matching(y_true, y_pred, n_clusters):
    """(classes [C], counts int64 [C, n_clusters] of each label and cluster, (class rows, cluster columns)):
    the one-to-one matching of clusters to labels with the most examples in matched pairs, as ACC takes it."""
    y_true, y_pred = _check_label_pair(y_true, y_pred)
    classes, class_index = np.unique(y_true, return_inverse=True)
    counts = np.zeros((len(classes), n_clusters), np.int64)
    np.add.at(counts, (class_index, y_pred), 1)
    return classes, counts, linear_sum_assignment(counts, maximize=True)


def normalized_mutual_info(y_true, y_pred):
    """NMI with sklearn's default arithmetic-mean normalisation."""
    y_true, y_pred = _check_label_pair(y_true, y_pred)
    return float(normalized_mutual_info_score(y_true, y_pred))


def adjusted_rand_index(y_true, y_pred):
    """Adjusted Rand index (sklearn)."""
    y_true, y_pred = _check_label_pair(y_true, y_pred)
    return float(adjusted_rand_score(y_true, y_pred))


METRICS = ("acc", "nmi", "ari")  # what score_clustering returns


def score_clustering(y_true, y_pred):
    """Return {"acc", "nmi", "ari"} of a clustering against true labels."""
    return {
        "acc": clustering_accuracy(y_true, y_pred),
        "nmi": normalized_mutual_info(y_true, y_pred),
        "ari": adjusted_rand_index(y_true, y_pred),
    }


def fit_kmeans(features, n_clusters, seed):
    """Return KMeans(n_init=10) fitted to features (as float64); its cluster_centers_ can be exported."""
    features = _check_features(features, n_clusters)
    return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(features)


def fit_gmm(features, n_clusters, seed):
    """Return a spherical-covariance GaussianMixture fitted to features.

    Spherical covariances follow the authors, who used
    GaussianMixture(10, covariance_type="spherical", random_state=15).
    """
    features = _check_features(features, n_clusters)
    return GaussianMixture(
        n_components=n_clusters, covariance_type="spherical", random_state=seed
    ).fit(features)


def fit_full_gmm(features, n_clusters, seed):
    """Return the best of 5 full-covariance GaussianMixture fits (N2D clusters its UMAP embedding with one)."""
    features = _check_features(features, n_clusters)
    return GaussianMixture(n_components=n_clusters, covariance_type="full", n_init=5, random_state=seed).fit(features)


def _check_umap_samples(n_samples, n_components):
    """Raise ValueError unless UMAP can embed n_samples in n_components dimensions."""
    if n_samples < n_components + 2:  # the spectral initialisation needs n_components + 1 eigenvectors
        raise ValueError(
            f"a UMAP embedding of width {n_components} needs at least {n_components + 2} samples, "
            f"got {n_samples}"
        )


def check_umap_neighbors(n_neighbors):
    """Raise ValueError unless n_neighbors is a whole number >= 2, as UMAP needs."""
    check_whole("umap_neighbors", n_neighbors, 2)


def embed_umap(features, n_components, seed, n_neighbors=UMAP_NEIGHBORS):
    """UMAP embedding [N, n_components] of features: n_neighbors neighbours (at most N-1), min_dist 0 (N2D's)."""
    import umap  # imported here: umap-learn and numba take seconds to import

    check_umap_neighbors(n_neighbors)
    features = _check_features(features, n_components)
    _check_umap_samples(len(features), n_components)
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=min(int(n_neighbors), len(features) - 1),
        min_dist=0.0,
        metric="euclidean",
        random_state=seed,
        n_jobs=1,  # what random_state implies; said here so umap does not warn
    )
    return reducer.fit_transform(features).astype(np.float64)


# method -> (whether it clusters the UMAP embedding, fitter)
_CLUSTERERS = {
    "kmeans": (False, fit_kmeans),
    "gmm": (False, fit_gmm),
    "umap_kmeans": (True, fit_kmeans),
    "umap_gmm": (True, fit_full_gmm),
}
CLUSTERERS = tuple(_CLUSTERERS)


def check_clusterable(n_samples, n_clusters, methods):
    """Raise ValueError unless every method can cluster n_samples into n_clusters (checked before any work)."""
    for method in methods:
        _check_method(method)
    if n_samples < n_clusters:
        raise ValueError(f"need at least n_clusters={n_clusters} samples, got {n_samples}")
    if any(_CLUSTERERS[method][0] for method in methods):
        _check_umap_samples(n_samples, n_clusters)


def _cluster_all(features, methods, n_clusters, seed, umap_neighbors):
    """Integer cluster ids [N] of every method; the UMAP embedding is computed once for all UMAP methods."""
    features = _check_features(features, n_clusters)
    spaces = {False: features}
    if any(_CLUSTERERS[method][0] for method in methods):
        spaces[True] = embed_umap(features, n_clusters, seed, umap_neighbors)
    assignments = {}
    for method in methods:
        on_umap, fit = _CLUSTERERS[method]
        space = spaces[on_umap]
        assignments[method] = fit(space, n_clusters, seed).predict(space).astype(np.int64)
    return assignments


def cluster(features, method, n_clusters, seed, umap_neighbors=UMAP_NEIGHBORS):
    """Cluster features with the named method and return integer cluster ids [N]."""
    _check_method(method)
    return _cluster_all(features, (method,), n_clusters, seed, umap_neighbors)[method]


def evaluate_representation(features, labels, methods=CLUSTERERS, n_clusters=None, seed=0,
                            umap_neighbors=UMAP_NEIGHBORS):
    """Cluster features with each method and score it: {method: {"acc","nmi","ari"}}.

    n_clusters defaults to the number of distinct non-negative labels. Negative
    labels mark unlabeled samples: they are clustered but not scored.
    umap_neighbors is the UMAP clusterers' neighbour count.
    """
    if isinstance(methods, str):
        methods = (methods,)
    if len(methods) == 0:
        raise ValueError(f"methods is empty; choose from {', '.join(CLUSTERERS)}")
    for method in methods:
        _check_method(method)
    features = _as_feature_matrix(features)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}"
        )
    if len(labels) != len(features):
        raise ValueError(
            f"features and labels differ in length: {len(features)} != {len(labels)}"
        )
    is_labeled = labels >= 0
    if not is_labeled.any():
        raise ValueError(
            "all labels are negative: the data has no labels to score against"
        )
    check_umap_neighbors(umap_neighbors)
    if n_clusters is None:
        n_clusters = len(np.unique(labels[is_labeled]))
    assignments = _cluster_all(features, tuple(methods), n_clusters, seed, umap_neighbors)
    return {
        method: score_clustering(labels[is_labeled], assignments[method][is_labeled])
        for method in methods
    }


def scoring_note(examples, clusters):
    """A line saying why scores of `examples` labeled examples in `clusters` clusters mean little, or None."""
    if clusters == 1:
        return (f"note: one cluster: ACC is the largest class's share and NMI 0 whatever H is "
                f"({examples} examples scored)")
    if examples < 2 * clusters:
        return (f"note: {examples} examples scored in {clusters} clusters, fewer than 2 per cluster: ACC is near 1 "
                "whatever H is")
    return None
