"""Tests for ddnmf_tf.evaluation: metrics against hand-computed values, clusterers, validation."""

import math

import numpy as np
import pytest
from sklearn.cluster import KMeans

from ddnmf_tf.evaluation import (CLUSTERERS, adjusted_rand_index, check_clusterable, cluster, clustering_accuracy,
                                 embed_umap, evaluate_representation, fit_gmm, fit_kmeans, normalized_mutual_info,
                                 score_clustering)

# Small case: contingency [[2, 1], [0, 3]] (rows = true classes, cols = clusters).
SMALL_TRUE = [0, 0, 0, 1, 1, 1]
SMALL_PRED = [0, 0, 1, 1, 1, 1]


def entropy(probabilities):
    """Shannon entropy (nats) of a discrete distribution."""
    return -sum(p * math.log(p) for p in probabilities if p > 0)


def small_case_nmi():
    """NMI of the small case from MI / mean(H(true), H(pred))."""
    n = 6
    cell_counts = {(0, 0): 2, (0, 1): 1, (1, 1): 3}
    true_counts = {0: 3, 1: 3}
    pred_counts = {0: 2, 1: 4}
    mutual_info = sum(
        (c / n) * math.log((c / n) / ((true_counts[i] / n) * (pred_counts[j] / n)))
        for (i, j), c in cell_counts.items()
    )
    h_true = entropy([c / n for c in true_counts.values()])
    h_pred = entropy([c / n for c in pred_counts.values()])
    return mutual_info / ((h_true + h_pred) / 2)


def small_case_ari():
    """ARI of the small case from the pair-counting formula."""
    pairs_in_cells = math.comb(2, 2) + math.comb(1, 2) + math.comb(3, 2)  # 4
    pairs_in_classes = math.comb(3, 2) + math.comb(3, 2)  # 6
    pairs_in_clusters = math.comb(2, 2) + math.comb(4, 2)  # 7
    expected = pairs_in_classes * pairs_in_clusters / math.comb(6, 2)  # 2.8
    maximum = (pairs_in_classes + pairs_in_clusters) / 2  # 6.5
    return (pairs_in_cells - expected) / (maximum - expected)  # 12/37


def separated_blobs(seed=0, per_blob=60):
    """Three tight, far-apart float32 blobs in (0, 1)^2 and their labels."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.15, 0.15], [0.85, 0.2], [0.5, 0.85]])
    labels = np.repeat(np.arange(3), per_blob)
    features = centers[labels] + rng.normal(scale=0.02, size=(len(labels), 2))
    return features.astype(np.float32), labels


def overlapping_data(seed=1):
    """Ambiguous data whose clustering depends on the clusterer's seed."""
    rng = np.random.default_rng(seed)
    features = rng.uniform(size=(200, 5)).astype(np.float32)
    labels = rng.integers(0, 4, size=200)
    return features, labels


def test_relabeled_perfect_clustering_scores_one():
    y_true = [0, 0, 1, 1, 2, 2, 2]
    y_pred = [7, 7, -3, -3, 4, 4, 4]
    assert score_clustering(y_true, y_pred) == pytest.approx(
        {"acc": 1.0, "nmi": 1.0, "ari": 1.0}
    )


def test_small_case_matches_hand_computed_values():
    scores = score_clustering(SMALL_TRUE, SMALL_PRED)
    assert scores["acc"] == pytest.approx(5 / 6)
    assert scores["nmi"] == pytest.approx(small_case_nmi())
    assert scores["ari"] == pytest.approx(small_case_ari())
    assert scores["ari"] == pytest.approx(12 / 37)


def test_scores_are_python_floats():
    scores = score_clustering(SMALL_TRUE, SMALL_PRED)
    assert set(scores) == {"acc", "nmi", "ari"}
    assert all(type(value) is float for value in scores.values())


def test_metric_wrappers_agree_with_score_clustering():
    scores = score_clustering(SMALL_TRUE, SMALL_PRED)
    assert clustering_accuracy(SMALL_TRUE, SMALL_PRED) == scores["acc"]
    assert normalized_mutual_info(SMALL_TRUE, SMALL_PRED) == scores["nmi"]
    assert adjusted_rand_index(SMALL_TRUE, SMALL_PRED) == scores["ari"]


def test_accuracy_with_more_clusters_than_classes():
    # Only one of clusters 0 and 1 can map to class 0; cluster 2 maps to class 1.
    assert clustering_accuracy([0, 0, 1, 1], [0, 1, 2, 2]) == pytest.approx(3 / 4)


