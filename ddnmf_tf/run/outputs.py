"""A run's outputs as one set: the weights, clusters, labels, assignments and results of one training step.

At the end of a run (`ddnmf_tf.run.runner`) the outputs of its last step T are
written in this order:

    outputs.json           {"step": T, "writing": true}: readers refuse the set until it is complete
    cluster_centers.npy    (K-means served), assignments.npy, cluster_labels.npy (labeled data), results.json
    served/ckpt-N.*        the checkpoint whose weights the outputs were computed from (the one saved or
                           restored last, ckpt-T as a rule): hard links of checkpoints/ckpt-N.* (copies
                           where the file system has no hard links), kept when checkpoints/ rotates it out
    outputs.json           {"step": T, "checkpoint": "served/ckpt-N", "served_clusters": "head" | "kmeans",
                           "files": {name: digest of each output file}}

`served_set` is what every reader pairs (`ddnmf_tf.inference.load_served`:
export.run, train.encode --run-dir, train.evaluate): the checkpoint of the
recorded set with the files recorded beside it. A resume that trains on
and stops before its end leaves newer checkpoints beside the set; readers
keep serving the set of step T and say so. A set whose files changed, whose
checkpoint is damaged or gone, or whose writing was stopped is refused in
one line naming the file. A run written before outputs.json existed is read
by its results.json's `steps`; a run with no outputs yet gives the newest
intact checkpoint, with no clusters.
"""

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path
from typing import Optional

import tensorflow as tf

from ddnmf_tf.files import write_json
from ddnmf_tf.run import directory
from ddnmf_tf.run.checkpoints import checkpoint_damage, newest_intact_checkpoint

OUTPUTS_FILE = "outputs.json"
SERVED_DIR = "served"
OUTPUT_FILES = (directory.CLUSTER_CENTERS_FILE, directory.ASSIGNMENTS_FILE, directory.CLUSTER_LABELS_FILE,
                directory.RESULTS_FILE)


@dataclasses.dataclass(frozen=True)
class ServedSet:
    """The checkpoint a reader restores and what it serves with it.

    `complete` is False for a run with no outputs yet (its newest intact
    checkpoint, nothing to cluster with); `served_clusters` is "head" or
    "kmeans" (None when the run did not record it).
    """

    path: str
    step: int
    complete: bool
    served_clusters: Optional[str] = None


def step_of(path):
    """The step of checkpoint `path` (`.../ckpt-N`): N."""
    return int(Path(path).name.rsplit("-", 1)[1])


def begin(run_dir, step):
    """Mark the outputs of `step` as being written: readers refuse them until `record`."""
    write_json(Path(run_dir) / OUTPUTS_FILE, {"step": int(step), "writing": True})


def record(run_dir, step, served_clusters, checkpoint=None):
    """Close the set of `step`, whose output files are written from the weights of `checkpoint` (a checkpoint
    path in checkpoints/, default ckpt-<step>): keep that checkpoint in served/, name every output file with its
    digest in outputs.json, and remove the previous set's checkpoint."""
    run_dir, step = Path(run_dir), int(step)
    served = run_dir / SERVED_DIR
    served.mkdir(exist_ok=True)
    prefix = Path(checkpoint).name if checkpoint else f"ckpt-{step}"
    sources = sorted((run_dir / directory.CHECKPOINT_DIR).glob(prefix + ".*"))
    if not sources:
        raise directory.RunDirError(f"no checkpoint {prefix} in {run_dir / directory.CHECKPOINT_DIR} to pair "
                                      f"the outputs of step {step} with")
    for source in sources:
        _link(source, served / source.name)
    files = {name: digest(run_dir / name) for name in OUTPUT_FILES if (run_dir / name).is_file()}
    write_json(run_dir / OUTPUTS_FILE, {"step": step, "checkpoint": f"{SERVED_DIR}/{prefix}",
                                                    "served_clusters": served_clusters, "files": files})
    for old in served.iterdir():
        if not old.name.startswith(prefix + "."):
            old.unlink()


