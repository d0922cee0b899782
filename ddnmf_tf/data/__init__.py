"""Datasets: MNIST, binarized MNIST and Fashion-MNIST, from tfds or IDX files.

Every dataset comes out the same whatever its source: images are float32
vectors of 784 pixels in [0, 1] (28x28, flattened row by row) and labels are
int64 class indices.

Sources (``source=``):

``"tfds"``
    The TensorFlow Datasets builder of the same name, used as is when it is
    already prepared in the tfds data dir (``TFDS_DATA_DIR`` or
    ``~/tensorflow_datasets``), downloaded otherwise. Before a download the
    download host is probed with a short socket connect, so that a machine
    without network fails in seconds instead of after minutes of tfds retries.
``"idx"``
    A folder holding the standard IDX files (``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``, or the same names without ``.gz``): the
    ``data_dir`` argument, else the ``DDNMF_DATA_DIR`` environment variable,
    else, for Fashion-MNIST only, Debian's ``dataset-fashion-mnist`` folder
    (:data:`DEBIAN_FASHION_MNIST_DIR`). A folder may hold only some splits.
``"auto"``
    An explicit ``data_dir``, else a prepared tfds dataset, else the IDX folder
    of ``DDNMF_DATA_DIR`` or Debian, else a tfds download. An IDX
    folder that is found but lacks the split's files is an error naming them,
    not a reason to download.

Binarized MNIST (``binarized_mnist``):

* From tfds it is the fixed binarization of Larochelle and Murray, which has
  no labels: every label is ``-1``, so such data can train a model but cannot
  score it. Its ``train`` split holds 50,000 images (tfds keeps 10,000 more in
  a ``validation`` split that is not used here).
* From IDX files (the MNIST folder) it is MNIST binarized here, with labels:
  ``binarize="threshold"`` sets a pixel to 1 when its value exceeds 0.5 and to
  0 otherwise; ``binarize="stochastic"`` draws each pixel from
  Bernoulli(pixel value) with a NumPy generator seeded by ``seed``, so a seed
  always gives the same images. Models meant to be scored use this path.

Splits are ``"train"``, ``"test"`` and ``"all"`` (train followed by test).

Data identity: :func:`fingerprint` digests decoded examples independently of
their order (a sum of per-example hashes), so a run can check that it resumes
on the data it started with. The fingerprints of the real MNIST test split and
of Fashion-MNIST's splits are known (:data:`KNOWN_FINGERPRINTS`): IDX files
that hold one of them but are read under another dataset's name (MNIST's files
as ``fashion_mnist``) are refused with a message saying what they hold. Subsets
and other files have unknown fingerprints and are read as named.

Every data problem a user can meet (unknown name or split, missing or
malformed files, no source available) raises :class:`DataError`, a
``ValueError`` whose one-line message names the file or the remedy. The
source used is logged at INFO level on the ``ddnmf_tf.data`` logger.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import math
import os
import socket
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import tensorflow as tf

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DEBIAN_FASHION_MNIST_DIR",
    "DataError",
    "DatasetInfo",
    "Examples",
    "TFDS_PREFIX",
    "has_splits",
    "is_named",
    "load_examples",
    "dataset_info",
    "fingerprint",
    "identify",
    "load_arrays",
    "load_dataset",
    "sample_numbers",
    "SPLITS",
]

logger = logging.getLogger(__name__)

DATASETS = ("mnist", "binarized_mnist", "fashion_mnist")
"""Names accepted by :func:`load_dataset`, :func:`load_arrays` and :func:`dataset_info`."""

SPLITS = ("train", "test", "all")
"""Split names; ``"all"`` is train followed by test."""
SOURCES = ("auto", "tfds", "idx")
BINARIZATIONS = ("threshold", "stochastic")
COLOR_MODES = ("grayscale", "rgb")
TFDS_PREFIX = "tfds:"
"""``--dataset tfds:NAME[/CONFIG]``: any image dataset of the tfds catalog."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_DIR_ENV = "DDNMF_CACHE_DIR"
"""Where decoded tfds and image-folder data is cached (default ``~/.cache/ddnmf_tf``)."""
_FINGERPRINT_CHUNK = 65_536

