"""Export the student encoder + NMF (H) as a SavedModel that TensorFlow Serving loads.

What an export directory (TF Serving's model base path) holds:

    <export_dir>/<version>/                                 the SavedModel, tag "serve"
    <export_dir>/<version>/assets.extra/ddnmf_config.json   the DDNMFConfig served
    <export_dir>/<version>/assets.extra/preprocessing.json  the scaling and example shape it serves
    <export_dir>/<version>/assets.extra/ddnmf_outputs.json  {"step": N}: the run's step it serves
    <export_dir>/models.config                              a model_config_list for the docker image

Signatures (docs/serving.md has the tables and request examples):

    serving_default  images float32 [batch, input_dim]
    serving_uint8    images uint8 [batch, *shape]: one example's stored shape (images
                     [batch, height, width(, channels)]; a grayscale image may come
                     with or without its channel axis)

Both scale their input by the run's preprocessing inside the graph
(`ddnmf_tf.data.preprocessing`: min-max scaling of the values as stored, or x/255
of uint8 and of a float example with a value above 1), the rule
train.encode --run-dir follows too.

Both return what `ddnmf_tf.inference.Served.outputs` computes:
`representation` (H, float32 [batch, rank]); with a clustering head,
`cluster` (int64 [batch], the head's argmax) and `cluster_probabilities`
(float32 [batch, k], its softmax: rows sum to 1, largest at `cluster`);
without one, from K-means's centres, `cluster` (the nearest centre),
`cluster_distances` (float32 [batch, k], SQUARED Euclidean distances) and
`cluster_probabilities` (Student's t on them, as DEC's q). When the run's
training data had labels, also `label` (int64 [batch], the label of the
cluster, by the Hungarian matching on the training split).
Inputs are declared without a shape and checked in the graph, so that a
wrong shape is an InvalidArgumentError naming the expected shape, in Python
and from TF Serving alike.

Versions appear atomically: the SavedModel is written into a `.tmp-*`
directory beside the version (TF Serving only loads numeric names) and
renamed into place.
"""

import json
import math
import os
import re
import shutil
import uuid
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ddnmf_tf.config import check_whole
from ddnmf_tf.data.preprocessing import PREPROCESSING_FILE, default_preprocessing
from ddnmf_tf.inference import Served, load_served
from ddnmf_tf.run.outputs import OUTPUTS_FILE

CONFIG_ASSET = "ddnmf_config.json"
OUTPUTS_ASSET = "ddnmf_outputs.json"  # {"step": N}: the training step of the weights and clusters served
MODELS_CONFIG_FILE = "models.config"
STAGING_PREFIX = ".tmp-"
SERVING_DEFAULT = "serving_default"
SERVING_UINT8 = "serving_uint8"
NON_FINITE_MESSAGE = "images must be finite: a pixel is NaN or infinite"


class ExportError(ValueError):
    """An export cannot be written as asked (existing version, bad version or centres, unbuilt model)."""


def export_run(run_dir, export_dir, version=None, overwrite=False, log=print, chosen=None):
    """Export what a run directory serves (`ddnmf_tf.inference.load_served`: the set of its outputs, the
    checkpoint they belong to, its preprocessing, its clustering head or cluster centres, its cluster labels);
    returns the version dir. `chosen` (a ddnmf_tf.run.outputs.ServedSet) is that set when already found. ExportError
    for a run with no outputs yet."""
    served = load_served(run_dir, log=log, chosen=chosen)
    if served.clusters is None:
        raise ExportError(f"{run_dir} has no outputs to serve yet (no {OUTPUTS_FILE}: the run has not reached its "
                          f"end): finish it with train.run --resume --run-dir {run_dir}")
    log(f"exporting the outputs of step {served.step} of {run_dir}")
    return export_served(served, export_dir, version, overwrite)


