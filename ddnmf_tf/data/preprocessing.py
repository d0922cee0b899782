"""How a run turns stored values into the model's inputs in [0, 1], recorded as `preprocessing.json`.

Fitted on the training data (`Preprocessing.fit`), applied by every reader:
the training pipeline, train.evaluate, train.encode and the exported SavedModel.

    scaling "divide_255"  uint8 data: x / 255
    scaling "none"        float (or boolean) data already in [0, 1]: used as it is
    scaling "min_max"     any other finite numbers: (x - min) / (max - min) per feature, with the
                          training data's min and max; a constant feature becomes 0; clipped to [0, 1]

`shape` is one example's shape as stored ([28, 28], [32, 32, 3], [64]): images
are drawn and served in it.

The same rule reads every example a reader is given, whatever its dtype
(`apply` in NumPy, `apply_tf` in the SavedModel's graph, which
`ddnmf_tf.inference.Served` runs for train.encode --run-dir too):

    "min_max"               the values as stored, in any dtype: min-max scaled as above
    "divide_255" or "none"  uint8: x / 255; any other dtype, as float32: an example with a value
                            above 1 is taken as 0-255 values and divided by 255, any other is
                            taken to be in [0, 1] already; nothing is clipped
"""

import dataclasses
import json
import math
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from ddnmf_tf.files import write_json

PREPROCESSING_FILE = "preprocessing.json"
SCALINGS = ("divide_255", "none", "min_max")
CHUNK_ROWS = 65_536  # rows read at a time when fitting on memory-mapped data


class PreprocessingError(ValueError):
    """The data cannot be scaled: NaN or infinite values, or values that are not numbers."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """The scaling of a run's inputs and the shape of one example (see the module docstring)."""

    scaling: str = "divide_255"
    shape: Tuple[int, ...] = (28, 28)
    minimum: Optional[Tuple[float, ...]] = None  # min_max only: per feature, training data
    maximum: Optional[Tuple[float, ...]] = None

    def __post_init__(self):
        if self.scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {self.scaling!r}; choose one of {', '.join(SCALINGS)}")
        object.__setattr__(self, "shape", tuple(int(size) for size in self.shape))
        if (self.scaling == "min_max") != (self.minimum is not None and self.maximum is not None):
            raise ValueError("min_max scaling needs a minimum and a maximum per feature, and only it has them")
        for name in ("minimum", "maximum"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(float(value) for value in getattr(self, name)))
                if len(getattr(self, name)) != self.input_dim:
                    raise ValueError(f"{name} has {len(getattr(self, name))} values for {self.input_dim} features")

    @property
    def input_dim(self):
        """Features per example: the product of `shape`."""
        return math.prod(self.shape)

    @property
    def is_image(self):
        """Whether examples are images ([height, width] or [height, width, channels]) stored as uint8."""
        return self.scaling == "divide_255" and len(self.shape) in (2, 3)

    @classmethod
    def fit(cls, values, shape, origin="the data"):
        """The preprocessing of `values` ([n, features], any numeric dtype, memory-mapped or not).

        Reads memory-mapped data in chunks. PreprocessingError, naming `origin`,
        for values that are not numbers or not finite.
        """
        kind = np.asarray(values[:0]).dtype.kind
        if kind not in "biuf":
            raise PreprocessingError(f"{origin}: values of type {values.dtype} are not numbers")
        if values.dtype == np.uint8:
            return cls("divide_255", shape)
        low = np.full(values.shape[1], np.inf)
        high = np.full(values.shape[1], -np.inf)
        for start in range(0, len(values), CHUNK_ROWS):
            chunk = np.asarray(values[start:start + CHUNK_ROWS], np.float64)
            if not np.isfinite(chunk).all():
                row = start + int(np.argwhere(~np.isfinite(chunk))[0][0])
                raise PreprocessingError(f"{origin}: example {row} holds a NaN or infinite value")
            low, high = np.minimum(low, chunk.min(axis=0)), np.maximum(high, chunk.max(axis=0))
        if kind == "b" or (len(values) and low.min() >= 0 and high.max() <= 1):
            return cls("none", shape)
        return cls("min_max", shape, tuple(low), tuple(high))

    def apply(self, rows):
        """float32 [n, features] of stored rows [n, features] (numpy), by the rule of the module docstring."""
        rows = np.asarray(rows)
        if self.scaling == "min_max":
            low, scale = self._min_max_constants()
            return np.clip((np.asarray(rows, np.float32) - low) * scale, 0, 1)
        if rows.dtype == np.uint8:
            return rows.astype(np.float32) / 255.0
        values = np.asarray(rows, np.float32)
        return np.where(values.max(axis=1, initial=-np.inf, keepdims=True) > 1, values / 255.0, values)

    def apply_tf(self, rows):
        """The same as `apply` for uint8 or float32 rows [batch, features], in TensorFlow ops (the SavedModel's
        signatures and ddnmf_tf.inference.Served)."""
        if self.scaling == "min_max":
            low, scale = self._min_max_constants()
            return tf.clip_by_value((tf.cast(rows, tf.float32) - tf.constant(low)) * tf.constant(scale), 0.0, 1.0)
        if rows.dtype == tf.uint8:
            return tf.cast(rows, tf.float32) / 255.0
        above = tf.reduce_max(rows, axis=1, keepdims=True) > 1
        return tf.where(above, rows / 255.0, rows)

    def _min_max_constants(self):
        """float32 minimum [features] and 1 / (maximum - minimum) (0 for a constant feature)."""
        low = np.asarray(self.minimum, np.float32)
        span = np.asarray(self.maximum, np.float32) - low
        return low, np.divide(1, span, out=np.zeros_like(span), where=span > 0)

    def to_dict(self):
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


def save_preprocessing(run_dir, preprocessing):
    write_json(Path(run_dir) / PREPROCESSING_FILE, preprocessing.to_dict())


def default_preprocessing(input_dim=784):
    """uint8 data of `input_dim` features: square images when it is a square (28x28 for 784), else vectors."""
    side = math.isqrt(input_dim)
    return Preprocessing("divide_255", (side, side) if side * side == input_dim else (input_dim,))


def load_preprocessing(run_dir, input_dim=784):
    """The run's preprocessing; a run written before preprocessing.json existed: `default_preprocessing`."""
    path = Path(run_dir) / PREPROCESSING_FILE
    if path.is_file():
        return Preprocessing.from_dict(json.loads(path.read_text()))
    return default_preprocessing(input_dim)


def input_note(preprocessing, values, origin, chunk=65_536):
    """A line saying how the stored rows `values` [n, features] are read when that is not what the run's own
    data was (this module's rule), or None."""
    if values.dtype == np.uint8 or not len(values):
        return None
    highs = np.concatenate([np.asarray(values[start:start + chunk], np.float32).max(axis=1)
                            for start in range(0, len(values), chunk)])
    if preprocessing.scaling == "min_max":
        trained = max(preprocessing.maximum)
        if highs.max() <= 1 < trained:
            return (f"note: {origin}: every value is within [0, 1], but the run min-max scales values as stored "
                    f"(its training values reach {trained:g}): pass them unscaled")
        return None
    above = int((highs > 1).sum())
    if above:
        return (f"note: {origin}: {above} of {len(values)} examples hold values above 1: read as 0-255 values and "
                "divided by 255 (the run's inputs are in [0, 1])")
    return None
