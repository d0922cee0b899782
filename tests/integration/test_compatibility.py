"""A run directory written by an earlier version of the package (tests/data/old_run: 300 of scikit-learn's digits,
1 DDNMF epoch and 1 head epoch, a 64-16 | 3 model) loads, evaluates, exports and resumes with the current code."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from ddnmf_tf.cli import evaluate
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.inference import load_served
from ddnmf_tf.run import directory
from ddnmf_tf.serving import export_run

OLD_RUN = Path(__file__).resolve().parents[1] / "data" / "old_run"
DATA_PLACEHOLDER = "DIGITS_NPZ"  # the run's recorded dataset path, replaced by where the test writes the digits


@pytest.fixture
def old_run(tmp_path):
    x, y = load_digits(return_X_y=True)
    data = tmp_path / "digits.npz"
    np.savez(data, x=x[:300], y=y[:300])
    run_dir = Path(shutil.copytree(OLD_RUN, tmp_path / "run"))
    for name in (directory.SETTINGS_FILE, directory.RESULTS_FILE):
        path = run_dir / name
        path.write_text(path.read_text().replace(DATA_PLACEHOLDER, str(data)))
    return run_dir, x[:300]


def test_the_served_clusters_of_an_older_run_are_its_assignments(old_run, tmp_path):
    run_dir, x = old_run
    served = load_served(run_dir, log=lambda line: None)
    assert served.head is not None and served.clusters == 3
    np.testing.assert_array_equal(served.predict(x)["cluster"], np.load(run_dir / directory.ASSIGNMENTS_FILE))
    version_dir = export_run(run_dir, tmp_path / "models")
    exported = tf.saved_model.load(str(version_dir)).signatures["serving_default"](
        images=tf.constant(served.preprocessing.apply(x)))
    np.testing.assert_array_equal(exported["cluster"].numpy(), np.load(run_dir / directory.ASSIGNMENTS_FILE))


def test_an_older_run_evaluates_to_its_recorded_served_score(old_run, tmp_path):
    run_dir, _ = old_run
    report = tmp_path / "scores.json"
    assert evaluate.run_cli(evaluate.main, ["--run-dir", str(run_dir), "--clusterer", "kmeans",
                                            "--json", str(report)]) == 0
    recorded = json.loads((run_dir / directory.RESULTS_FILE).read_text())["metrics"]["served"]
    assert json.loads(report.read_text())["metrics"]["served"] == pytest.approx(recorded)


def test_an_older_run_resumes_for_more_epochs(old_run):
    run_dir, _ = old_run
    before = json.loads((run_dir / directory.RESULTS_FILE).read_text())["steps"]
    assert train_run.run_cli(train_run.main, ["--resume", "--run-dir", str(run_dir), "--epochs", "2"]) == 0
    after = json.loads((run_dir / directory.RESULTS_FILE).read_text())
    assert after["steps"] == before + 6 and after["served_clusters"] == "head"  # 300 examples, batches of 50
