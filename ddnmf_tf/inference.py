"""What a run serves, as one code path: H, each example's cluster and its probabilities, the cluster's label.

`Served.serve` (the run's preprocessing, `Preprocessing.apply_tf`, then
`Served.outputs`) is the body of every SavedModel signature
(ddnmf_tf.serving); `Served.predict` runs the same function on stored rows
(uint8 as uint8, any other dtype as float32, as a client of the SavedModel
sends them), and is what train.run scores as "served", writes to
assignments.npy, and what train.encode --run-dir returns. So the clusters a
run reports are the ones its SavedModel answers with, for inputs of every
dtype.

The clusters come from the run's clustering head (ddnmf_tf.model.head: argmax of
its softmax, whose probabilities are `cluster_probabilities`) or, for a run
without one, from K-means's centres on the training set's H (the nearest
centre; `cluster_distances` are the squared distances and
`cluster_probabilities` Student's t on them, as DEC's q).
"""

import math

import numpy as np
import tensorflow as tf

from ddnmf_tf import evaluation
from ddnmf_tf.data.preprocessing import load_preprocessing
from ddnmf_tf.model.head import ClusteringHead
from ddnmf_tf.run import checkpoints, directory, outputs

PREDICT_BATCH = 1024


class Served:
    """The served function of a trained model (`model(x)` is H) with a `head`, or K-means `centers` [K, r], or
    neither; `cluster_labels` (int [K]) adds each cluster's label."""

    def __init__(self, model, preprocessing, head=None, centers=None, cluster_labels=None, step=None):
        self.model, self.preprocessing, self.head = model, preprocessing, head
        self.centers = None if centers is None else tf.constant(np.asarray(centers, np.float32))
        self.cluster_labels = None if cluster_labels is None else tf.constant(np.asarray(cluster_labels, np.int64))
        self.step = step  # the training step the weights and clusters belong to, when known (ddnmf_tf.run.outputs)
        self._predict = tf.function(self.serve)

    @property
    def clusters(self):
        """K, or None when nothing clusters H."""
        if self.head is not None:
            return self.head.clusters
        return None if self.centers is None else int(self.centers.shape[0])

    def outputs(self, inputs):
        """{representation, cluster, cluster_probabilities, (cluster_distances), (label)} of float32 inputs in
        [0, 1], [batch, input_dim]."""
        representation = self.model(inputs)
        if self.head is not None:
            probabilities = self.head(representation)
            result = {"cluster": tf.argmax(probabilities, axis=1, output_type=tf.int64),
                      "cluster_probabilities": probabilities}
        elif self.centers is not None:
            distances = squared_distances(representation, self.centers)
            result = {"cluster": tf.argmin(distances, axis=1, output_type=tf.int64), "cluster_distances": distances,
                      "cluster_probabilities": student_t(distances)}
        else:
            return {"representation": representation}
        if self.cluster_labels is not None:
            result["label"] = tf.gather(self.cluster_labels, result["cluster"])
        return {"representation": representation, **result}

    def serve(self, rows):
        """`outputs` of stored rows, uint8 or float32 [batch, input_dim], scaled by the run's preprocessing."""
        return self.outputs(self.preprocessing.apply_tf(rows))

    def predict(self, values, progress=None):
        """`serve` of stored rows `values` [n, ...] (memory-mapped or not; uint8 as they are, any other dtype as
        float32) in batches of PREDICT_BATCH: numpy arrays. `progress`, a keras.utils.Progbar, advances by each
        batch."""
        width = math.prod(values.shape[1:])
        parts = []
        for start in range(0, len(values), PREDICT_BATCH):
            rows = np.asarray(values[start:start + PREDICT_BATCH]).reshape(-1, width)
            rows = rows if rows.dtype == np.uint8 else rows.astype(np.float32)
            parts.append({name: value.numpy() for name, value in self._predict(tf.constant(rows)).items()})
            if progress is not None:
                progress.add(len(rows))
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def squared_distances(h, centers):
    """||h_i - mu_j||^2 of every example and centre: [batch, K] from H [batch, r] and centres [K, r]."""
    return tf.reduce_sum(tf.square(h[:, tf.newaxis, :] - centers[tf.newaxis]), axis=-1)