def test_accuracy_with_fewer_clusters_than_classes():
    assert clustering_accuracy([0, 1, 2, 2], [5, 5, 9, 9]) == pytest.approx(3 / 4)


def test_accuracy_uses_one_to_one_matching_not_majority_vote():
    # Contingency [[3, 2], [0, 1]]: majority vote maps both clusters to class 0 (5/6);
    # the one-to-one matching must send cluster 1 to class 1 (3 + 1 = 4 of 6).
    assert clustering_accuracy([0, 0, 0, 0, 0, 1], [0, 0, 0, 1, 1, 1]) == pytest.approx(4 / 6)


@pytest.mark.parametrize("method", CLUSTERERS)
def test_clusterers_recover_separated_blobs(method):
    features, labels = separated_blobs()
    predicted = cluster(features, method, n_clusters=3, seed=0)
    assert predicted.shape == labels.shape
    assert np.issubdtype(predicted.dtype, np.integer)
    assert clustering_accuracy(labels, predicted) == 1.0


def test_evaluate_representation_on_blobs_scores_one_for_every_method():
    features, labels = separated_blobs()
    results = evaluate_representation(features, labels)
    assert set(results) == set(CLUSTERERS)
    for scores in results.values():
        assert scores == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0})


def test_evaluate_representation_accepts_single_method_name():
    features, labels = separated_blobs()
    assert set(evaluate_representation(features, labels, methods="gmm")) == {"gmm"}


def test_fit_kmeans_returns_fitted_model_with_centers():
    features, _ = separated_blobs()
    model = fit_kmeans(features, n_clusters=3, seed=0)
    assert isinstance(model, KMeans)
    assert model.cluster_centers_.shape == (3, 2)


def test_cluster_uses_fit_kmeans_predictions():
    features, _ = overlapping_data()
    model = fit_kmeans(features, n_clusters=4, seed=3)
    np.testing.assert_array_equal(cluster(features, "kmeans", 4, seed=3), model.predict(features.astype(np.float64)))  # fitted in float64


def test_fit_gmm_is_spherical():
    features, _ = separated_blobs()
    assert fit_gmm(features, n_clusters=3, seed=15).covariance_type == "spherical"


@pytest.mark.parametrize("method", CLUSTERERS)
def test_same_seed_gives_identical_clustering(method):
    features, _ = overlapping_data()
    first = cluster(features, method, n_clusters=4, seed=7)
    second = cluster(features, method, n_clusters=4, seed=7)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("method", CLUSTERERS)
def test_seed_reaches_the_clusterer(method):
    features, _ = overlapping_data()
    first = cluster(features, method, n_clusters=4, seed=7)
    second = cluster(features, method, n_clusters=4, seed=8)
    assert not np.array_equal(first, second)


def test_same_seed_gives_identical_scores():
    features, labels = overlapping_data()
    first = evaluate_representation(features, labels, seed=5)
    second = evaluate_representation(features, labels, seed=5)
    assert first == second


def test_n_clusters_defaults_to_number_of_labeled_classes():
    features, labels = separated_blobs()
    default = evaluate_representation(features, labels, methods=("kmeans",), seed=2)
    explicit = evaluate_representation(features, labels, methods=("kmeans",), n_clusters=3, seed=2)
    assert default == explicit


def test_unlabeled_samples_are_clustered_but_not_scored():
    features, labels = separated_blobs()
    partly_labeled = labels.copy()
    partly_labeled[::4] = -1
    scores = evaluate_representation(features, partly_labeled, methods=("kmeans",))["kmeans"]
    assert scores == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0})


def test_all_unlabeled_raises():
    features, labels = separated_blobs()
    with pytest.raises(ValueError, match="no labels to score against"):
        evaluate_representation(features, np.full_like(labels, -1))


@pytest.mark.parametrize(
    "features, message",
    [
        (np.zeros(10), "2-D"),
        (np.zeros((0, 3)), "empty"),
        (np.zeros((5, 0)), "empty"),
        (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), "NaN or infinite"),
        (np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]]), "NaN or infinite"),
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), "numeric"),
        (np.zeros((2, 3)), "at least n_clusters=3"),
    ],
)
def test_cluster_rejects_invalid_features(features, message):
    for method in CLUSTERERS:
        with pytest.raises(ValueError, match=message):
            cluster(features, method, n_clusters=3, seed=0)


@pytest.mark.parametrize("n_clusters", [0, -2, 2.5, True])
def test_cluster_rejects_invalid_n_clusters(n_clusters):
    features, _ = separated_blobs()
    with pytest.raises(ValueError, match="n_clusters"):
        cluster(features, "kmeans", n_clusters=n_clusters, seed=0)