def _link(source, target):
    """`target` as a hard link of `source` (a copy where links fail), replacing any file there atomically."""
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    try:
        os.link(source, staging)
    except OSError:
        shutil.copy2(source, staging)
    os.replace(staging, target)


def digest(path):
    """BLAKE2b digest of a file's bytes, 32 hex digits."""
    hasher = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def served_set(run_dir, log=print):
    """The `ServedSet` of a run directory (see the module docstring); RunDirError in one line when its outputs
    are not one set, or when `run_dir` holds no run."""
    run_dir = Path(run_dir)
    directory.load_config(run_dir)  # a folder that is not a run is named as such
    if (run_dir / OUTPUTS_FILE).is_file():
        return _recorded_set(run_dir, directory.read_json(run_dir / OUTPUTS_FILE), log)
    if (run_dir / directory.RESULTS_FILE).is_file():
        return _set_of_results(run_dir, log)
    if (run_dir / directory.CLUSTER_CENTERS_FILE).is_file():
        raise directory.RunDirError(
            f"{run_dir / directory.CLUSTER_CENTERS_FILE} has no {OUTPUTS_FILE} nor {directory.RESULTS_FILE} "
            f"naming the step it belongs to: train.run --resume --run-dir {run_dir} writes the outputs anew")
    newest = newest_intact_checkpoint(run_dir, log)
    return ServedSet(newest, step_of(newest), False)


def _recorded_set(run_dir, recorded, log):
    step = recorded.get("step")
    remedy = f"train.run --resume --run-dir {run_dir} writes the outputs anew"
    if recorded.get("writing"):
        raise directory.RunDirError(
            f"{run_dir / OUTPUTS_FILE}: the outputs of step {step} are being written, or their writing was "
            f"stopped: wait for the run to end, or {remedy}")
    for name, expected in recorded["files"].items():
        path = run_dir / name
        if not path.is_file() or digest(path) != expected:
            raise directory.RunDirError(
                f"{path} is not the one of the outputs of step {step} ({OUTPUTS_FILE}): it was "
                f"{'changed' if path.is_file() else 'removed'} since; {remedy}")
    path = run_dir / recorded["checkpoint"]
    _check_intact(path, step, remedy)
    _say_if_newer(run_dir, path, step, log)
    return ServedSet(str(path), step, True, recorded.get("served_clusters"))


def _set_of_results(run_dir, log):
    """The set of a run written before outputs.json existed: the checkpoint of its results.json's steps."""
    results = directory.read_json(run_dir / directory.RESULTS_FILE)
    step = results.get("steps") if isinstance(results, dict) else None
    if not isinstance(step, int):
        raise directory.RunDirError(f"{run_dir / directory.RESULTS_FILE} records no steps: the step of the "
                                      f"run's outputs is unknown; train.run --resume --run-dir {run_dir} writes "
                                      "them anew")
    path = run_dir / directory.CHECKPOINT_DIR / f"ckpt-{step}"
    _check_intact(path, step, f"train.run --resume --run-dir {run_dir} writes the outputs anew")
    _say_if_newer(run_dir, path, step, log)
    return ServedSet(str(path), step, True, results.get("served_clusters"))


def _check_intact(path, step, remedy):
    if not Path(f"{path}.index").is_file():
        raise directory.RunDirError(f"{path}, the checkpoint of the outputs of step {step}, is missing; {remedy}")
    problem = checkpoint_damage(str(path))
    if problem is not None:
        raise directory.RunDirError(f"{path}, the checkpoint of the outputs of step {step}, is damaged "
                                      f"({problem}); {remedy}")


def _say_if_newer(run_dir, path, step, log):
    newest = tf.train.latest_checkpoint(str(Path(run_dir) / directory.CHECKPOINT_DIR))
    if newest is not None and Path(newest).name != Path(path).name:
        log(f"serving the outputs of step {step} ({path}): the newest checkpoint, {Path(newest).name}, is of "
            "training that has not reached its end")


def record_of(run_dir):
    """outputs.json of a run as a dict, or None when it has none."""
    path = Path(run_dir) / OUTPUTS_FILE
    return directory.read_json(path) if path.is_file() else None
