"""DDNMFClustering: its run directory, refitting, and what it leaves on disk."""

import gc
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from ddnmf_tf import DDNMFClustering
from ddnmf_tf.run.directory import RunDirError

TINY = {"n_clusters": 10, "epochs": 1, "layer_sizes": (32, 16), "head_epochs": 1, "jit_compile": False,
        "batch_size": 100}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x[:400], y[:400]


def test_a_temporary_run_is_removed_with_the_estimator_and_a_refit_trains_anew(digits, tmp_path):
    x, y = digits
    model = DDNMFClustering(random_state=0, **TINY).fit(x, y)
    first = Path(model.run_dir_)
    assert model.run_dir is None and (first / "outputs.json").is_file()  # the constructor's argument is kept
    kept = model.save(tmp_path / "kept")
    np.testing.assert_array_equal(DDNMFClustering.load(kept).predict(x), model.predict(x))
    model.fit(x, y)  # a second fit trains a new run: the first one's temporary folder goes
    assert not first.exists() and Path(model.run_dir_).is_dir()
    second = Path(model.run_dir_)
    del model
    gc.collect()
    assert not second.exists()
    assert (kept / "outputs.json").is_file()  # what save copied stays


def test_a_given_run_dir_is_kept_and_refused_once_it_holds_a_run(digits, tmp_path):
    x, _ = digits
    model = DDNMFClustering(random_state=0, run_dir=str(tmp_path / "run"), **TINY).fit(x)
    assert model.run_dir_ == str(tmp_path / "run") and model.labels_.shape == (len(x),)
    del model
    gc.collect()
    assert (tmp_path / "run" / "outputs.json").is_file()
    with pytest.raises(RunDirError, match="already holds a run: load it with DDNMFClustering.load"):
        DDNMFClustering(random_state=0, run_dir=str(tmp_path / "run"), **TINY).fit(x)
