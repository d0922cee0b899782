"""Tests of ddnmf_tf.data: sources, IDX decoding and errors, real data, pipeline."""

from __future__ import annotations

import gzip
import logging
import re
import socket
import time

import numpy as np
import pytest

from ddnmf_tf import data
from ddnmf_tf.data.idx import idx_bytes
from tests.helpers import IMAGES_MAGIC, LABELS_MAGIC, random_split, write_file, write_split

MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_COUNT, TEST_COUNT = 5, 3


@pytest.fixture(autouse=True)
def no_ambient_data(monkeypatch, tmp_path_factory):
    """Keep the caller's DDNMF_DATA_DIR and tfds data dir out of every test."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path_factory.mktemp("tfds_empty")))


@pytest.fixture
def idx_dir(tmp_path):
    """A folder with tiny train (5 images) and test (3 images) IDX splits."""
    write_split(tmp_path, "train", *random_split(TRAIN_COUNT, seed=1))
    write_split(tmp_path, "t10k", *random_split(TEST_COUNT, seed=2))
    return tmp_path


@pytest.fixture
def tfds():
    return pytest.importorskip("tensorflow_datasets")


def assert_structure(images: np.ndarray, labels: np.ndarray, count: int) -> None:
    """What load_arrays gives for 28x28 images: float32 [count, 784] in [0, 1], int64 labels [count]."""
    assert images.shape == (count, 784) and images.dtype == np.float32
    assert labels.shape == (count,) and labels.dtype == np.int64
    assert 0.0 <= images.min() and images.max() <= 1.0


# --- names and info -------------------------------------------------------------


def test_dataset_names():
    assert data.DATASETS == ("mnist", "binarized_mnist", "fashion_mnist")


def test_unknown_name_lists_valid_names():
    expected = "unknown dataset 'cifar10'; valid: mnist, binarized_mnist, fashion_mnist"
    with pytest.raises(data.DataError, match=re.escape(expected)):
        data.load_examples("cifar10", "test")


def test_unknown_split_and_binarization(idx_dir):
    with pytest.raises(data.DataError, match="unknown split 'validation'"):
        data.load_examples("mnist", "validation", data_dir=idx_dir)
    with pytest.raises(data.DataError, match="unknown binarize 'otsu'"):
        data.load_examples("binarized_mnist", "test", data_dir=idx_dir, binarize="otsu")


# --- IDX source -----------------------------------------------------------------


@pytest.mark.parametrize("compressed", [True, False])
def test_idx_split_values_and_structure(tmp_path, compressed):
    images, labels = random_split(TRAIN_COUNT, seed=3)
    write_split(tmp_path, "train", images, labels, compressed=compressed)
    loaded_images, loaded_labels = data.load_arrays("mnist", "train", source="idx", data_dir=tmp_path)
    assert_structure(loaded_images, loaded_labels, TRAIN_COUNT)
    np.testing.assert_allclose(loaded_images, images.reshape(TRAIN_COUNT, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_split_all_is_train_then_test(idx_dir):
    train_images, train_labels = data.load_arrays("mnist", "train", data_dir=idx_dir)
    test_images, test_labels = data.load_arrays("mnist", "test", data_dir=idx_dir)
    all_images, all_labels = data.load_arrays("mnist", "all", data_dir=idx_dir)
    assert all_images.dtype == np.float32 and all_labels.dtype == np.int64
    np.testing.assert_array_equal(all_images, np.concatenate([train_images, test_images]))
    np.testing.assert_array_equal(all_labels, np.concatenate([train_labels, test_labels]))
    assert len(all_labels) == TRAIN_COUNT + TEST_COUNT


def test_auto_uses_data_dir_then_env(idx_dir, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ddnmf_tf.data")
    assert len(data.load_examples("mnist", "test", data_dir=idx_dir)) == TEST_COUNT
    monkeypatch.setenv(data.DATA_DIR_ENV, str(idx_dir))
    assert len(data.load_examples("mnist", "train")) == TRAIN_COUNT
    assert f"from IDX folder {idx_dir}" in caplog.text


@pytest.mark.parametrize(
    "make_path", [lambda tmp: tmp / "absent", lambda tmp: write_file(tmp / "f", b"")]
)
def test_data_dir_that_is_not_a_folder(tmp_path, make_path):
    path = make_path(tmp_path)
    with pytest.raises(data.DataError, match=re.escape(f"data_dir {path} is not a folder")):
        data.load_examples("mnist", "test", data_dir=path)


def test_idx_source_needs_a_folder():
    with pytest.raises(data.DataError, match="source='idx' needs a folder .*DDNMF_DATA_DIR"):
        data.load_examples("mnist", "test", source="idx")


def test_missing_split_names_missing_files(tmp_path):
    write_split(tmp_path, "t10k", *random_split(TEST_COUNT, seed=4))
    assert len(data.load_arrays("mnist", "test", data_dir=tmp_path)[1]) == TEST_COUNT
    for split in ("train", "all"):
        with pytest.raises(data.DataError) as raised:
            data.load_examples("mnist", split, data_dir=tmp_path)
        message = str(raised.value)
        assert f"lacks the {split} split" in message
        assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
        assert "t10k" not in message


def _images_bytes(shape=(TEST_COUNT, 28, 28), magic=IMAGES_MAGIC) -> bytes:
    return idx_bytes(np.zeros(shape, np.uint8), magic)


def _half(content: bytes) -> bytes:
    return content[: len(content) // 2]


BAD_FILES = {
    # case: (file to spoil, its content, gzip it?, expected problem)
    "wrong magic": ("t10k-images-idx3-ubyte.gz", _images_bytes(magic=LABELS_MAGIC), True,
                    "wrong magic number 0x00000801, expected 0x00000803"),
    "truncated data": ("t10k-images-idx3-ubyte.gz", _images_bytes()[:-100], True,
                       "truncated file, header announces 2352 data bytes, file has 2252"),
    "truncated header": ("t10k-labels-idx1-ubyte.gz", b"\x00\x00\x08", True,
                         "truncated file, 3 bytes, shorter than its IDX header"),
    "truncated gzip": ("t10k-images-idx3-ubyte.gz", _half(gzip.compress(_images_bytes())), False,
                       "truncated or corrupt gzip file"),
    "not gzip": ("t10k-images-idx3-ubyte.gz", _images_bytes(), False, "not a gzip file"),
    "wrong image size": ("t10k-images-idx3-ubyte.gz", _images_bytes((TEST_COUNT, 27, 27)), True,
                         "wrong image size 27x27, expected 28x28"),
    "count mismatch": ("t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(TEST_COUNT + 1)), True,
                       f"has {TEST_COUNT} images but"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_error_names_file_and_problem(idx_dir, case):
    file_name, content, gzipped, problem = BAD_FILES[case]
    bad_path = idx_dir / file_name
    bad_path.write_bytes(gzip.compress(content) if gzipped else content)
    with pytest.raises(data.DataError) as raised:
        data.load_examples("mnist", "test", data_dir=idx_dir)
    message = str(raised.value)
    assert str(bad_path) in message
    assert problem in message
    assert "\n" not in message


def test_threshold_binarization_at_one_half(tmp_path):
    images = np.array([[[0, 127, 128, 255] * 7] * 28], np.uint8)
    write_split(tmp_path, "t10k", images, np.array([7], np.uint8))
    binary, labels = data.load_arrays("binarized_mnist", "test", data_dir=tmp_path)
    np.testing.assert_array_equal(binary, (images.reshape(1, 784) >= 128).astype(np.float32))
    assert labels.tolist() == [7]


# --- real data ------------------------------------------------------------------


def test_real_mnist_test_split(mnist_dir):
    images, labels = data.load_arrays("mnist", "test", source="idx", data_dir=mnist_dir)
    assert images.shape == (10_000, 784) and images.dtype == np.float32
    assert np.bincount(labels).tolist() == MNIST_TEST_LABEL_COUNTS
    assert images.min() == 0.0 and images.max() == 1.0
    assert images.mean() == pytest.approx(0.1325, abs=5e-4)
    assert_structure(images, labels, 10_000)


def test_real_binarized_mnist(mnist_dir):
    grey, labels = data.load_arrays("mnist", "test", data_dir=mnist_dir)
    binary, binary_labels = data.load_arrays("binarized_mnist", "test", data_dir=mnist_dir)
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary, (grey > 0.5).astype(np.float32))
    np.testing.assert_array_equal(binary_labels, labels)

    def stochastic(seed):
        return data.load_arrays(
            "binarized_mnist", "test", data_dir=mnist_dir, binarize="stochastic", seed=seed
        )[0]

    first, again, other = stochastic(0), stochastic(0), stochastic(1)
    assert set(np.unique(first)) == {0.0, 1.0}
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.mean() == pytest.approx(grey.mean(), abs=2e-3)
    assert np.all(first[grey == 0.0] == 0.0) and np.all(first[grey == 1.0] == 1.0)


def test_debian_fashion_mnist(caplog):
    if not (data.DEBIAN_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist is not installed")
    caplog.set_level(logging.INFO, logger="ddnmf_tf.data")
    train_labels = data.load_arrays("fashion_mnist", "train", source="idx")[1]
    test_labels = data.load_arrays("fashion_mnist", "test", source="idx")[1]
    assert (len(train_labels), len(test_labels)) == (60_000, 10_000)
    assert np.bincount(train_labels).tolist() == [6_000] * 10
    assert_structure(*data.load_arrays("fashion_mnist", "all"), 70_000)
    folder = data.DEBIAN_FASHION_MNIST_DIR
    assert f"fashion_mnist/all: 70000 examples from IDX folder {folder}" in caplog.text


# --- tfds source ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_tfds_source_structure(tfds, monkeypatch, name):
    monkeypatch.setattr(data.tfds, "_reachable", lambda host, port: True)
    with tfds.testing.mock_data(num_examples=4):
        train_images, train_labels = data.load_arrays(name, "train", source="tfds")
        images, labels = data.load_arrays(name, "all", source="tfds")
    assert_structure(train_images, train_labels, 4)
    assert ((0 <= train_labels) & (train_labels < 10)).all()
    assert images.shape == (4, 784) and labels.dtype == np.int64


def test_tfds_binarized_mnist_has_no_labels(tfds, monkeypatch):
    monkeypatch.setattr(data.tfds, "_reachable", lambda host, port: True)
    with tfds.testing.mock_data(num_examples=4, max_value=1):
        images, labels = data.load_arrays("binarized_mnist", "test", source="tfds")
    assert_structure(images, labels, 4)
    assert set(np.unique(images)) <= {0.0, 1.0}
    assert labels.tolist() == [-1] * 4


def test_auto_prefers_prepared_tfds_to_the_environment_folder_not_to_data_dir(tfds, idx_dir, tmp_path_factory, monkeypatch, caplog):
    tfds_dir = tmp_path_factory.mktemp("tfds_prepared")
    (tfds_dir / "mnist" / "3.0.1").mkdir(parents=True)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda builder: True)
    caplog.set_level(logging.INFO, logger="ddnmf_tf.data")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(idx_dir))
    with tfds.testing.mock_data(num_examples=4, data_dir=str(tfds_dir)):
        from_env_folder = data.load_examples("mnist", "train")
        from_explicit_folder = data.load_examples("mnist", "train", data_dir=idx_dir)
    assert len(from_env_folder) == 4  # the IDX folder has TRAIN_COUNT images
    assert "from tfds in" in caplog.text
    # An explicit data_dir is the user's choice and wins over prepared tfds data.
    assert len(from_explicit_folder) == TRAIN_COUNT


# --- no source at all -------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path, tfds):
    """No network, no IDX folder, nothing prepared for tfds."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(data.idx, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-such-folder")


@pytest.mark.parametrize("source", ["auto", "tfds"])
def test_no_source_fails_fast_with_hint(offline, source):
    started = time.monotonic()
    with pytest.raises(data.DataError) as raised:
        data.load_examples("fashion_mnist", "train", source=source)
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert "\n" not in message
    for hint in ("--data-dir", "DDNMF_DATA_DIR", "apt-get install dataset-fashion-mnist",
                 "tfds build fashion_mnist", "TFDS_DATA_DIR"):
        assert hint in message


def test_no_source_hint_for_mnist_skips_apt(offline):
    with pytest.raises(data.DataError) as raised:
        data.load_examples("mnist", "test")
    assert "DDNMF_DATA_DIR" in str(raised.value) and "apt-get" not in str(raised.value)


