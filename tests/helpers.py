"""What the tests share: the repository root, small IDX files (the MNIST file format)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.data.idx import write_idx_split
from ddnmf_tf.run.settings import RunSettings

ROOT = Path(__file__).resolve().parents[1]  # the repository

# The tiny model of most runs in the tests, as train.run flags and as a config, and the flags of the tiny MNIST
# IDX files of the `data_dir` fixture (add --data-dir).
TINY_FLAGS = ["--layers", "32,16", "--rank", "4", "--batch-size", "50", "--no-jit", "--quiet"]
TINY_CONFIG = DDNMFConfig(layer_sizes=(32, 16), rank=4, batch_size=50, epochs=1, jit_compile=False, head_epochs=0)
MNIST_IDX = ["--dataset", "mnist", "--source", "idx"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def write_file(path: Path, content: bytes) -> Path:
    """Write ``content`` to ``path``, gzipped when the name ends in ``.gz``."""
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
    return path


def write_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, *, compressed: bool = True):
    """Write ``{prefix}-images-idx3-ubyte[.gz]`` and ``{prefix}-labels-idx1-ubyte[.gz]`` (the library's writer)."""
    return write_idx_split(folder, prefix, images, labels, compressed)


def write_tiny_mnist(folder: Path, train: int = 200, test: int = 100) -> Path:
    """A folder of random 28x28 IDX images: ``train`` in the train split, ``test`` in the t10k split."""
    write_split(folder, "train", *random_split(train, seed=0))
    write_split(folder, "t10k", *random_split(test, seed=1))
    return folder


def random_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random 28x28 uint8 images and their labels in 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    return images, labels


def tiny_settings(data_dir, run_dir, **changes):
    """RunSettings of a quiet run on the tiny MNIST IDX files of `data_dir`, written into `run_dir`."""
    return RunSettings(**{"dataset": "mnist", "source": "idx", "data_dir": str(data_dir), "run_dir": str(run_dir),
                          "quiet": True, **changes})
