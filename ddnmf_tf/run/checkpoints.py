"""The run directory: what a run records at its start, its checkpoints, and what it leaves at its end.

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
optimizer's step and the epoch counter are the whole RNG state.
"""

import io
import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.files import write_atomic, write_json
from ddnmf_tf.model.networks import DDNMF

CONFIG_FILE = "config.json"
SETTINGS_FILE = "settings.json"
CHECKPOINT_DIR = "checkpoints"
CLUSTER_CENTERS_FILE = "cluster_centers.npy"
ASSIGNMENTS_FILE = "assignments.npy"
CLUSTER_LABELS_FILE = "cluster_labels.npy"
RESULTS_FILE = "results.json"
AUTOENCODER_FILE = "autoencoder.json"

# What a resumed run may change. The rest fixes the architecture, the data, the data order and the noise it
# replays. The data's location (source, data_dir) may change: its fingerprints must not.
RESUMABLE_CHANGES = ("epochs", "learning_rate", "jit_compile", "head_epochs", "head_learning_rate")
# The clustering head's other fields may change until the head has trained a step.
HEAD_FIELDS = ("head_layers", "head_weight", "head_confidence", "head_update_every", "head_init_sample")
RESUMABLE_SETTINGS = ("source", "data_dir", "eval_dataset", "eval_limit", "clusters", "eval_every", "summary_every",
                      "checkpoint_every", "quiet", "clusterers", "cluster_seed", "umap_neighbors", "strategy", "deterministic",
                      "export_dir", "projector_examples")
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
    return DDNMFConfig.from_dict(_read_json(path))


def save_settings(run_dir, settings):
    write_json(Path(run_dir) / SETTINGS_FILE, settings)


def load_settings(run_dir):
    """The run's settings.json as a dict; for a run written before settings.json existed, what its
    results.json says of the data; {} when neither is there."""
    for name in (SETTINGS_FILE, RESULTS_FILE):
        path = Path(run_dir) / name
        if path.is_file():
            recorded = _read_json(path)
            if name == RESULTS_FILE:
                keys = ("dataset", "source", "data_dir", "train_split", "eval_split", "umap_neighbors")
                recorded = {key: recorded[key] for key in keys if key in recorded}
            return recorded
    return {}


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise RunDirError(f"{path} is not valid JSON ({error})") from None


def is_run_dir(run_dir):
    """Whether `run_dir` holds a run: its config (written after its settings) or a checkpoint."""
    return (Path(run_dir) / CONFIG_FILE).is_file() or has_checkpoint(run_dir)


def check_resumable(run_dir, config, settings):
    """RunDirError naming, by flag, every recorded setting that `config` or the `settings` dict contradicts.

    Fields in RESUMABLE_CHANGES and RESUMABLE_SETTINGS may differ, and those in
    HEAD_FIELDS until the clustering head has trained; a field the run's
    files do not record (one written by an older version) is not checked.
    """
    recorded_config = load_config(run_dir).to_dict()
    recorded = load_settings(run_dir)
    free = RESUMABLE_CHANGES + ("input_dim",)  # input_dim comes from the data
    if not has_checkpoint(run_dir) or head_clusters(newest_intact_checkpoint(run_dir, lambda line: None)) is None:
        free += HEAD_FIELDS
    pairs = [(name, recorded_config[name], value) for name, value in config.to_dict().items()
             if name not in free and name in recorded_config]
    pairs += [(name, recorded[name], value) for name, value in settings.items()
              if name not in RESUMABLE_SETTINGS and name in recorded]
    contradictions = [f"{flag_of(name)} is {_shown(old)} in the run, {_shown(new)} given"
                      for name, old, new in pairs if _comparable(old) != _comparable(new)]
    if contradictions:
        raise RunDirError(f"--resume {run_dir}: " + "; ".join(contradictions) +
                          " (start a new --run-dir to train with other settings)")


