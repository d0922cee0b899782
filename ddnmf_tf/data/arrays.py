"""NumPy sources: a .npz file (x, optional labels y) or a .npy file of x, opened memory-mapped."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ddnmf_tf.data.examples import Examples, from_arrays
from ddnmf_tf.data.names import DataError


def load_npz(path: Path, labels: bool = True) -> Examples:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive:
                raise DataError(f"{path}: no array x (arrays: {', '.join(archive.files) or 'none'})")
            data = (archive["x"], archive["y"]) if labels and "y" in archive else archive["x"]
    except DataError:
        raise
    except (ValueError, OSError, zlib.error) as error:
        raise DataError(f"{path}: not a readable .npz file ({' '.join(str(error).split())})") from None
    return from_arrays(data, str(path))


def load_npy(path: Path) -> Examples:
    """A .npy of x, memory-mapped: rows are read from disk as batches need them."""
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a readable .npy file ({' '.join(str(error).split())})") from None
    return from_arrays(x, str(path))
