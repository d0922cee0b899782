"""IDX files (MNIST's format): a folder of train/t10k image and label files, gzipped or not.

A named dataset's folder is `data_dir`, else `$DDNMF_DATA_DIR`, else, for
Fashion-MNIST, Debian's `dataset-fashion-mnist` folder; files that hold a
known split of another dataset (MNIST's read as `fashion_mnist`) are refused.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ddnmf_tf.data.examples import Examples
from ddnmf_tf.data.fingerprints import fingerprint, identify
from ddnmf_tf.data.names import DATA_DIR_ENV, DEBIAN_FASHION_MNIST_DIR, IMAGE_SHAPE, DataError

logger = logging.getLogger(__name__)


# IDX file-name prefix of each part of a split.
_IDX_PREFIXES = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}


IMAGES_STEM = "images-idx3-ubyte"


_LABELS_STEM = "labels-idx1-ubyte"


_IMAGES_MAGIC = 0x00000803  # IDX: unsigned bytes, 3 dimensions


_LABELS_MAGIC = 0x00000801  # IDX: unsigned bytes, 1 dimension


def load_idx(name: str | None, split: str, folder: Path, binarize: str, seed: int) -> Examples:
    """A split of the IDX files in `folder`, read as dataset `name` (None: a folder given as --dataset)."""
    values, labels, shape = _read_idx_split(folder, split, None if name is None else IMAGE_SHAPE)
    if name is not None:
        _check_identity(name, values, labels, folder)
    logger.info("%s/%s: %d examples from IDX folder %s", name or folder, split, len(labels), folder)
    if name == "binarized_mnist":
        values = _binarize(values.astype(np.float32) / 255.0, binarize, seed)
    return Examples(values, labels, shape, f"{folder} ({split} split)")


def _check_identity(name: str, images: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    """DataError when IDX files read as `name` hold another known dataset (binarized_mnist reads MNIST's)."""
    known = identify(fingerprint(images, labels))
    expected = "mnist" if name == "binarized_mnist" else name
    if known is not None and known[0] != expected:
        raise DataError(
            f"{folder} holds {known[0]}'s {known[1]} split, not {expected}'s: point --data-dir (or "
            f"{DATA_DIR_ENV}) at {expected}'s IDX files, or pass --dataset {known[0]}"
        )


def _binarize(images: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "threshold":
        return (images > 0.5).astype(np.float32)
    uniform = np.random.default_rng(seed).random(images.shape, dtype=np.float32)
    return (uniform < images).astype(np.float32)


def idx_folder(name: str, data_dir: str | os.PathLike | None) -> Path | None:
    """The IDX folder to read ``name`` from, or None when none is configured."""
    if data_dir is not None:
        return _existing_folder(Path(data_dir), "data_dir")
    if os.environ.get(DATA_DIR_ENV):
        return _existing_folder(Path(os.environ[DATA_DIR_ENV]), DATA_DIR_ENV)
    if name == "fashion_mnist" and DEBIAN_FASHION_MNIST_DIR.is_dir():
        return DEBIAN_FASHION_MNIST_DIR
    return None


def _existing_folder(folder: Path, origin: str) -> Path:
    if not folder.is_dir():
        raise DataError(f"{origin} {folder} is not a folder")
    return folder


def _read_idx_split(folder: Path, split: str, expected_shape=None) -> tuple[np.ndarray, np.ndarray, tuple]:
    prefixes = _IDX_PREFIXES[split]
    stems = [f"{prefix}-{kind}" for prefix in prefixes for kind in (IMAGES_STEM, _LABELS_STEM)]
    paths = {stem: find_idx_file(folder, stem) for stem in stems}
    missing = [f"{stem}.gz" for stem, path in paths.items() if path is None]
    if missing:
        raise DataError(
            f"{folder} lacks the {split} split: missing {', '.join(missing)} "
            "(or the same names without .gz)"
        )
    parts = [
        _read_idx_pair(paths[f"{prefix}-{IMAGES_STEM}"], paths[f"{prefix}-{_LABELS_STEM}"], expected_shape)
        for prefix in prefixes
    ]
    shapes = {shape for _, _, shape in parts}
    if len(shapes) > 1:
        raise DataError(f"{folder}: the train and t10k images differ in size ({' and '.join(map(str, shapes))})")
    values = np.concatenate([values for values, _, _ in parts])
    labels = np.concatenate([labels for _, labels, _ in parts])
    return values, labels, shapes.pop()


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem.gz``, else ``folder/stem``, else None."""
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_idx_pair(images_path: Path, labels_path: Path, expected_shape=None):
    """uint8 images [n, rows * cols], int64 labels [n], and (rows, cols), which must be `expected_shape` if given."""
    pixels = _read_idx(images_path, _IMAGES_MAGIC, ndim=3)
    if expected_shape is not None and pixels.shape[1:] != expected_shape:
        rows, cols = pixels.shape[1:]
        raise DataError(f"{images_path}: wrong image size {rows}x{cols}, expected 28x28")
    labels = _read_idx(labels_path, _LABELS_MAGIC, ndim=1)
    if len(labels) != len(pixels):
        raise DataError(
            f"count mismatch: {images_path} has {len(pixels)} images "
            f"but {labels_path} has {len(labels)} labels"
        )
    return pixels.reshape(len(pixels), -1), labels.astype(np.int64), tuple(pixels.shape[1:])


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Decode an IDX file of unsigned bytes with ``ndim`` dimensions."""
    raw = _read_bytes(path)
    header_size = 4 * (1 + ndim)
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated file, {len(raw)} bytes, shorter than its IDX header")
    found_magic, *shape = struct.unpack(f">{1 + ndim}I", raw[:header_size])
    if found_magic != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{found_magic:08x}, expected 0x{magic:08x} "
            f"(IDX file of unsigned bytes with {ndim} dimension{'s' * (ndim > 1)})"
        )
    expected_size = math.prod(shape)
    found_size = len(raw) - header_size
    if found_size != expected_size:
        problem = "truncated file" if found_size < expected_size else "trailing bytes"
        raise DataError(
            f"{path}: {problem}, header announces {expected_size} data bytes, file has {found_size}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    """Content of ``path``, decompressed when its name ends in ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except gzip.BadGzipFile:
        raise DataError(f"{path}: not a gzip file") from None
    except (EOFError, zlib.error) as error:
        raise DataError(f"{path}: truncated or corrupt gzip file ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The IDX encoding of an array of unsigned bytes; `magic` overrides the one its dimensions give."""
    header = struct.pack(f">{1 + array.ndim}I", 0x00000800 | array.ndim if magic is None else magic, *array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx_split(folder, prefix: str, images: np.ndarray, labels: np.ndarray, compressed: bool = False):
    """Write `{prefix}-images-idx3-ubyte[.gz]` (uint8 images [n, rows, cols]) and `{prefix}-labels-idx1-ubyte[.gz]`
    into `folder`; returns the two paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, array in ((IMAGES_STEM, images), (_LABELS_STEM, labels)):
        content = idx_bytes(np.asarray(array, np.uint8))
        path = folder / f"{prefix}-{stem}{'.gz' if compressed else ''}"
        path.write_bytes(gzip.compress(content) if compressed else content)
        paths.append(path)
    return tuple(paths)
