"""Shared test settings: quiet TensorFlow, the `slow` marker, small deterministic models and data.

tests/unit holds tests of one module each, in seconds; tests/integration
trains and serves tiny runs end to end. `pytest -m "not slow"` leaves out the
longest (the quality guard, reproduce, multi-worker, the wheel, the benchmark).
"""

import os
from pathlib import Path

import pytest

from ddnmf_tf import DDNMFConfig
from tests.helpers import write_tiny_mnist

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


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test of a minute or more on 2 CPU cores")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """Tiny MNIST-format IDX files, the same every time: 200 random training images and 100 test images."""
    return write_tiny_mnist(tmp_path_factory.mktemp("idx"))
