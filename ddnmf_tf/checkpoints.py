"""The run directory: config, checkpoints and cluster centres that training leaves behind.

Layout of a run directory (also the TensorBoard logdir):

    config.json            the DDNMFConfig of the run
    checkpoints/           tf.train.CheckpointManager files (both networks, optimizer with its step,
                           training seconds and images so far)
    cluster_centers.npy    K-means centres fitted on the training split's H (for serving)
    results.json           what `train.run` measured
    autoencoder.json       only in a baseline autoencoder's run (`ddnmf_tf.baselines`): {"kind": "ae1"}
    events.out.tfevents.*  TensorBoard summaries

All randomness is stateless and keyed by (seed, epoch, batch number), so the
optimizer's step and the epoch counter are the whole RNG state.
"""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.networks import DDNMF

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
CLUSTER_CENTERS_FILE = "cluster_centers.npy"
RESULTS_FILE = "results.json"
AUTOENCODER_FILE = "autoencoder.json"


class RunDirError(ValueError):
    """A run directory lacks what was asked of it, or does not match the model."""


def save_config(run_dir, config):
    path = Path(run_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.to_json() + "\n")


def load_config(run_dir):
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory: {CONFIG_FILE} is missing")
    return DDNMFConfig.from_dict(json.loads(path.read_text()))


def training_checkpoint(model, optimizer, clock=None):
    """Everything a resumed run needs: both networks and the optimizer, whose step fixes the epoch too.

    `clock` (see `training_clock`), when given, is saved with them.
    """
    if clock is None:
        return tf.train.Checkpoint(model=model, optimizer=optimizer)
    return tf.train.Checkpoint(model=model, optimizer=optimizer, clock=clock)


def training_clock():
    """Seconds spent training and images trained on so far, checkpointed so a resumed run's totals count every session."""
    return tf.train.Checkpoint(seconds=tf.Variable(0.0, dtype=tf.float64, trainable=False),
                               images=tf.Variable(0, dtype=tf.int64, trainable=False))


def restore_clock(clock, path):
    """Restore `clock` from the checkpoint at `path`; one written before clocks were saved leaves it at zero."""
    tf.train.Checkpoint(clock=clock).restore(path).expect_partial()


def checkpoint_manager(run_dir, checkpoint, max_to_keep=3):
    return tf.train.CheckpointManager(checkpoint, str(Path(run_dir) / CHECKPOINT_DIR), max_to_keep=max_to_keep)


def has_checkpoint(run_dir):
    return tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR)) is not None


# What a resumed run may change: the rest fixes the architecture, the data order and the noise it replays.
RESUMABLE_CHANGES = ("epochs", "learning_rate", "jit_compile")


def check_resumable(run_dir, config):
    """RunDirError naming every field, other than RESUMABLE_CHANGES, in which `config` differs from the run's."""
    saved = load_config(run_dir).to_dict()
    asked = config.to_dict()
    changed = [name for name in saved if name not in RESUMABLE_CHANGES and saved[name] != asked[name]]
    if changed:
        differences = ", ".join(f"{name} {saved[name]!r} -> {asked[name]!r}" for name in changed)
        raise RunDirError(
            f"--resume must keep the run's settings (only {', '.join(RESUMABLE_CHANGES)} may change): "
            f"{differences}; start a new --output-dir to train with other settings"
        )


def latest_checkpoint(run_dir):
    """Path prefix of the newest checkpoint; RunDirError when there is none."""
    path = tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))
    if path is None:
        raise RunDirError(f"no checkpoint in {Path(run_dir) / CHECKPOINT_DIR}: train the run first")
    return path


def restore(checkpoint, path):
    """Restore `checkpoint` from `path`, naming the variable whose shape differs when the architecture does."""
    try:
        return checkpoint.restore(path)
    except ValueError as error:
        raise RunDirError(f"checkpoint {path} does not match this model's architecture: {error}") from None


def restore_model(model, path):
    """Restore a built model's weights, and only them, from the training checkpoint at `path`; every one must be there."""
    status = restore(tf.train.Checkpoint(model=model), path).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise RunDirError(f"checkpoint {path} lacks weights of this model ({model.name})") from None
    return model


def run_kind(run_dir):
    """"ae1" or "ae2" when the run directory holds autoencoder.json, else None (a DDNMF run)."""
    marker = Path(run_dir) / AUTOENCODER_FILE
    return json.loads(marker.read_text())["kind"] if marker.is_file() else None


def load_model(run_dir):
    """The trained DDNMF model of a run directory (weights of its latest checkpoint)."""
    kind = run_kind(run_dir)
    if kind is not None:
        raise RunDirError(f"{run_dir} is a run of the {kind.upper()} baseline ({AUTOENCODER_FILE}), not of DDNMF")
    model = DDNMF(load_config(run_dir))
    model.build((None, model.config.input_dim))
    return restore_model(model, latest_checkpoint(run_dir))


def save_cluster_centers(run_dir, centers):
    np.save(Path(run_dir) / CLUSTER_CENTERS_FILE, np.asarray(centers, np.float32))


def load_cluster_centers(run_dir):
    """K-means centres saved with the run, or None when it has none."""
    path = Path(run_dir) / CLUSTER_CENTERS_FILE
    return np.load(path) if path.is_file() else None