def check_same_data(run_dir, fingerprints):
    """RunDirError unless the data's {split role: fingerprint} equal those the run recorded (if it did)."""
    for split, digest in (load_settings(run_dir).get("fingerprints") or {}).items():
        given = fingerprints.get(split)
        if given is not None and given != digest:
            raise RunDirError(
                f"--resume {run_dir}: the {split} data differs from the run's (fingerprint {given}, the run "
                f"recorded {digest}): point --data-dir at the data the run trained on"
            )


def _comparable(value):
    return list(value) if isinstance(value, tuple) else value


def _shown(value):
    return repr(",".join(map(str, value))) if isinstance(value, (list, tuple)) else repr(value)


def training_checkpoint(model, optimizer, clock=None, head=None):
    """Everything a resumed run needs: both networks and the optimizer, whose step fixes the epoch too.

    `clock` (see `training_clock`) and `head` (a trainer's `head_state`: the
    clustering head, its optimizer, targets and clock), when given, are saved
    with them.
    """
    parts = {name: value for name, value in (("clock", clock), ("head", head)) if value is not None}
    return tf.train.Checkpoint(model=model, optimizer=optimizer, **parts)


def training_clock():
    """Seconds spent training and images trained on so far, checkpointed so a resumed run's totals count every run."""
    return tf.train.Checkpoint(seconds=tf.Variable(0.0, dtype=tf.float64, trainable=False),
                               images=tf.Variable(0, dtype=tf.int64, trainable=False))


def checkpoint_manager(run_dir, checkpoint, max_to_keep=3):
    return tf.train.CheckpointManager(checkpoint, str(Path(run_dir) / CHECKPOINT_DIR), max_to_keep=max_to_keep)


def has_checkpoint(run_dir):
    return tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR)) is not None


def latest_checkpoint(run_dir):
    """Path prefix of the newest checkpoint; RunDirError when there is none."""
    path = tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))
    if path is None:
        raise RunDirError(f"no checkpoint in {Path(run_dir) / CHECKPOINT_DIR}: train the run first")
    return path


def newest_intact_checkpoint(run_dir, log=print):
    """The newest checkpoint whose every tensor reads back, logging each damaged one passed over.

    RunDirError when there is no checkpoint, or when none is intact.
    """
    latest = latest_checkpoint(run_dir)
    state = tf.train.get_checkpoint_state(str(Path(run_dir) / CHECKPOINT_DIR))
    candidates = list(dict.fromkeys([latest, *reversed(state.all_model_checkpoint_paths)]))
    damaged = []
    for path in candidates:
        problem = _damage(path)
        if problem is None:
            if damaged:
                log(f"damaged checkpoint {'; '.join(damaged)}: restoring {Path(path).name}, the newest intact one")
            return path
        damaged.append(f"{Path(path).name} ({problem})")
    raise RunDirError(f"every checkpoint in {Path(run_dir) / CHECKPOINT_DIR} is damaged: {'; '.join(damaged)}")


