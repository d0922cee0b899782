"""`python -m train.evaluate`: scores of a run's checkpoint, --json, --parts and one-line errors."""

import json

import pytest

from ddnmf_tf.baselines import train_autoencoder
from ddnmf_tf.cli import evaluate
from ddnmf_tf.run.runner import run
from tests.helpers import TINY_CONFIG as TINY
from tests.helpers import tiny_settings


@pytest.fixture(scope="module")
def ddnmf_run(data_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ddnmf")
    run(TINY, tiny_settings(data_dir, run_dir), log=lambda line: None)
    return run_dir


def _evaluate(*flags):
    return evaluate.run_cli(evaluate.main, list(flags))


def test_scores_match_the_runs_own_evaluation_and_go_to_json(ddnmf_run, data_dir, tmp_path, capsys):
    report_path = tmp_path / "scores.json"
    assert _evaluate("--run-dir", str(ddnmf_run), "--data-dir", str(data_dir), "--json", str(report_path)) == 0
    report = json.loads(report_path.read_text())
    trained = json.loads((ddnmf_run / "results.json").read_text())
    assert (report["dataset"], report["split"], report["images"], report["clusters"]) == ("mnist", "test", 100, 10)
    for clusterer in ("kmeans", "gmm"):
        assert report["metrics"][clusterer] == pytest.approx(trained["metrics"][clusterer])
    printed = capsys.readouterr().out
    assert "kmeans" in printed and "ACC" in printed and "NMI" in printed and "ARI" in printed


def test_the_data_comes_from_the_runs_own_folder_by_default(ddnmf_run, tmp_path, monkeypatch):
    monkeypatch.delenv("DDNMF_DATA_DIR", raising=False)
    report_path = tmp_path / "scores.json"
    assert _evaluate("--run-dir", str(ddnmf_run), "--clusterer", "kmeans", "--json", str(report_path)) == 0
    trained = json.loads((ddnmf_run / "results.json").read_text())
    assert json.loads(report_path.read_text())["metrics"]["kmeans"] == pytest.approx(trained["metrics"]["kmeans"])


def test_the_umap_neighbour_count_goes_to_the_report_and_a_bad_one_is_a_one_line_error(ddnmf_run, tmp_path, capsys):
    report_path = tmp_path / "scores.json"
    assert _evaluate("--run-dir", str(ddnmf_run), "--clusterer", "umap_kmeans", "--umap-neighbors", "15",
                     "--json", str(report_path)) == 0
    assert json.loads(report_path.read_text())["umap_neighbors"] == 15
    capsys.readouterr()
    assert _evaluate("--run-dir", str(ddnmf_run), "--umap-neighbors", "1") == 2
    assert "umap_neighbors must be a whole number >= 2, got 1" in capsys.readouterr().err


def test_one_clusterer_and_a_number_of_clusters(ddnmf_run, data_dir, tmp_path):
    report_path = tmp_path / "scores.json"
    assert _evaluate("--run-dir", str(ddnmf_run), "--data-dir", str(data_dir), "--split", "train",
                     "--clusterer", "gmm", "--clusters", "3", "--json", str(report_path)) == 0
    report = json.loads(report_path.read_text())
    assert list(report["metrics"]) == ["served", "gmm"] and report["clusters"] == 3 and report["images"] == 200


def test_parts_figure_of_a_ddnmf_run(ddnmf_run, data_dir, tmp_path):
    parts = tmp_path / "parts.png"
    assert _evaluate("--run-dir", str(ddnmf_run), "--data-dir", str(data_dir), "--parts", str(parts)) == 0
    assert parts.read_bytes()[:4] == b"\x89PNG"


def test_an_autoencoder_run_is_scored_but_has_no_parts(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "ae2"
    train_autoencoder("ae2", TINY, tiny_settings(data_dir, run_dir), log=lambda line: None)
    capsys.readouterr()
    code = _evaluate("--run-dir", str(run_dir), "--data-dir", str(data_dir), "--parts", str(tmp_path / "p.png"))
    assert code == 2
    captured = capsys.readouterr()
    assert "gmm" in captured.out
    assert captured.err.strip() == "error: --parts needs a DDNMF run: an autoencoder has no NMF parts"


@pytest.mark.parametrize("make_run_dir, message", [
    (lambda tmp_path: tmp_path / "missing", "is not a run directory: config.json is missing"),
    (lambda tmp_path: tmp_path, "is not a run directory: config.json is missing"),
])
def test_a_bad_run_dir_is_a_one_line_error(make_run_dir, message, tmp_path, capsys):
    assert _evaluate("--run-dir", str(make_run_dir(tmp_path))) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_a_run_without_checkpoint_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "config.json").write_text(TINY.to_json())
    assert _evaluate("--run-dir", str(tmp_path), "--dataset", "mnist") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no checkpoint in" in lines[0]