DATA_DIR_ENV = "DDNMF_DATA_DIR"
"""Environment variable naming the default folder of IDX files."""
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts the Fashion-MNIST IDX files."""

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
UNLABELED = -1

NETWORK_PROBE_TIMEOUT_S = 2.0
# Host and port tfds downloads each dataset from.
_DOWNLOAD_HOSTS = {
    "mnist": ("storage.googleapis.com", 443),
    "binarized_mnist": ("www.cs.toronto.edu", 80),
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
}
_TFDS_HOST = ("storage.googleapis.com", 443)  # tfds's own copies of catalogue datasets
# IDX file-name prefix of each part of a split.
_IDX_PREFIXES = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}
_TFDS_SPLITS = {"train": "train", "test": "test", "all": "train+test"}
_TFDS_READ_BATCH = 10_000  # examples per batch when reading a tfds split into memory
_IMAGES_STEM = "images-idx3-ubyte"
_LABELS_STEM = "labels-idx1-ubyte"
_IMAGES_MAGIC = 0x00000803  # IDX: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 0x00000801  # IDX: unsigned bytes, 1 dimension


# fingerprint() of real splits as stored (uint8 pixels, int64 labels), keyed by (dataset, split). MNIST's
# training split is not among them: the data layer reads it as named.
_KNOWN_SPLITS = {
    ("mnist", "test"): "10000-d69b96459e590d36",
    ("fashion_mnist", "train"): "60000-708e051b33ade898",
    ("fashion_mnist", "test"): "10000-be9a5e7d28ad2125",
}


def _add_fingerprints(*fingerprints: str) -> str:
    """The fingerprint of the union of disjoint sets of examples, from theirs."""
    counts, sums = zip(*(text.split("-") for text in fingerprints))
    return f"{sum(map(int, counts))}-{sum(int(value, 16) for value in sums) % 2**64:016x}"


KNOWN_FINGERPRINTS = {
    **{fingerprint: key for key, fingerprint in _KNOWN_SPLITS.items()},
    _add_fingerprints(_KNOWN_SPLITS["fashion_mnist", "train"], _KNOWN_SPLITS["fashion_mnist", "test"]):
        ("fashion_mnist", "all"),
}
"""``{fingerprint: (dataset, split)}`` of the real splits the package recognises."""


class DataError(ValueError):
    """A dataset cannot be loaded: bad name, missing or malformed files, no source."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    ``num_examples`` maps each split to its size as read from the IDX files;
    tfds's ``binarized_mnist`` has 50,000 training images instead of 60,000.
    The exact size of a loaded split is ``len(labels)`` or
    ``dataset.cardinality()``.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int]
    num_examples: dict[str, int]


def dataset_info(name: str) -> DatasetInfo:
    """Number of classes, image shape and split sizes of dataset ``name``."""
    _check_choice("dataset", name, DATASETS)
    return DatasetInfo(
        name=name,
        num_classes=NUM_CLASSES,
        image_shape=IMAGE_SHAPE,
        num_examples={"train": 60_000, "test": 10_000, "all": 70_000},
    )


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


def load_dataset(
    name,
    split: str = "train",
    **options,
) -> tf.data.Dataset:
    """Unbatched ``tf.data.Dataset`` of ``(image, label)`` pairs of any source :func:`load_examples` takes.

    ``image`` is float32 [features] in [0, 1] (scaled as the module docstring
    says), ``label`` an int64 scalar (-1 where there is none). Built from
    in-memory tensors, so its cardinality is known.
    """
    images, labels = load_arrays(name, split, **options)
    return tf.data.Dataset.from_tensor_slices((images, labels))


