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
    "batch_pipeline",
    "dataset_info",
    "fingerprint",
    "identify",
    "load_arrays",
    "load_dataset",
    "SPLITS",
]

logger = logging.getLogger(__name__)

DATASETS = ("mnist", "binarized_mnist", "fashion_mnist")
"""Names accepted by :func:`load_dataset`, :func:`load_arrays` and :func:`dataset_info`."""

SPLITS = ("train", "test", "all")
"""Split names; ``"all"`` is train followed by test."""
SOURCES = ("auto", "tfds", "idx")
BINARIZATIONS = ("threshold", "stochastic")

DATA_DIR_ENV = "DDNMF_DATA_DIR"
"""Environment variable naming the default folder of IDX files."""
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts the Fashion-MNIST IDX files."""

IMAGE_SHAPE = (28, 28)
NUM_PIXELS = math.prod(IMAGE_SHAPE)
NUM_CLASSES = 10
UNLABELED = -1

NETWORK_PROBE_TIMEOUT_S = 2.0
# Host and port tfds downloads each dataset from.
_DOWNLOAD_HOSTS = {
    "mnist": ("storage.googleapis.com", 443),
    "binarized_mnist": ("www.cs.toronto.edu", 80),
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
}
# IDX file-name prefix of each part of a split.
_IDX_PREFIXES = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}
_TFDS_SPLITS = {"train": "train", "test": "test", "all": "train+test"}
_TFDS_READ_BATCH = 10_000  # examples per batch when reading a tfds split into memory
_IMAGES_STEM = "images-idx3-ubyte"
_LABELS_STEM = "labels-idx1-ubyte"
_IMAGES_MAGIC = 0x00000803  # IDX: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 0x00000801  # IDX: unsigned bytes, 1 dimension


# fingerprint() of real splits, decoded as load_arrays decodes them (float32 pixels, int64 labels), keyed
# by (dataset, split). MNIST's training split is not among them: the data layer reads it as named.
_KNOWN_SPLITS = {
    ("mnist", "test"): "10000-e18c63d2a389dec4",
    ("fashion_mnist", "train"): "60000-392dd199f4563f94",
    ("fashion_mnist", "test"): "10000-460d20affd0492cf",
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


def load_dataset(
    name: str,
    split: str,
    *,
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    binarize: str = "threshold",
    seed: int = 0,
) -> tf.data.Dataset:
    """Unbatched ``tf.data.Dataset`` of ``(image, label)`` pairs.

    ``image`` is float32 of shape [784] in [0, 1], ``label`` an int64 scalar
    (-1 for tfds's unlabeled ``binarized_mnist``). The dataset is built from
    in-memory tensors, so its cardinality is known. Arguments are those of
    :func:`load_arrays`.
    """
    images, labels = load_arrays(
        name, split, source=source, data_dir=data_dir, binarize=binarize, seed=seed
    )
    return tf.data.Dataset.from_tensor_slices((images, labels))


def load_arrays(
    name: str,
    split: str,
    *,
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    binarize: str = "threshold",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (float32 [N, 784] in [0, 1]) and labels (int64 [N]) of a split.

    Args:
      name: one of :data:`DATASETS`.
      split: ``"train"``, ``"test"`` or ``"all"`` (train then test).
      source: ``"auto"``, ``"tfds"`` or ``"idx"`` (see the module docstring).
      data_dir: folder of IDX files; defaults to ``$DDNMF_DATA_DIR``, then,
        for Fashion-MNIST, :data:`DEBIAN_FASHION_MNIST_DIR`.
      binarize: ``"threshold"`` or ``"stochastic"``; how MNIST images read
        from IDX files are binarized for ``binarized_mnist``.
      seed: seed of the stochastic binarization.

    Raises:
      DataError: on any problem with the arguments, the files or the sources.
    """
    _check_choice("dataset", name, DATASETS)
    _check_choice("split", split, SPLITS)
    _check_choice("source", source, SOURCES)
    _check_choice("binarize", binarize, BINARIZATIONS)
    idx_dir = _idx_folder(name, data_dir)
    if _use_idx(name, source, idx_dir, data_dir):
        return _load_idx(name, split, idx_dir, binarize, seed)
    return _load_tfds(name, split)


def batch_pipeline(
    dataset: tf.data.Dataset,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    cache: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Cache, optionally shuffle, batch and prefetch a finite dataset.

    Works for any element structure. With ``shuffle_seed`` the whole dataset
    is shuffled once, in an order fixed by the seed (and by TensorFlow's
    global seed, when one is set) and repeated at every iteration.
    """
    if cache:
        dataset = dataset.cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            _finite_cardinality(dataset),
            seed=shuffle_seed,
            reshuffle_each_iteration=False,
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _finite_cardinality(dataset: tf.data.Dataset) -> int:
    size = int(dataset.cardinality())
    if size < 0:
        raise ValueError("shuffling the whole dataset needs a finite, known cardinality")
    return size


def fingerprint(images: np.ndarray, labels: np.ndarray | None = None) -> str:
    """An order-independent digest of a set of examples: ``"<count>-<16 hex digits>"``.

    Each example (its float32 values and int64 label) is hashed with BLAKE2b
    to 64 bits and the hashes are summed modulo 2**64, so shuffling the
    examples leaves the fingerprint unchanged and the fingerprint of a union
    of disjoint sets is the sum of theirs.
    """
    rows = np.ascontiguousarray(images, np.float32).reshape(len(images), -1)
    labels = np.full(len(rows), UNLABELED, np.int64) if labels is None else np.asarray(labels, np.int64)
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(row.tobytes() + label.tobytes(), digest_size=8).digest(), "little")
         for row, label in zip(rows, labels)),
        np.uint64, len(rows),
    )
    return f"{len(rows)}-{int(hashes.sum(dtype=np.uint64)):016x}"


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


def _load_idx(
    name: str, split: str, folder: Path, binarize: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _read_idx_split(folder, split)
    _check_identity(name, images, labels, folder)
    logger.info("%s/%s: %d examples from IDX folder %s", name, split, len(labels), folder)
    if name == "binarized_mnist":
        images = _binarize(images, binarize, seed)
    return images, labels


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


def _read_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
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
        _read_idx_pair(paths[f"{prefix}-{_IMAGES_STEM}"], paths[f"{prefix}-{_LABELS_STEM}"])
        for prefix in prefixes
    ]
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    return images, labels


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem.gz``, else ``folder/stem``, else None."""
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    pixels = _read_idx(images_path, _IMAGES_MAGIC, ndim=3)
    if pixels.shape[1:] != IMAGE_SHAPE:
        rows, cols = pixels.shape[1:]
        raise DataError(f"{images_path}: wrong image size {rows}x{cols}, expected 28x28")
    labels = _read_idx(labels_path, _LABELS_MAGIC, ndim=1)
    if len(labels) != len(pixels):
        raise DataError(
            f"count mismatch: {images_path} has {len(pixels)} images "
            f"but {labels_path} has {len(labels)} labels"
        )
    images = pixels.reshape(len(pixels), NUM_PIXELS).astype(np.float32) / 255.0
    return images, labels.astype(np.int64)


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


def _load_tfds(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a tfds split, preparing the dataset when needed."""
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name)
    if not _tfds_prepared(builder):
        _download_tfds(builder, name)
    batches = list(
        tfds.as_numpy(builder.as_dataset(split=_TFDS_SPLITS[split], batch_size=_TFDS_READ_BATCH))
    )
    pixels = np.concatenate([batch["image"] for batch in batches])
    pixels = pixels.reshape(len(pixels), NUM_PIXELS).astype(np.float32)
    images = pixels if name == "binarized_mnist" else pixels / 255.0  # binarized: 0/1 already
    if "label" in batches[0]:
        labels = np.concatenate([batch["label"] for batch in batches]).astype(np.int64)
    else:
        labels = np.full(len(images), UNLABELED, dtype=np.int64)
    logger.info("%s/%s: %d examples from tfds in %s", name, split, len(labels), builder.data_dir)
    return images, labels


def _download_tfds(builder, name: str) -> None:
    host, port = _DOWNLOAD_HOSTS[name]
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
