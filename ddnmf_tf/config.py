"""`DDNMFConfig`: every hyperparameter of a DDNMF run, validated when built."""

import dataclasses
import json
import math
import numbers
import zlib
from typing import Tuple

import numpy as np

NOISE_TYPES = ("masking", "gaussian", "salt_and_pepper")
LR_SCHEDULES = ("constant", "cosine", "step", "warmup", "restarts")  # training.learning_rate_at
LOSS_REDUCTIONS = ("mean", "sum")  # of each squared error over a layer's features (ddnmf_tf.model.losses)
LOSS_WEIGHTS = ("alpha", "beta", "gamma", "reconstruction_weight")  # of the DDNMF epochs' loss; one must be > 0


class ConfigError(ValueError):
    """A hyperparameter has a value the model cannot use."""


@dataclasses.dataclass(frozen=True)
class DDNMFConfig:
    """Hyperparameters of the DDNMF model and its training.

    Defaults follow the paper where it speaks and the authors' public script
    where it is silent; `docs/model.md` says which is which and why.
    """

    # Architecture: encoder sizes after the input; the decoder mirrors them.
    input_dim: int = 784
    layer_sizes: Tuple[int, ...] = (500, 500, 2000)
    rank: int = 10
    nmf_bias: bool = False

    # Loss weights of eq 7, plus the authors' student-to-clean-input term
    # (defaults measured: docs/model.md, "Default loss weights").
    alpha: float = 1.0
    beta: float = 0.01
    gamma: float = 0.1
    reconstruction_weight: float = 1.0
    # True reproduces the authors' script: L_ap also trains the supervisor.
    apposition_trains_supervisor: bool = False
    # Each squared error over a layer's features: "mean", or "sum" as the paper's norms (losses.py).
    loss_reduction: str = "mean"

    # Corruption of the student's input (eq 2).
    noise_type: str = "masking"
    noise_level: float = 0.1
    noise_rescale: bool = False
    noise_fixed: bool = False

    # Optimisation.
    learning_rate: float = 1e-3
    # Set once an epoch from learning_rate over `epochs` (ddnmf_tf.training.step.learning_rate_at).
    lr_schedule: str = "constant"
    batch_size: int = 128
    epochs: int = 100  # docs/choices.md: the training length
    seed: int = 0
    jit_compile: bool = True

    # The clustering head (ddnmf_tf.model.head): a softmax MLP on H trained for head_epochs after the DDNMF epochs
    # (0: none, K-means's centres are served), jointly with L_in, on UMAP+GMM's confident clusters of a sample
    # of at most head_init_sample training examples (0: all) embedded with head_umap_neighbors neighbours,
    # refitted head_refits times, on images moved by
    # up to head_shift pixels, and on its own confident predictions every head_update_every steps (0: never).
    # docs/results.md, "The served clusters", measures these defaults.
    head_epochs: int = 10
    head_layers: Tuple[int, ...] = (256, 256)
    head_weight: float = 1.0
    head_learning_rate: float = 1e-3
    head_confidence: float = 0.9
    head_update_every: int = 0
    head_init_sample: int = 10_000
    head_umap_neighbors: int = 100  # the UMAP neighbours of the head's targets (scoring has its own, --umap-neighbors)
    head_refits: int = 1  # UMAP+GMM refits of the targets, at head epochs spread evenly (model.head.refit_epochs)
    head_shift: int = 2  # pixels: the head epochs' images move by up to this along each axis (images only)

    def __post_init__(self):
        object.__setattr__(self, "layer_sizes", tuple(self.layer_sizes))
        object.__setattr__(self, "head_layers", tuple(self.head_layers))
        _validate(self)

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        as_dict = dataclasses.asdict(self)
        as_dict["layer_sizes"] = list(self.layer_sizes)
        as_dict["head_layers"] = list(self.head_layers)
        return as_dict

    @classmethod
    def from_dict(cls, values: dict) -> "DDNMFConfig":
        """Build from `to_dict` output; unknown keys are an error. A dict with RETIRED_FIELDS (an older version's
        config.json) keeps none of its head fields: its head, if any, is not served, and one trained on resuming
        it takes the current defaults."""
        known = {field.name for field in dataclasses.fields(cls)}
        if any(name in values for name in RETIRED_FIELDS):  # an older version's DEC head: its fields meant other things
            values = {name: value for name, value in values.items() if not name.startswith("head_")}
            values["head_epochs"] = 0
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# A field that older versions wrote into config.json, with a clustering head of DEC's kind (Student's t centres).
RETIRED_FIELDS = ("head_init",)

