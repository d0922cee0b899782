"""Shared test settings: quiet TensorFlow, small deterministic models."""

import os
from pathlib import Path

import pytest

from ddnmf_tf import DDNMFConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")




# The one place the tests name data outside the repository: MNIST's real test split, where development and CI
# machines keep it beside the checkout.
SHARED_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir():
    """The folder of MNIST's real t10k IDX files; the test is skipped where there is none."""
    if not (SHARED_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no MNIST test split in {SHARED_MNIST_DIR}")
    return SHARED_MNIST_DIR


@pytest.fixture
def small_config():
    """A model small enough for unit tests: 64-32-16 | 4 | 16-32-64."""
    return DDNMFConfig(input_dim=64, layer_sizes=(32, 16), rank=4, batch_size=32, epochs=1, jit_compile=False)