def load_arrays(name, split: str = "train", **options) -> tuple[np.ndarray, np.ndarray]:
    """Images (float32 [N, features] in [0, 1]) and labels (int64 [N]) of any source :func:`load_examples` takes.

    The values are scaled by the preprocessing fitted on these very
    examples (uint8: x/255; see :mod:`ddnmf_tf.data.preprocessing`).
    """
    from ddnmf_tf.data.preprocessing import Preprocessing

    examples = load_examples(name, split, **options)
    return Preprocessing.fit(examples.values, examples.shape, examples.origin).apply(examples.values), examples.labels


def load_examples(
    dataset,
    split: str = "train",
    *,
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    binarize: str = "threshold",
    seed: int = 0,
    color_mode: str | None = None,
    image_size: tuple[int, int] | None = None,
) -> Examples:
    """The examples of ``dataset``, as stored.

    Args:
      dataset: a name of :data:`DATASETS`; ``"tfds:NAME[/CONFIG]"``, any image
        dataset of the tfds catalog; a path to a ``.npz`` (array ``x``,
        optional integer labels ``y``) or ``.npy`` file (opened memory-mapped);
        a folder of IDX files; a folder of PNG/JPEG images (one subfolder per
        class gives labels, a flat folder none); or, from Python, an array
        ``x`` or a pair ``(x, y)``.
      split: ``"train"``, ``"test"`` or ``"all"`` (train then test) of a named
        dataset, a tfds dataset or an IDX folder; a file, an image folder or
        an array is one set and ignores it.
      source: ``"auto"``, ``"tfds"`` or ``"idx"`` for a named dataset (see
        the module docstring).
      data_dir: folder of IDX files of a named dataset; defaults to
        ``$DDNMF_DATA_DIR``, then, for Fashion-MNIST,
        :data:`DEBIAN_FASHION_MNIST_DIR`.
      binarize: ``"threshold"`` or ``"stochastic"``; how MNIST images read
        from IDX files are binarized for ``binarized_mnist``.
      seed: seed of the stochastic binarization.
      color_mode: ``"grayscale"`` or ``"rgb"`` for images (default: as stored).
      image_size: (height, width) to resize images to; images of different
        sizes are an error without it.

    Raises:
      DataError: on any problem with the arguments, the files or the sources.
    """
    _check_choice("split", split, SPLITS)
    _check_choice("source", source, SOURCES)
    _check_choice("binarize", binarize, BINARIZATIONS)
    if color_mode is not None:
        _check_choice("color mode", color_mode, COLOR_MODES)
    if not isinstance(dataset, (str, os.PathLike)):
        return _from_arrays(dataset, "the array given")
    dataset = str(dataset)
    if dataset in DATASETS:
        idx_dir = _idx_folder(dataset, data_dir)
        if _use_idx(dataset, source, idx_dir, data_dir):
            return _load_idx(dataset, split, idx_dir, binarize, seed)
        return _load_tfds(dataset, split, color_mode, image_size)
    if dataset.startswith(TFDS_PREFIX):
        return _load_tfds(dataset[len(TFDS_PREFIX):], split, color_mode, image_size)
    path = Path(dataset)
    if not path.exists():
        if os.sep not in dataset and not path.suffix:
            raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}, tfds:NAME[/CONFIG], "
                            "a .npz or .npy file, or a folder of IDX files or of images")
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        if has_splits(path):
            return _load_idx(None, split, path, binarize, seed)
        return _load_image_folder(path, color_mode, image_size)
    if path.suffix == ".npz":
        return _load_npz(path)
    if path.suffix == ".npy":
        return _load_npy(path)
    raise DataError(f"{path}: not a .npz or .npy file, nor a folder of IDX files or images")


def has_splits(dataset) -> bool:
    """Whether ``dataset`` has train and test splits: a named or tfds dataset, or a folder of IDX files."""
    if is_named(dataset):
        return True
    path = Path(dataset) if isinstance(dataset, (str, os.PathLike)) else None
    return path is not None and path.is_dir() and any(
        _find_idx_file(path, f"{prefix}-{_IMAGES_STEM}") for prefix in ("train", "t10k"))