def test_unknown_method_lists_valid_methods():
    features, labels = separated_blobs()
    with pytest.raises(ValueError, match="kmeans, gmm"):
        cluster(features, "spectral", n_clusters=3, seed=0)
    with pytest.raises(ValueError, match="unknown clustering method 'dbscan'"):
        evaluate_representation(features, labels, methods=("kmeans", "dbscan"))


def test_empty_methods_raises():
    features, labels = separated_blobs()
    with pytest.raises(ValueError, match="methods is empty"):
        evaluate_representation(features, labels, methods=())


def test_evaluate_representation_rejects_label_length_mismatch():
    features, labels = separated_blobs()
    with pytest.raises(ValueError, match="differ in length"):
        evaluate_representation(features, labels[:-1])


@pytest.mark.parametrize("labels", [np.zeros((180, 1), dtype=int), np.zeros(180)])
def test_evaluate_representation_rejects_non_integer_or_2d_labels(labels):
    features, _ = separated_blobs()
    with pytest.raises(ValueError, match="1-D integer array"):
        evaluate_representation(features, labels)


def test_evaluate_representation_rejects_invalid_features_before_clustering():
    _, labels = separated_blobs()
    with pytest.raises(ValueError, match="2-D"):
        evaluate_representation(np.zeros(len(labels)), labels)


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1, 1], [0, 1], "differ in length"),
        ([], [], "empty"),
        ([[0, 1]], [[0, 1]], "1-D"),
    ],
)
@pytest.mark.parametrize(
    "metric", [clustering_accuracy, normalized_mutual_info, adjusted_rand_index, score_clustering]
)
def test_metrics_reject_invalid_label_pairs(metric, y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        metric(y_true, y_pred)


def test_umap_embedding_has_one_dimension_per_cluster_and_repeats_with_its_seed():
    features, _ = overlapping_data()
    first = embed_umap(features, n_components=4, seed=3)
    assert first.shape == (len(features), 4) and first.dtype == np.float64
    np.testing.assert_array_equal(first, embed_umap(features, n_components=4, seed=3))
    assert not np.array_equal(first, embed_umap(features, n_components=4, seed=4))


def test_umap_clusterers_refuse_too_few_samples_for_their_embedding():
    features = np.random.default_rng(0).normal(size=(11, 3))
    with pytest.raises(ValueError, match="UMAP embedding of width 10 needs at least 12 samples, got 11"):
        cluster(features, "umap_kmeans", n_clusters=10, seed=0)


def test_umap_separates_rings_that_defeat_kmeans_on_the_raw_features():
    """UMAP's neighbour graph follows two concentric rings; K-means on the coordinates cuts across them."""
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, 600)
    labels = np.repeat([0, 1], 300)
    radii = np.where(labels == 0, 1.0, 4.0) + rng.normal(scale=0.05, size=600)
    features = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    scores = evaluate_representation(features, labels, ("kmeans", "umap_kmeans"), seed=0)
    assert scores["kmeans"]["acc"] < 0.7
    assert scores["umap_kmeans"]["acc"] == 1.0


def test_check_clusterable_refuses_before_any_work():
    check_clusterable(12, 10, CLUSTERERS)
    check_clusterable(10, 10, ("kmeans", "gmm"))
    with pytest.raises(ValueError, match="UMAP embedding of width 10 needs at least 12 samples, got 10"):
        check_clusterable(10, 10, ("kmeans", "umap_gmm"))
    with pytest.raises(ValueError, match="need at least n_clusters=10 samples, got 9"):
        check_clusterable(9, 10, ("kmeans",))
    with pytest.raises(ValueError, match="unknown clustering method 'tsne'"):
        check_clusterable(100, 10, ("tsne",))


def test_the_umap_neighbour_count_is_a_setting_that_changes_the_embedding():
    features = np.random.default_rng(0).normal(size=(200, 5))
    default = embed_umap(features, 3, seed=0)
    np.testing.assert_array_equal(default, embed_umap(features, 3, seed=0, n_neighbors=100))
    assert not np.array_equal(embed_umap(features, 3, seed=0, n_neighbors=5), default)


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "20"])
def test_a_bad_umap_neighbour_count_is_refused(bad):
    features = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match="umap_neighbors must be a whole number >= 2"):
        evaluate_representation(features, np.arange(40) % 2, ("kmeans",), umap_neighbors=bad)