def _damage(path):
    """None when every tensor of the checkpoint at `path` reads back, else what went wrong, in one line."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError, OSError) as error:
        return " ".join(str(getattr(error, "message", error) or type(error).__name__).split())[:200]
    return None


def restore(checkpoint, path):
    """Restore `checkpoint` from `path`, naming the variable whose shape differs when the architecture does."""
    try:
        return checkpoint.restore(path)
    except ValueError as error:
        raise RunDirError(f"checkpoint {path} does not match this model's architecture: {error}") from None


def restore_training(model, optimizer, clock, run_dir, log=print, head=None):
    """Restore a training run's networks, optimizer, clock and `head` state, as one object, from its newest intact
    checkpoint.

    A checkpoint written before clocks were saved restores the rest and
    leaves the clock at zero, with a line saying so; one without a head (a
    run trained without one) leaves `head` as it is, for the head phase to
    start. Returns the path restored.
    """
    path = newest_intact_checkpoint(run_dir, log)
    names = {name for name, _ in tf.train.list_variables(path)}
    saved = {name.split("/")[0] for name in names}
    if _DEC_HEAD_CENTERS in names:  # an older version's head of another kind: the head phase starts anew
        saved.discard("head")
        log(f"checkpoint {Path(path).name} holds a clustering head of an older kind (Student's t centres): "
            "a new head trains if --head-epochs asks for one")
    if "clock" not in saved:
        clock = None
        log(f"checkpoint {Path(path).name} holds no training clock (written by an older version): "
            "results.json's wall seconds count from this resume")
    status = restore(training_checkpoint(model, optimizer, clock, head if "head" in saved else None), path)
    if any(name.startswith("head/") for name in names) and (head is None or "head" not in saved):
        status.expect_partial()  # a head trained before, not asked for now (or of an older kind)
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise RunDirError(f"checkpoint {path} lacks weights of this model ({model.name})") from None
    return path


def restore_model(model, run_dir, log=print):
    """Restore a built model's weights, and only them, from the run's newest intact checkpoint."""
    path = newest_intact_checkpoint(run_dir, log)
    status = restore(tf.train.Checkpoint(model=model), path).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise RunDirError(f"checkpoint {path} lacks weights of this model ({model.name})") from None
    return model


def run_kind(run_dir):
    """"ae1" or "ae2" when the run directory holds autoencoder.json, else None (a DDNMF run)."""
    marker = Path(run_dir) / AUTOENCODER_FILE
    return _read_json(marker)["kind"] if marker.is_file() else None


def load_model(run_dir, log=print):
    """The trained DDNMF model of a run directory (weights of its newest intact checkpoint)."""
    kind = run_kind(run_dir)
    if kind is not None:
        raise RunDirError(f"{run_dir} is a run of the {kind.upper()} baseline ({AUTOENCODER_FILE}), not of DDNMF")
    model = DDNMF(load_config(run_dir))
    model.build((None, model.config.input_dim))
    return restore_model(model, run_dir, log)


def save_cluster_centers(run_dir, centers):
    save_array(run_dir, CLUSTER_CENTERS_FILE, np.asarray(centers, np.float32))


def save_array(run_dir, name, array):
    """Save a numpy array as `run_dir/name` (.npy), atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_atomic(Path(run_dir) / name, buffer.getvalue())


def head_clusters(path):
    """The number of clusters of the trained clustering head in checkpoint `path`; None when it has no head, its
    head has not trained yet, or its head is of an older kind."""
    shapes = dict(tf.train.list_variables(path))
    if _HEAD_STEPS not in shapes or _DEC_HEAD_CENTERS in shapes:
        return None
    if int(tf.train.load_checkpoint(path).get_tensor(_HEAD_STEPS)) == 0:
        return None
    biases = sorted((name for name in shapes if name.startswith(_HEAD_BIAS_PREFIX)),
                    key=lambda name: int(name[len(_HEAD_BIAS_PREFIX):].split("/")[0]))
    return int(shapes[biases[-1]][0])


# Keys in a training checkpoint (training.DDNMFTrainer.head_state): the head's step count, its layers' biases,
# and the centres of an older version's head (DEC's Student's t).
_HEAD_STEPS = "head/optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
_HEAD_BIAS_PREFIX = "head/layer/bias_"
_DEC_HEAD_CENTERS = "head/layer/centers/.ATTRIBUTES/VARIABLE_VALUE"


def load_cluster_centers(run_dir):
    """The K-means centres saved with the run (or an older version's head centres), or None when it has none."""
    path = Path(run_dir) / CLUSTER_CENTERS_FILE
    return np.load(path) if path.is_file() else None


def load_cluster_labels(run_dir):
    """The label of each cluster, or None when the run's training data had no labels."""
    path = Path(run_dir) / CLUSTER_LABELS_FILE
    return np.load(path) if path.is_file() else None
