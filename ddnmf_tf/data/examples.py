"""`Examples`, the one container of a set of examples as stored, and the checks every source shares."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ddnmf_tf.data.names import UNLABELED, DataError

CHUNK = 65_536


@dataclasses.dataclass(frozen=True)
class Examples:
    """A set of examples as stored.

    ``values`` is [n, features] in the stored dtype (uint8 for images, else
    any numbers), possibly a read-only memory map; ``labels`` is int64 [n]
    (``UNLABELED``, -1, where there is none); ``shape`` is one example's shape
    ([28, 28], [32, 32, 3], [64]); ``origin`` names where the data came from;
    ``names`` is each example's name, str [n] (its file in an image folder,
    its number in a sample), or None (its number is its row).
    :class:`ddnmf_tf.data.preprocessing.Preprocessing` turns values into the
    model's inputs.
    """

    values: np.ndarray
    labels: np.ndarray
    shape: tuple
    origin: str
    names: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    @property
    def labeled(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    @property
    def num_classes(self) -> int:
        return len(np.unique(self.labels[self.labels >= 0]))

    def sample(self, count: int | None, seed: int) -> Examples:
        """A seeded random subset of ``count`` examples, in their stored order (all of them when None or more)."""
        if count is None or count >= len(self):
            return self
        chosen = sample_numbers(len(self), count, seed)
        return Examples(np.asarray(self.values[chosen]), self.labels[chosen], self.shape, self.origin,
                        self.example_names()[chosen])

    def example_names(self) -> np.ndarray:
        """Each example's name, str [n]: ``names``, else its row number."""
        return self.names if self.names is not None else np.arange(len(self)).astype(str)


def sample_numbers(total: int, count: int, seed: int) -> np.ndarray:
    """``count`` of the numbers 0 .. total - 1 drawn without replacement with ``seed``, in order (all when fewer)."""
    if count >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, count, replace=False))


def row_size(values: np.ndarray) -> int:
    return math.prod(values.shape[1:])


def from_arrays(data, origin: str) -> Examples:
    """Examples of an array x [n, ...] or a pair (x, y); DataError naming `origin` for a bad one."""
    x, y = data if isinstance(data, tuple) else (data, None)
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{origin}: values of type {x.dtype} are not numbers")
    if x.ndim < 2 or len(x) == 0:
        raise DataError(f"{origin}: x must have shape [n >= 1, ...], got {list(x.shape)}")
    if x.dtype.kind == "f":
        for start in range(0, len(x), CHUNK):
            bad = ~np.isfinite(x[start:start + CHUNK].reshape(-1, row_size(x))).all(axis=1)
            if bad.any():
                raise DataError(f"{origin}: example {start + int(np.argmax(bad))} holds a NaN or infinite value")
    if y is None:
        labels = np.full(len(x), UNLABELED, np.int64)
    else:
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            raise DataError(f"{origin}: labels y must be whole numbers, got type {y.dtype}")
        if y.shape != (len(x),):
            raise DataError(f"{origin}: {len(x)} examples but labels y of shape {list(y.shape)}")
        labels = y.astype(np.int64)
    values = x.reshape(len(x), -1) if x.ndim > 2 else x
    return Examples(values, labels, tuple(x.shape[1:]), origin)
