"""A run's TensorFlow checkpoints: what they hold, finding the newest intact one, restoring a model or a training.

All randomness is stateless and keyed by (seed, epoch, batch number), so the
optimizer's step and the epoch counter are the whole RNG state.
"""

from pathlib import Path

import tensorflow as tf

from ddnmf_tf.model.networks import DDNMF
from ddnmf_tf.run.directory import (AUTOENCODER_FILE, CHECKPOINT_DIR, RunDirError, latest_checkpoint, load_config,
                                    run_kind)


def training_checkpoint(model, optimizer, clock=None, head=None):
    """Everything a resumed run needs: both networks and the optimizer, whose step fixes the epoch too.

    `clock` (see `training_clock`) and `head` (a trainer's `head_state`: the
    clustering head, its optimizer, targets and clock), when given, are saved
    with them.
    """
    parts = {name: value for name, value in (("clock", clock), ("head", head)) if value is not None}
    return tf.train.Checkpoint(model=model, optimizer=optimizer, **parts)


def checkpoint_manager(run_dir, checkpoint, max_to_keep=3):
    return tf.train.CheckpointManager(checkpoint, str(Path(run_dir) / CHECKPOINT_DIR), max_to_keep=max_to_keep)


def newest_intact_checkpoint(run_dir, log=print):
    """The newest checkpoint whose every tensor reads back, logging each damaged one passed over.

    RunDirError when there is no checkpoint, or when none is intact.
    """
    latest = latest_checkpoint(run_dir)
    state = tf.train.get_checkpoint_state(str(Path(run_dir) / CHECKPOINT_DIR))
    candidates = list(dict.fromkeys([latest, *reversed(state.all_model_checkpoint_paths)]))
    damaged = []
    for path in candidates:
        problem = checkpoint_damage(path)
        if problem is None:
            if damaged:
                log(f"damaged checkpoint {'; '.join(damaged)}: restoring {Path(path).name}, the newest intact one")
            return path
        damaged.append(f"{Path(path).name} ({problem})")
    raise RunDirError(f"every checkpoint in {Path(run_dir) / CHECKPOINT_DIR} is damaged: {'; '.join(damaged)}")


def checkpoint_damage(path):
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


def restore_model(model, run_dir, log=print, path=None):
    """Restore a built model's weights, and only them, from checkpoint `path` (default: the run's newest intact
    one)."""
    path = path or newest_intact_checkpoint(run_dir, log)
    status = restore(tf.train.Checkpoint(model=model), path).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise RunDirError(f"checkpoint {path} lacks weights of this model ({model.name})") from None
    return model


def load_model(run_dir, log=print, path=None):
    """The trained DDNMF model of a run directory (weights of checkpoint `path`, default its newest intact one)."""
    kind = run_kind(run_dir)
    if kind is not None:
        raise RunDirError(f"{run_dir} is a run of the {kind.upper()} baseline ({AUTOENCODER_FILE}), not of DDNMF")
    model = DDNMF(load_config(run_dir))
    model.build((None, model.config.input_dim))
    return restore_model(model, run_dir, log, path)


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
