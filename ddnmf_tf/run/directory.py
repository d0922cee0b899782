"""The run directory: its layout, the JSON and arrays a run records, and their readers.

Layout of a run directory (also the TensorBoard logdir):

    config.json            the DDNMFConfig: what changes the weights (written at the start)
    settings.json          the data (dataset, source, splits, their fingerprints, number of clusters),
                           scoring, cadences, strategy and export folder (written at the start)
    run.lock               while a process trains the run: its pid and host (ddnmf_tf.run.lock)
    checkpoints/           tf.train.CheckpointManager files (both networks, optimizer with its step,
                           training seconds and images so far; with a clustering head, also its
                           weights, optimizer, clock and the target cluster of every training example)
    preprocessing.json     how stored values become inputs in [0, 1], and one example's shape
    cluster_centers.npy    without a trained clustering head: K-means's centres on the training split's H (served)
    assignments.npy        the served cluster of every training example, int64
    cluster_labels.npy     labeled training data only: the label of each cluster (Hungarian matching), int64
    results.json           what `train.run` measured (written at the end)
    outputs.json           the step the outputs above belong to and each one's digest (ddnmf_tf.run.outputs)
    served/                the checkpoint of that step, kept when checkpoints/ rotates it out
    clusters.png           image data: each served cluster's size and most confident scored examples (at the end)
    confusion.png          labeled data: the served clusters against the labels (at the end; ddnmf_tf.reporting.pictures)
    projector_config.pbtxt TensorBoard's Embedding Projector of the scored examples, its files in projector/
    checkpoint             and the state of its checkpoint of H (at the end; ddnmf_tf.reporting.projector)
    autoencoder.json       only in a baseline autoencoder's run (`ddnmf_tf.baselines`): {"kind": "ae1"}
    events.out.tfevents.*  TensorBoard summaries

Every file but TensorBoard's events and the checkpoints (which TensorFlow
writes under temporary names itself) appears atomically (`write_atomic`):
a process killed at any moment leaves the old version or the new one.
All randomness is stateless and keyed by (seed, epoch, batch number), so the
optimizer's step and the epoch counter are the whole RNG state."""

import io
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.files import write_atomic, write_json

CONFIG_FILE = "config.json"


SETTINGS_FILE = "settings.json"


CHECKPOINT_DIR = "checkpoints"


CLUSTER_CENTERS_FILE = "cluster_centers.npy"


ASSIGNMENTS_FILE = "assignments.npy"


CLUSTER_LABELS_FILE = "cluster_labels.npy"


RESULTS_FILE = "results.json"


AUTOENCODER_FILE = "autoencoder.json"


# The command-line flag of a field whose flag does not spell its name (train.run).
_FLAGS = {"layer_sizes": "--layers", "jit_compile": "--no-jit", "run_dir": "--run-dir"}


class RunDirError(ValueError):
    """A run directory lacks what was asked of it, or does not match the model."""


def flag_of(field):
    """The train.run flag that sets a DDNMFConfig or RunSettings field: 'layer_sizes' -> '--layers'."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def save_config(run_dir, config):
    write_atomic(Path(run_dir) / CONFIG_FILE, config.to_json() + "\n")


def load_config(run_dir):
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory: {CONFIG_FILE} is missing")
    return DDNMFConfig.from_dict(read_json(path))


def save_settings(run_dir, settings):
    write_json(Path(run_dir) / SETTINGS_FILE, settings)


def load_settings(run_dir):
    """The run's settings.json as a dict; for a run written before settings.json existed, what its
    results.json says of the data; {} when neither is there."""
    for name in (SETTINGS_FILE, RESULTS_FILE):
        path = Path(run_dir) / name
        if path.is_file():
            recorded = read_json(path)
            if name == RESULTS_FILE:
                keys = ("dataset", "source", "data_dir", "train_split", "eval_split", "umap_neighbors")
                recorded = {key: recorded[key] for key in keys if key in recorded}
            return recorded
    return {}


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise RunDirError(f"{path} is not valid JSON ({error})") from None


def is_run_dir(run_dir):
    """Whether `run_dir` holds a run: its config (written after its settings) or a checkpoint."""
    return (Path(run_dir) / CONFIG_FILE).is_file() or has_checkpoint(run_dir)


def has_checkpoint(run_dir):
    return tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR)) is not None


def latest_checkpoint(run_dir):
    """Path prefix of the newest checkpoint; RunDirError when there is none."""
    path = tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))
    if path is None:
        raise RunDirError(f"no checkpoint in {Path(run_dir) / CHECKPOINT_DIR}: train the run first")
    return path


def run_kind(run_dir):
    """"ae1" or "ae2" when the run directory holds autoencoder.json, else None (a DDNMF run)."""
    marker = Path(run_dir) / AUTOENCODER_FILE
    return read_json(marker)["kind"] if marker.is_file() else None


def save_cluster_centers(run_dir, centers):
    save_array(run_dir, CLUSTER_CENTERS_FILE, np.asarray(centers, np.float32))


def save_array(run_dir, name, array):
    """Save a numpy array as `run_dir/name` (.npy), atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_atomic(Path(run_dir) / name, buffer.getvalue())


def load_cluster_centers(run_dir):
    """The K-means centres saved with the run (or an older version's head centres), or None when it has none."""
    path = Path(run_dir) / CLUSTER_CENTERS_FILE
    return np.load(path) if path.is_file() else None


def load_cluster_labels(run_dir):
    """The label of each cluster, or None when the run's training data had no labels."""
    path = Path(run_dir) / CLUSTER_LABELS_FILE
    return np.load(path) if path.is_file() else None


def check_run_dir(run_dir, resume, chief):
    """RunDirError unless `run_dir` holds a run exactly when `resume` asks for one."""
    holds_run = is_run_dir(run_dir)
    if resume and not holds_run:
        shared = "" if chief else " (every worker must read the chief's --run-dir)"
        raise RunDirError(f"--resume: {run_dir} holds no run to resume (no {CONFIG_FILE}){shared}")
    if not resume and holds_run:
        raise RunDirError(
            f"{run_dir} already holds a run: pass --resume to continue it or choose another --run-dir"
        )