def export_model(model, export_dir, cluster_centers=None, version=None, overwrite=False, preprocessing=None,
                 cluster_labels=None, head=None):
    """Export a built DDNMF model as `<export_dir>/<version>/`; returns that directory.

    `version` defaults to one more than the highest numeric version present (1
    when none). An existing version is an ExportError unless `overwrite`.
    `preprocessing` (default: 28x28 images, or vectors, stored as uint8) sets
    the signatures' scaling and the uint8 signature's image shape; `head`
    (a trained ddnmf_tf.model.head.ClusteringHead) or `cluster_centers` [k, rank]
    give the clusters; `cluster_labels` (int [k]) adds the `label` output.
    """
    if not model.built:
        raise ExportError("the model is not built: train it or restore a checkpoint before exporting")
    centers = _checked_centers(cluster_centers, model.config.rank)
    preprocessing = preprocessing or default_preprocessing(model.config.input_dim)
    clusters = head.clusters if head is not None else None if centers is None else len(centers)
    if cluster_labels is not None:
        cluster_labels = np.asarray(cluster_labels, np.int64)
        if clusters is None or cluster_labels.shape != (clusters,):
            raise ExportError(f"cluster labels must have one label per cluster, got shape "
                              f"{list(cluster_labels.shape)}" + ("" if clusters is not None else " and no clusters"))
    if preprocessing.input_dim != model.config.input_dim:
        raise ExportError(f"preprocessing for {preprocessing.input_dim} features, the model takes "
                          f"{model.config.input_dim}")
    return export_served(Served(model, preprocessing, head, None if head is not None else centers, cluster_labels),
                         export_dir, version, overwrite)


