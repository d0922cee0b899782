"""The datasets, splits and sources the data layer knows by name, and its one error type."""

from __future__ import annotations

from pathlib import Path

DATASETS = ("mnist", "binarized_mnist", "fashion_mnist")
"""Names accepted by :func:`load_dataset`, :func:`load_arrays` and :func:`dataset_info`."""


SPLITS = ("train", "test", "all")
"""Split names; ``"all"`` is train followed by test."""


SOURCES = ("auto", "tfds", "idx")


BINARIZATIONS = ("threshold", "stochastic")


COLOR_MODES = ("grayscale", "rgb")


TFDS_PREFIX = "tfds:"
"""``--dataset tfds:NAME[/CONFIG]``: any image dataset of the tfds catalog."""


DATA_DIR_ENV = "DDNMF_DATA_DIR"
"""Environment variable naming the default folder of IDX files."""


DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts the Fashion-MNIST IDX files."""


IMAGE_SHAPE = (28, 28)


NUM_CLASSES = 10


UNLABELED = -1


class DataError(ValueError):
    """A dataset cannot be loaded: bad name, missing or malformed files, no source."""


def check_choice(kind: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise DataError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")


def is_named(dataset) -> bool:
    """Whether ``dataset`` names a dataset with splits (a name of :data:`DATASETS` or ``tfds:NAME``)."""
    return isinstance(dataset, str) and (dataset in DATASETS or dataset.startswith(TFDS_PREFIX))
