"""`load_examples`: the one entry of the data layer, dispatching a dataset argument to its source.

A named dataset (MNIST, binarized MNIST, Fashion-MNIST) comes from
(``source=``):

``"idx"``
    a folder of IDX files: ``data_dir``, else ``$DDNMF_DATA_DIR``, else, for
    Fashion-MNIST, Debian's ``dataset-fashion-mnist`` folder;
``"tfds"``
    the TensorFlow Datasets builder of the same name (prepared, or downloaded);
``"auto"``
    an explicit ``data_dir``, else a prepared tfds dataset, else the IDX folder
    of ``$DDNMF_DATA_DIR`` or Debian, else a tfds download. An IDX folder that
    is found but lacks the split's files is an error naming them, not a reason
    to download.

Binarized MNIST from tfds is the fixed binarization of Larochelle and Murray
(50,000 training images, no labels); from IDX files it is MNIST binarized here
(``binarize="threshold"``: pixel > 0.5; ``"stochastic"``: Bernoulli(pixel)
drawn with ``seed``), with labels. Splits are ``"train"``, ``"test"`` and
``"all"`` (train followed by test).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ddnmf_tf.data import tfds as tfds_source
from ddnmf_tf.data.arrays import load_npy, load_npz
from ddnmf_tf.data.examples import Examples, from_arrays
from ddnmf_tf.data.idx import IMAGES_STEM, find_idx_file, idx_folder, load_idx
from ddnmf_tf.data.images import load_image_folder
from ddnmf_tf.data.names import (BINARIZATIONS, COLOR_MODES, DATA_DIR_ENV, DATASETS, SOURCES, SPLITS, TFDS_PREFIX,
                                 DataError, check_choice, is_named)
from ddnmf_tf.data.preprocessing import Preprocessing


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
    labels: bool = True,
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
      labels: False reads a ``.npz`` file's ``x`` alone (its ``y`` is neither
        read nor checked; the examples are unlabeled).

    Raises:
      DataError: on any problem with the arguments, the files or the sources.
    """
    check_choice("split", split, SPLITS)
    check_choice("source", source, SOURCES)
    check_choice("binarize", binarize, BINARIZATIONS)
    if color_mode is not None:
        check_choice("color mode", color_mode, COLOR_MODES)
    if not isinstance(dataset, (str, os.PathLike)):
        return from_arrays(dataset, "the array given")
    dataset = str(dataset)
    if dataset in DATASETS:
        idx_dir = idx_folder(dataset, data_dir)
        if _use_idx(dataset, source, idx_dir, data_dir):
            return load_idx(dataset, split, idx_dir, binarize, seed)
        return tfds_source.load_tfds(dataset, split, color_mode, image_size)
    if dataset.startswith(TFDS_PREFIX):
        return tfds_source.load_tfds(dataset[len(TFDS_PREFIX):], split, color_mode, image_size)
    path = Path(dataset)
    if not path.exists():
        if os.sep not in dataset and not path.suffix:
            raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}, tfds:NAME[/CONFIG], "
                            "a .npz or .npy file, or a folder of IDX files or of images")
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        if has_splits(path):
            return load_idx(None, split, path, binarize, seed)
        return load_image_folder(path, color_mode, image_size)
    if path.suffix == ".npz":
        return load_npz(path, labels)
    if path.suffix == ".npy":
        return load_npy(path)
    raise DataError(f"{path}: not a .npz or .npy file, nor a folder of IDX files or images")


def load_arrays(name, split: str = "train", **options) -> tuple[np.ndarray, np.ndarray]:
    """Images (float32 [N, features] in [0, 1]) and labels (int64 [N]) of any source :func:`load_examples` takes.

    The values are scaled by the preprocessing fitted on these very
    examples (uint8: x/255; see :mod:`ddnmf_tf.data.preprocessing`).
    """
    examples = load_examples(name, split, **options)
    return Preprocessing.fit(examples.values, examples.shape, examples.origin).apply(examples.values), examples.labels


def has_splits(dataset) -> bool:
    """Whether ``dataset`` has train and test splits: a named or tfds dataset, or a folder of IDX files."""
    if is_named(dataset):
        return True
    path = Path(dataset) if isinstance(dataset, (str, os.PathLike)) else None
    return path is not None and path.is_dir() and any(
        find_idx_file(path, f"{prefix}-{IMAGES_STEM}") for prefix in ("train", "t10k"))


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
    return data_dir is not None or not tfds_source.tfds_prepared(tfds_source.tfds_builder(name))
