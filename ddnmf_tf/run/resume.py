"""What a resumed run may change, and the checks that refuse the rest by flag before anything trains."""

from ddnmf_tf.data.names import is_named
from ddnmf_tf.run.checkpoints import head_clusters, newest_intact_checkpoint
from ddnmf_tf.run.directory import RunDirError, flag_of, has_checkpoint, load_config, load_settings

# What a resumed run may change. The rest fixes the architecture, the data, the data order and the noise it
# replays. The data's location (source, data_dir) may change: its fingerprints must not.
RESUMABLE_CHANGES = ("epochs", "learning_rate", "jit_compile", "head_epochs", "head_learning_rate")


# The clustering head's other fields may change until the head has trained a step.
HEAD_FIELDS = ("head_layers", "head_weight", "head_confidence", "head_update_every", "head_init_sample",
               "head_umap_neighbors", "head_refits", "head_shift")


RESUMABLE_SETTINGS = ("source", "data_dir", "eval_dataset", "eval_limit", "clusters", "eval_every", "summary_every",
                      "checkpoint_every", "quiet", "clusterers", "cluster_seed", "umap_neighbors", "strategy", "deterministic",
                      "export_dir", "projector_examples")


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
    contradictions = [f"{flag_of(name)} is {_shown(old, name)} in the run, {_shown(new, name)} given"
                      for name, old, new in pairs if _comparable(old) != _comparable(new)]
    if contradictions:
        raise RunDirError(f"--resume {run_dir}: " + "; ".join(contradictions) +
                          " (start a new --run-dir to train with other settings)")


def check_same_data(run_dir, fingerprints):
    """RunDirError unless the data's {split role: fingerprint} equal those the run recorded (if it did)."""
    recorded = load_settings(run_dir)
    where = "--data-dir" if is_named(recorded.get("dataset")) else "--dataset"
    for split, digest in (recorded.get("fingerprints") or {}).items():
        given = fingerprints.get(split)
        if given is not None and given != digest:
            raise RunDirError(
                f"--resume {run_dir}: the {split} data differs from the run's (fingerprint {given}, the run "
                f"recorded {digest}): point {where} at the data the run trained on"
            )


def _comparable(value):
    return list(value) if isinstance(value, tuple) else value


def _shown(value, name=None):
    """A recorded or given value as its flag spells it: '500,500', '20x20' (--image-size), 0.1."""
    if isinstance(value, (list, tuple)):
        return repr(("x" if name == "image_size" else ",").join(map(str, value)))
    return repr(value)