def export_served(served, export_dir, version=None, overwrite=False):
    """Write `served` (ddnmf_tf.inference.Served) as the SavedModel `<export_dir>/<version>/`, atomically."""
    export_dir = Path(export_dir)
    if export_dir.exists() and not export_dir.is_dir():
        raise ExportError(f"export directory {export_dir} is not a folder")
    version = next_version(export_dir) if version is None else _checked_version(version)
    version_dir = export_dir / str(version)
    if version_dir.exists() and not overwrite:
        raise ExportError(f"version {version_dir} already exists: pass --overwrite (overwrite=True) to replace it")
    export_dir.mkdir(parents=True, exist_ok=True)
    staging = _scratch_path(export_dir, f"new-{version}")
    staging.mkdir()
    try:
        _write_saved_model(served, staging)
        _write_config_asset(served.model.config, served.preprocessing, staging, served.step)
        _move_into_place(staging, version_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_models_config(export_dir)
    return version_dir


def next_version(export_dir):
    """One more than the highest numeric version directory in `export_dir`, 1 when there is none."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        return 1
    return max((int(path.name) for path in export_dir.iterdir() if _is_version_dir(path)), default=0) + 1


def _write_saved_model(served, path):
    """Write the serving signatures of `served` as a SavedModel at `path`."""
    # Keras's ExportArchive rather than tf.saved_model.save of a tf.Module holding the model: it saves the
    # tf.Variables the signatures read. Saving the Keras model itself adds copies of its variables that the
    # checkpoint restores instead, which TF Serving's loader then leaves uninitialized (FailedPrecondition).
    archive = keras.export.ExportArchive()
    if served.head is not None:
        archive.track(served.head)
    for name, serve, input_spec in _serving_functions(served):
        archive.add_endpoint(name, serve, input_signature=[input_spec])
    archive.write_out(str(path), verbose=False)


def _serving_functions(served):
    """(signature name, function, input spec) of every signature the export serves."""
    width, preprocessing = served.model.config.input_dim, served.preprocessing

    def serve_floats(images):
        return served.serve(_checked_rows(images, width))

    def serve_uint8(images):
        return served.serve(_rows_from_uint8(images, preprocessing.shape))

    # Inputs are declared with no shape and checked in the graph by EnsureShape: TF Serving does not compare a
    # request's shape with the signature's, and grappler drops any check that a declared shape already answers,
    # which would leave a wrong shape to fail deep inside the model with an unhelpful message.
    return [(SERVING_DEFAULT, serve_floats, tf.TensorSpec(None, tf.float32, name="images")),
            (SERVING_UINT8, serve_uint8, tf.TensorSpec(None, tf.uint8, name="images"))]


def _checked_rows(images, width):
    """`images`, checked to be [batch, width] of finite values (InvalidArgumentError naming what is wrong otherwise)."""
    # A NaN row would otherwise be answered with H = 0.5 in every unit, an answer that looks valid.
    return tf.debugging.check_numerics(tf.ensure_shape(images, [None, width]), NON_FINITE_MESSAGE)


def _rows_from_uint8(images, shape):
    """uint8 examples [batch, *shape] (a grayscale [h, w] shape also as [batch, h, w, 1]), checked, as uint8 rows
    [batch, features]."""
    if len(shape) == 2:
        shape = (*shape, 1)
        images = tf.cond(tf.rank(images) == 3, lambda: images[..., tf.newaxis], lambda: images)
    checked = tf.ensure_shape(images, [None, *shape])
    return tf.reshape(checked, [-1, math.prod(shape)])


def _checked_centers(cluster_centers, rank):
    """Cluster centres as float32 [k, rank], or None; ExportError when they do not fit H."""
    if cluster_centers is None:
        return None
    centers = np.asarray(cluster_centers, np.float32)
    if centers.ndim != 2 or centers.shape[0] == 0 or centers.shape[1] != rank:
        raise ExportError(f"cluster centres must have shape [k >= 1, rank={rank}], got {list(centers.shape)}")
    if not np.isfinite(centers).all():
        raise ExportError("cluster centres hold NaN or infinite values")
    return centers


def _checked_version(version):
    """`version` when it is a whole number >= 1, the version numbers TF Serving loads; ExportError otherwise."""
    check_whole("version", version, 1, ExportError)
    return version


def _scratch_path(export_dir, label):
    """A fresh `.tmp-<label>-<random>` path in `export_dir`: TF Serving skips it, its name not being a number."""
    return Path(export_dir) / f"{STAGING_PREFIX}{label}-{uuid.uuid4().hex[:8]}"


def _is_version_dir(path):
    """True for directories TF Serving takes for versions: names made of digits only."""
    return path.is_dir() and re.fullmatch(r"[0-9]+", path.name) is not None


def _write_config_asset(config, preprocessing, saved_model_dir, step=None):
    """Put the served DDNMFConfig, preprocessing and (when known) the training step of its weights and clusters in
    `assets.extra/`, where TF Serving keeps extra files it does not load."""
    assets_extra = Path(saved_model_dir) / "assets.extra"
    assets_extra.mkdir(exist_ok=True)
    (assets_extra / CONFIG_ASSET).write_text(config.to_json() + "\n")
    (assets_extra / PREPROCESSING_FILE).write_text(json.dumps(preprocessing.to_dict(), indent=2) + "\n")
    if step is not None:
        (assets_extra / OUTPUTS_ASSET).write_text(json.dumps({"step": step}) + "\n")


def _move_into_place(staging, version_dir):
    """Rename the finished `staging` dir to `version_dir`, setting an existing version aside first."""
    if not version_dir.exists():
        os.rename(staging, version_dir)
        return
    retired = _scratch_path(version_dir.parent, f"old-{version_dir.name}")
    os.rename(version_dir, retired)
    try:
        os.rename(staging, version_dir)
    except OSError:
        os.rename(retired, version_dir)
        raise
    shutil.rmtree(retired)


def _write_models_config(export_dir):
    """Write `<export_dir>/models.config` for the TF Serving docker image, unless one is already there."""
    path = export_dir / MODELS_CONFIG_FILE
    if path.exists():
        return
    name = export_dir.resolve().name
    staging = _scratch_path(export_dir, MODELS_CONFIG_FILE)
    staging.write_text(
        "model_config_list {\n"
        "  config {\n"
        f"    name: {json.dumps(name)}\n"
        f"    base_path: {json.dumps('/models/' + name)}\n"
        '    model_platform: "tensorflow"\n'
        "  }\n"
        "}\n"
    )
    os.replace(staging, path)  # whole or absent, also when the process is killed