def is_named(dataset) -> bool:
    """Whether ``dataset`` names a dataset with splits (a name of :data:`DATASETS` or ``tfds:NAME``)."""
    return isinstance(dataset, str) and (dataset in DATASETS or dataset.startswith(TFDS_PREFIX))


def fingerprint(values: np.ndarray, labels: np.ndarray | None = None) -> str:
    """An order-independent digest of a set of examples: ``"<count>-<16 hex digits>"``.

    Each example (its values as stored, in their dtype, and its int64 label)
    is hashed with BLAKE2b to 64 bits and the hashes are summed modulo 2**64,
    so shuffling the examples leaves the fingerprint unchanged and the
    fingerprint of a union of disjoint sets is the sum of theirs. Memory-mapped
    values are read in chunks.
    """
    labels = np.full(len(values), UNLABELED, np.int64) if labels is None else np.asarray(labels, np.int64)
    total = 0
    for start in range(0, len(values), _FINGERPRINT_CHUNK):
        rows = np.ascontiguousarray(values[start:start + _FINGERPRINT_CHUNK]).reshape(-1, _row_size(values))
        hashes = np.fromiter(
            (int.from_bytes(hashlib.blake2b(row.tobytes() + label.tobytes(), digest_size=8).digest(), "little")
             for row, label in zip(rows, labels[start:start + _FINGERPRINT_CHUNK])),
            np.uint64, len(rows),
        )
        total += int(hashes.sum(dtype=np.uint64))
    return f"{len(values)}-{total % 2**64:016x}"


def _row_size(values: np.ndarray) -> int:
    return math.prod(values.shape[1:])


def identify(digest: str) -> tuple[str, str] | None:
    """``(dataset, split)`` of a known real split with this :func:`fingerprint`, else None."""
    return KNOWN_FINGERPRINTS.get(digest)