def student_t(distances):
    """DEC's soft assignment q from squared distances [batch, K]: Student's t, one degree of freedom; rows sum
    to 1, largest at the nearest centre."""
    kernel = 1.0 / (1.0 + distances)
    return kernel / tf.reduce_sum(kernel, axis=-1, keepdims=True)


def load_served(run_dir, model=None, log=print, chosen=None):
    """The `Served` of a run directory: the set of its outputs (`chosen`, default
    `ddnmf_tf.run.outputs.served_set`): the networks of the checkpoint they were computed from (or `model`,
    restored from it: a baseline autoencoder's too), the head when the head is served, else the K-means centres,
    and the cluster labels. A run with no outputs yet gives its newest intact checkpoint's H alone (no clusters)."""
    config = directory.load_config(run_dir)
    chosen = chosen or outputs.served_set(run_dir, log)
    model = model if model is not None else checkpoints.load_model(run_dir, log, chosen.path)
    preprocessing = load_preprocessing(run_dir, config.input_dim)
    if not chosen.complete:
        return Served(model, preprocessing, step=chosen.step)
    head = load_head(chosen.path, config) if chosen.served_clusters != "kmeans" else None
    centers = None if head is not None else directory.load_cluster_centers(run_dir)
    return Served(model, preprocessing, head, centers, directory.load_cluster_labels(run_dir), chosen.step)


def load_head(path, config):
    """The trained clustering head in checkpoint `path`, or None when it has none."""
    clusters = checkpoints.head_clusters(path)
    if clusters is None:
        return None
    head = ClusteringHead(clusters, config.head_layers, config.seed, name="head")
    head.build((None, config.rank))
    checkpoints.restore(tf.train.Checkpoint(head=tf.train.Checkpoint(layer=head)), path).expect_partial()
    return head


def encode(model, values, preprocessing=None, progress=None):
    """The model's representation of every example, in batches of PREDICT_BATCH (numpy [n, width]).

    `values` are stored rows (memory-mapped or not), scaled batch by batch by
    `preprocessing` (default: used as float32); `progress`, a
    keras.utils.Progbar, advances by each batch. A plain call per batch
    rather than `model.predict`, which would run under the model's
    distribution strategy and so need every worker.
    """
    scale = preprocessing.apply if preprocessing is not None else (lambda rows: np.asarray(rows, np.float32))
    parts = []
    for start in range(0, len(values), PREDICT_BATCH):
        rows = np.asarray(values[start:start + PREDICT_BATCH]).reshape(-1, math.prod(values.shape[1:]))
        parts.append(model(scale(rows)).numpy())
        if progress is not None:
            progress.add(len(rows))
    return np.concatenate(parts)


def score(model, images, labels, seed, clusterers=evaluation.CLUSTERERS, umap_neighbors=evaluation.UMAP_NEIGHBORS,
          preprocessing=None, n_clusters=None):
    """ACC / NMI / ARI of each clusterer on H; None when the data has no labels."""
    if np.all(labels < 0):
        return None
    return score_features(encode(model, images, preprocessing), labels, seed, clusterers, umap_neighbors, n_clusters)


def score_features(features, labels, seed, clusterers=evaluation.CLUSTERERS,
                   umap_neighbors=evaluation.UMAP_NEIGHBORS, n_clusters=None):
    """`score` of representations already computed (numpy [n, r])."""
    return evaluation.evaluate_representation(features, labels, clusterers, seed=seed, umap_neighbors=umap_neighbors,
                                              n_clusters=n_clusters)


def score_served(clusters, examples):
    """ACC / NMI / ARI of the served `clusters` (`Served.predict`'s) of `examples`' labeled examples; None without
    labels."""
    if not examples.labeled:
        return None
    labeled = examples.labels >= 0
    return evaluation.score_clustering(examples.labels[labeled], clusters[labeled])
