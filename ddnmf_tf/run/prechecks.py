"""Checks that run before any training step, so that a run that cannot end is refused before its work.

Each raises ValueError (RunDirError for a run directory) with one line naming
the flag or the file; `unused_preset_fields` returns what train.run says
rather than refuse.
"""

from pathlib import Path

from ddnmf_tf.config import PRESETS
from ddnmf_tf.run import checkpoints, directory
from ddnmf_tf.run.outputs import OUTPUTS_FILE, SERVED_DIR

# Fields a preset may set that only masking noise reads (ddnmf_tf.model.noise.corrupt).
MASKING_ONLY = ("noise_rescale",)


def check_clusters_fit(examples, clusters, origin):
    """ValueError naming --clusters unless `examples` training examples can be split into `clusters` clusters
    (K-means's centres and the clustering head's targets are fitted on the training examples)."""
    if examples < clusters:
        raise ValueError(f"{origin}: {examples} training examples, fewer than the {clusters} clusters asked for "
                         f"(--clusters, default the training labels' classes, else 10): pass --clusters {examples} "
                         "or fewer")


def check_head_clusters(run_dir, clusters, log=print):
    """RunDirError naming --clusters when the run's newest intact checkpoint holds a clustering head trained on
    another number of clusters (a resume that trains the head further keeps its clusters)."""
    if not directory.has_checkpoint(run_dir):
        return
    trained = checkpoints.head_clusters(checkpoints.newest_intact_checkpoint(run_dir, log))
    if trained is not None and trained != clusters:
        raise directory.RunDirError(
            f"--resume {run_dir}: --clusters is {clusters}, the run's clustering head has trained on {trained} "
            f"clusters: pass --clusters {trained}, or --head-epochs 0 to serve K-means's {clusters} instead, or "
            "start a new --run-dir")


def check_resume_has_weights(run_dir):
    """RunDirError when a finished run (outputs.json or results.json) has no checkpoint left: a resume would
    train from step 0 and replace its outputs."""
    run_dir = Path(run_dir)
    finished = [name for name in (OUTPUTS_FILE, directory.RESULTS_FILE) if (run_dir / name).is_file()]
    if finished and not directory.has_checkpoint(run_dir):
        kept = f" (the weights of its outputs are in {run_dir / SERVED_DIR})" if (run_dir / SERVED_DIR).is_dir() else ""
        raise directory.RunDirError(
            f"--resume {run_dir}: the run has finished ({finished[0]}) but {run_dir / directory.CHECKPOINT_DIR} "
            f"holds no checkpoint{kept}: a resume would train from step 0 and replace its outputs; restore the "
            "checkpoints or start a new --run-dir")


def check_one_preset(argv):
    """ValueError when --preset is given more than once."""
    given = [argv[number + 1] if arg == "--preset" and number + 1 < len(argv) else arg.partition("=")[2]
             for number, arg in enumerate(argv) if arg == "--preset" or arg.startswith("--preset=")]
    if len(given) > 1:
        raise ValueError(f"--preset given {len(given)} times ({', '.join(given)}): give one (flags beside it "
                         "override its values)")


def check_preset_on_resume(preset, given, recorded, run_dir):
    """RunDirError naming each field that `preset` sets (and no flag in `given` sets) to another value than the
    `recorded` config dict: a preset does not change a resumed run."""
    if preset is None:
        return
    differences = [f"{directory.flag_of(name)} {_shown(value)}, the run has {_shown(recorded[name])}"
                   for name, value in PRESETS[preset].items()
                   if name not in given and name in recorded and recorded[name] != value]
    if differences:
        raise directory.RunDirError(
            f"--resume {run_dir}: --preset {preset} sets " + "; ".join(differences) + " (a preset does not change "
            "a resumed run: give a flag itself to change what a resume may change, or start a new --run-dir)")


def unused_preset_fields(preset, given, noise_type):
    """The fields `preset` would set (no flag in `given` setting them) that `noise_type` does not read."""
    if preset is None or noise_type == "masking":
        return []
    return [name for name in MASKING_ONLY if PRESETS[preset].get(name) and name not in given]


def check_masking_only(config, given):
    """ValueError naming the flag when a flag in `given` sets a masking-only field for other noise."""
    for name in MASKING_ONLY:
        if name in given and getattr(config, name) and config.noise_type != "masking":
            raise ValueError(f"{directory.flag_of(name)} applies to masking noise only, --noise-type "
                             f"{config.noise_type} given")


def _shown(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