def _check_identity(name: str, images: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    """DataError when IDX files read as `name` hold another known dataset (binarized_mnist reads MNIST's)."""
    known = identify(fingerprint(images, labels))
    expected = "mnist" if name == "binarized_mnist" else name
    if known is not None and known[0] != expected:
        raise DataError(
            f"{folder} holds {known[0]}'s {known[1]} split, not {expected}'s: point --data-dir (or "
            f"{DATA_DIR_ENV}) at {expected}'s IDX files, or pass --dataset {known[0]}"
        )


def _check_choice(kind: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise DataError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")


def _binarize(images: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "threshold":
        return (images > 0.5).astype(np.float32)
    uniform = np.random.default_rng(seed).random(images.shape, dtype=np.float32)
    return (uniform < images).astype(np.float32)


# --- IDX files ---------------------------------------------------------------


def _use_idx(name: str, source: str, idx_dir: Path | None, data_dir) -> bool:
    """Whether to read IDX files rather than tfds (order: see the module docstring)."""
    if source == "idx":
        if idx_dir is None:
            raise DataError(
                f"source='idx' needs a folder of IDX files for {name}: "
                f"pass data_dir (--data-dir) or set {DATA_DIR_ENV}"
            )
        return True
    if source == "tfds" or idx_dir is None:
        return False
    # An explicit data_dir is the user's choice; otherwise prepared tfds data comes first.
    return data_dir is not None or not _tfds_prepared(_tfds_builder(name))


def _load_idx(name: str | None, split: str, folder: Path, binarize: str, seed: int) -> Examples:
    """A split of the IDX files in `folder`, read as dataset `name` (None: a folder given as --dataset)."""
    values, labels, shape = _read_idx_split(folder, split, None if name is None else IMAGE_SHAPE)
    if name is not None:
        _check_identity(name, values, labels, folder)
    logger.info("%s/%s: %d examples from IDX folder %s", name or folder, split, len(labels), folder)
    if name == "binarized_mnist":
        values = _binarize(values.astype(np.float32) / 255.0, binarize, seed)
    return Examples(values, labels, shape, f"{folder} ({split} split)")


def _idx_folder(name: str, data_dir: str | os.PathLike | None) -> Path | None:
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
    stems = [f"{prefix}-{kind}" for prefix in prefixes for kind in (_IMAGES_STEM, _LABELS_STEM)]
    paths = {stem: _find_idx_file(folder, stem) for stem in stems}
    missing = [f"{stem}.gz" for stem, path in paths.items() if path is None]
    if missing:
        raise DataError(
            f"{folder} lacks the {split} split: missing {', '.join(missing)} "
            "(or the same names without .gz)"
        )
    parts = [
        _read_idx_pair(paths[f"{prefix}-{_IMAGES_STEM}"], paths[f"{prefix}-{_LABELS_STEM}"], expected_shape)
        for prefix in prefixes
    ]
    shapes = {shape for _, _, shape in parts}
    if len(shapes) > 1:
        raise DataError(f"{folder}: the train and t10k images differ in size ({' and '.join(map(str, shapes))})")
    values = np.concatenate([values for values, _, _ in parts])
    labels = np.concatenate([labels for _, labels, _ in parts])
    return values, labels, shapes.pop()


def _find_idx_file(folder: Path, stem: str) -> Path | None:
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


# --- tfds --------------------------------------------------------------------


def _tfds_builder(name: str):
    import tensorflow_datasets as tfds  # slow import: only when tfds is needed

    return tfds.builder(name, data_dir=os.environ.get("TFDS_DATA_DIR"))


def _tfds_prepared(builder) -> bool:
    # is_prepared() logs a warning for a folder that does not exist: skip it then.
    return builder.data_path.is_dir() and builder.is_prepared()


def _load_tfds(name: str, split: str, color_mode=None, image_size=None) -> Examples:
    """A split of a tfds image dataset (NAME or NAME/CONFIG), preparing it when needed; decoded once into the cache.

    The image feature is ``image``; the label, when the dataset has one,
    ``label`` (or the dataset's supervised label).
    """
    import tensorflow_datasets as tfds

    try:
        builder = _tfds_builder(name)
    except Exception as error:  # tfds's DatasetNotFoundError and its kin: a bad name
        raise DataError(f"tfds:{name}: {' '.join(str(error).split())[:300]}") from None
    if not _tfds_prepared(builder):
        _download_tfds(builder, name)
    keys = builder.info.supervised_keys or ("image", "label")
    image_key, label_key = keys[0], keys[1] if keys[1] in builder.info.features else None
    if image_key not in builder.info.features:
        raise DataError(f"tfds:{name} has no image feature (features: {', '.join(builder.info.features)})")
    tfds_split = _TFDS_SPLITS.get(split, split)
    key = ("tfds", name, str(builder.info.version), tfds_split, color_mode, image_size)

    def decode():
        def examples():
            for batch in tfds.as_numpy(builder.as_dataset(split=tfds_split, batch_size=_TFDS_READ_BATCH)):
                images = _shaped(batch[image_key], color_mode, image_size)
                labels = batch[label_key] if label_key else np.full(len(images), UNLABELED)
                yield images, labels
        return examples()

    values, labels, shape = _cached(key, decode)
    if name == "binarized_mnist":
        values = np.asarray(values, np.float32)  # 0/1 already: no x/255
    logger.info("%s/%s: %d examples from tfds in %s", name, split, len(labels), builder.data_dir)
    return Examples(values, labels, shape, f"tfds:{name} ({split} split)")


def _shaped(images: np.ndarray, color_mode, image_size) -> np.ndarray:
    """uint8 images [n, h, w(, c)] in the asked colour mode and size (grayscale as [n, h, w])."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if color_mode == "rgb" and images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    elif color_mode == "grayscale" and images.shape[-1] == 3:
        images = np.round(tf.image.rgb_to_grayscale(images.astype(np.float32)).numpy()).astype(images.dtype)
    if image_size is not None and tuple(images.shape[1:3]) != tuple(image_size):
        resized = tf.image.resize(images.astype(np.float32), image_size).numpy()
        images = np.clip(np.round(resized), 0, 255).astype(np.uint8)
    return images[..., 0] if images.shape[-1] == 1 else images


def _download_tfds(builder, name: str) -> None:
    host, port = _DOWNLOAD_HOSTS.get(name, _TFDS_HOST)
    if not _reachable(host, port):
        raise DataError(_no_source_message(name, host))
    logger.info("%s: downloading with tfds into %s", name, builder.data_dir)
    try:
        builder.download_and_prepare()
    except Exception as error:  # any tfds failure here means the data is unavailable
        raise DataError(f"tfds could not download {name}: {error}") from error


def _reachable(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host`` opens within the probe timeout.

    The probe runs in a daemon thread so that a slow DNS lookup cannot hold
    the caller past the timeout either.
    """
    outcome = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=NETWORK_PROBE_TIMEOUT_S).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(NETWORK_PROBE_TIMEOUT_S)
    return outcome == [True]


def _no_source_message(name: str, host: str) -> str:
    if name not in DATASETS:
        return (f"no data for tfds:{name}: it is not prepared in the tfds data dir and {host} is unreachable. "
                f"Prepare it on a networked machine (tfds build {name}) and copy it into the tfds data dir "
                "(TFDS_DATA_DIR, default ~/tensorflow_datasets)")
    ways = [
        f"pass --data-dir (data_dir=) or set {DATA_DIR_ENV} to a folder of the "
        "IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)"
        + (" of MNIST" if name == "binarized_mnist" else ""),
    ]
    if name == "fashion_mnist":
        ways.append(f"apt-get install dataset-fashion-mnist (files in {DEBIAN_FASHION_MNIST_DIR})")
    ways.append(
        f"prepare the tfds dataset on a networked machine (tfds build {name}) and copy it "
        "into the tfds data dir (TFDS_DATA_DIR, default ~/tensorflow_datasets)"
    )
    numbered = "; ".join(f"({number}) {way}" for number, way in enumerate(ways, 1))
    return f"no data for {name}: no local copy and {host} is unreachable. Get it: {numbered}"


# --- arrays, image folders, the decoded-data cache ------------------------------


def _from_arrays(data, origin: str) -> Examples:
    """Examples of an array x [n, ...] or a pair (x, y); DataError naming `origin` for a bad one."""
    x, y = data if isinstance(data, tuple) else (data, None)
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{origin}: values of type {x.dtype} are not numbers")
    if x.ndim < 2 or len(x) == 0:
        raise DataError(f"{origin}: x must have shape [n >= 1, ...], got {list(x.shape)}")
    if x.dtype.kind == "f":
        for start in range(0, len(x), _FINGERPRINT_CHUNK):
            bad = ~np.isfinite(x[start:start + _FINGERPRINT_CHUNK].reshape(-1, _row_size(x))).all(axis=1)
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


def _load_npz(path: Path) -> Examples:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive:
                raise DataError(f"{path}: no array x (arrays: {', '.join(archive.files) or 'none'})")
            data = (archive["x"], archive["y"]) if "y" in archive else archive["x"]
    except DataError:
        raise
    except (ValueError, OSError, zlib.error) as error:
        raise DataError(f"{path}: not a readable .npz file ({' '.join(str(error).split())})") from None
    return _from_arrays(data, str(path))


def _load_npy(path: Path) -> Examples:
    """A .npy of x, memory-mapped: rows are read from disk as batches need them."""
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a readable .npy file ({' '.join(str(error).split())})") from None
    return _from_arrays(x, str(path))


def _image_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The image files of a folder and its class names: one subfolder per class, or none (a flat folder)."""
    def images_in(directory):
        return sorted(path for path in directory.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)

    classes = sorted(path.name for path in folder.iterdir() if path.is_dir() and images_in(path))
    if classes:
        return [file for name in classes for file in images_in(folder / name)], classes
    return images_in(folder), []


def _load_image_folder(folder: Path, color_mode, image_size) -> Examples:
    """PNG/JPEG images through Keras's image utilities, decoded once into the uint8 cache."""
    from PIL import Image

    files, classes = _image_files(folder)
    if not files:
        raise DataError(f"{folder}: no PNG or JPEG images in it or in its subfolders")
    sizes, modes = {}, set()
    for path in files:
        try:
            with Image.open(path) as image:
                sizes.setdefault(image.size, path)
                modes.add(image.mode)
        except OSError as error:
            raise DataError(f"{path}: not a readable image ({error})") from None
    if len(sizes) > 1 and image_size is None:
        (w1, h1), (w2, h2) = list(sizes)[:2]
        raise DataError(f"{folder}: images of different sizes ({h1}x{w1} in {sizes[w1, h1].name}, {h2}x{w2} in "
                        f"{sizes[w2, h2].name}): pass --image-size HxW to resize them")
    height, width = image_size or next(iter(sizes))[::-1]
    color_mode = color_mode or ("grayscale" if modes <= {"L", "1", "I;16", "I"} else "rgb")
    stamp = [(str(path.relative_to(folder)), path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    key = ("images", str(folder.resolve()), stamp, color_mode, (height, width))

    def decode():
        import keras

        dataset = keras.utils.image_dataset_from_directory(
            str(folder), labels="inferred" if classes else None, label_mode="int" if classes else None,
            class_names=classes or None, color_mode=color_mode, image_size=(height, width), batch_size=256,
            shuffle=False, verbose=False)
        for batch in dataset:
            images, labels = batch if classes else (batch, None)
            images = np.clip(np.round(images.numpy()), 0, 255).astype(np.uint8)
            yield _shaped(images, None, None), (labels.numpy() if classes else np.full(len(images), UNLABELED))

    values, labels, shape = _cached(key, decode)
    logger.info("%s: %d images of %s, %d classes", folder, len(labels), shape, len(classes))
    return Examples(values, labels, shape, str(folder), np.array([str(path.relative_to(folder)) for path in files]))


def _cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "ddnmf_tf")


def _cached(key, decode) -> tuple[np.ndarray, np.ndarray, tuple]:
    """uint8 values [n, features] (memory-mapped), labels and example shape of decoded data, decoded once.

    `decode()` yields (images [k, ...], labels [k]) batches; they are
    appended to `<cache>/<hash of key>/values.u8` as they come (so data larger
    than memory never sits in memory), the folder is renamed into place when
    complete, and the values are read back as a read-only memory map.
    """
    folder = _cache_dir() / hashlib.blake2b(json.dumps(key, default=str).encode(), digest_size=12).hexdigest()
    if not (folder / "meta.json").is_file():
        staging = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        staging.mkdir(parents=True, exist_ok=True)
        labels, shape = [], None
        with open(staging / "values.u8", "wb") as stream:
            for images, batch_labels in decode():
                images = np.ascontiguousarray(images, np.uint8)
                if shape is None:
                    shape = images.shape[1:]
                stream.write(images.tobytes())
                labels.append(np.asarray(batch_labels, np.int64))
        if shape is None:
            raise DataError(f"{key[1]}: no examples")
        np.save(staging / "labels.npy", np.concatenate(labels))
        (staging / "meta.json").write_text(json.dumps({"shape": list(shape), "key": key}, default=str))
        try:
            os.rename(staging, folder)
        except OSError:  # another process cached the same data meanwhile
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    shape = tuple(json.loads((folder / "meta.json").read_text())["shape"])
    labels = np.load(folder / "labels.npy")
    values = np.memmap(folder / "values.u8", np.uint8, "r", shape=(len(labels), math.prod(shape)))
    return values, labels, shape