# Named sets of fields (train.run --preset); flags given beside a preset override it.
PRESETS = {
    # The authors' public script (docs/model.md): bias on H, L_nc weight 1, L_ap also training the supervisor,
    # dropout-style masking 0.1 drawn once per image with rescaling, 300 epochs.
    "authors": dict(nmf_bias=True, gamma=1.0, apposition_trains_supervisor=True, noise_type="masking",
                    noise_level=0.1, noise_rescale=True, noise_fixed=True, epochs=300),
    # Equations 4-7 alone: the paper's squared norms and no student-to-clean-input term.
    "paper": dict(reconstruction_weight=0.0, loss_reduction="sum", nmf_bias=False,
                  apposition_trains_supervisor=False),
}


def derive_seed(seed, *keys) -> int:
    """An independent 31-bit seed for the random stream named by `keys` (ints or names) under `seed`."""
    entropy = [zlib.crc32(key.encode()) if isinstance(key, str) else key for key in (seed, *keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_whole(name, value, least=0, error=ValueError):
    """Raise `error` naming `name` unless `value` is a whole number (not a bool) >= `least`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise error(f"{name} must be a whole number >= {least}, got {value!r}")


def _validate(config: DDNMFConfig) -> None:
    if not config.layer_sizes:
        raise ConfigError("layer_sizes is empty: give at least one encoder layer size, e.g. 500,500,2000")
    for name in ("input_dim", "rank", "batch_size", "epochs"):
        check_whole(name, getattr(config, name), 1, ConfigError)
    for size in config.layer_sizes:
        if not _is_whole(size) or size <= 0:
            raise ConfigError(
                f"layer_sizes must be positive whole numbers, got {list(config.layer_sizes)!r}"
            )
    for name in ("alpha", "beta", "gamma", "reconstruction_weight", "head_weight"):
        value = getattr(config, name)
        if not _is_number(value) or not 0 <= value < math.inf:
            raise ConfigError(f"loss weight {name} must be a finite number >= 0, got {value!r}")
    if not any(getattr(config, name) for name in LOSS_WEIGHTS):
        raise ConfigError(f"loss weights {', '.join(LOSS_WEIGHTS)} are all 0: the DDNMF epochs would train nothing")
    if config.loss_reduction not in LOSS_REDUCTIONS:
        raise ConfigError(
            f"unknown loss_reduction {config.loss_reduction!r}; choose one of {', '.join(LOSS_REDUCTIONS)}"
        )
    if config.noise_type not in NOISE_TYPES:
        raise ConfigError(
            f"unknown noise_type {config.noise_type!r}; choose one of {', '.join(NOISE_TYPES)}"
        )
    if not _is_number(config.noise_level) or not 0 <= config.noise_level < 1:
        raise ConfigError(f"noise_level must be in [0, 1), got {config.noise_level!r}")
    if not _is_number(config.learning_rate) or not 0 < config.learning_rate < math.inf:
        raise ConfigError(f"learning_rate must be a finite number > 0, got {config.learning_rate!r}")
    if config.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(
            f"unknown lr_schedule {config.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}"
        )
    for name in ("head_epochs", "head_update_every", "head_init_sample", "head_refits", "head_shift", "seed"):
        check_whole(name, getattr(config, name), 0, ConfigError)
    check_whole("head_umap_neighbors", config.head_umap_neighbors, 2, ConfigError)
    for width in config.head_layers:
        if not _is_whole(width) or width <= 0:
            raise ConfigError(f"head_layers must be positive whole numbers, got {list(config.head_layers)!r}")
    if not _is_number(config.head_confidence) or not 0 <= config.head_confidence < 1:
        raise ConfigError(f"head_confidence must be in [0, 1), got {config.head_confidence!r}")
    if not _is_number(config.head_learning_rate) or not 0 < config.head_learning_rate < math.inf:
        raise ConfigError(f"head_learning_rate must be a finite number > 0, got {config.head_learning_rate!r}")

