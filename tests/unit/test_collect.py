"""Tests for train.collect: tables of finished runs, one row a run or a setting over its seeds."""

import json
from pathlib import Path

import pytest

from ddnmf_tf.cli import collect
from ddnmf_tf.config import DDNMFConfig


def _finished(folder, seed, acc, **config):
    folder.mkdir()
    metrics = None if acc is None else {"kmeans": {"acc": acc, "nmi": 0.5, "ari": 0.4}}
    results = {"dataset": "mnist", "train_split": "test", "epochs": 10, "wall_seconds": 60.0 + seed,
               "config": DDNMFConfig(seed=seed, epochs=10, **config).to_dict(), "metrics": metrics}
    (folder / "results.json").write_text(json.dumps(results))
    return str(folder)


def test_rows_name_what_differs_from_the_defaults(tmp_path, capsys):
    collect.main([_finished(tmp_path / "a", 0, 0.6), _finished(tmp_path / "b", 0, 0.7, rank=20)])
    rows = capsys.readouterr().out.strip().splitlines()[2:]
    assert rows[0] == "| mnist | train on test | 0 | 10 | 60 | 0.6000 | 0.5000 | 0.4000 |"
    assert rows[1].startswith("| mnist | rank=20, train on test | 0 | 10 |")


def test_an_autoencoder_run_is_named_and_kept_apart_from_ddnmf(tmp_path, capsys):
    ae1 = _finished(tmp_path / "ae1", 0, 0.5)
    (tmp_path / "ae1" / "autoencoder.json").write_text(json.dumps({"kind": "ae1"}))
    collect.main([_finished(tmp_path / "ddnmf", 1, 0.7), ae1, "--mean"])
    rows = capsys.readouterr().out.strip().splitlines()[2:]
    assert [row.split(" | ")[1:3] for row in rows] == [["train on test", "1"], ["model=AE1, train on test", "0"]]


def test_mean_puts_seeds_of_one_setting_on_one_row(tmp_path, capsys):
    runs = [_finished(tmp_path / f"s{seed}", seed, acc) for seed, acc in ((0, 0.6), (1, 0.7), (2, 0.8))]
    collect.main(runs + ["--mean"])
    rows = capsys.readouterr().out.strip().splitlines()[2:]
    assert rows == ["| mnist | train on test | 0,1,2 | 10 | 61 ± 1 | 0.7000 ± 0.1000 | 0.5000 ± 0.0000 | 0.4000 ± 0.0000 |"]


def test_an_unfinished_run_is_a_one_line_error(tmp_path, capsys):
    assert collect.run_cli(collect.main, [str(tmp_path)]) == 2
    assert "has no results.json: the run has not finished" in capsys.readouterr().err


def test_a_run_on_unlabeled_data_has_empty_score_cells(tmp_path, capsys):
    collect.main([_finished(tmp_path / "a", 0, 0.6), _finished(tmp_path / "b", 1, None)])
    rows = capsys.readouterr().out.strip().splitlines()[2:]
    assert rows[1] == "| mnist | train on test | 1 | 10 | 61 |  |  |  |"


def test_a_train_evaluate_report_gives_its_run_new_scores(tmp_path, capsys):
    run = _finished(tmp_path / "a", 0, 0.6)
    report = tmp_path / "rescored.json"
    report.write_text(json.dumps({"run_dir": run, "metrics": {"umap_gmm": {"acc": 0.9, "nmi": 0.8, "ari": 0.7}}}))
    collect.main([str(report)])
    rows = capsys.readouterr().out.strip().splitlines()
    assert "umap_gmm ACC" in rows[0] and "kmeans ACC" not in rows[0]
    assert rows[2] == "| mnist | train on test | 0 | 10 | 60 | 0.9000 | 0.8000 | 0.7000 |"


def test_a_json_file_that_is_not_a_report_is_a_one_line_error(tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"metrics": {}}))
    assert collect.run_cli(collect.main, [str(other)]) == 2
    assert "is not a train.evaluate --json report" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["epoch 1/10 ...\n", "[1, 2]"])
def test_a_file_that_is_not_a_json_object_is_a_one_line_error(tmp_path, capsys, text):
    log = tmp_path / "run.log"  # e.g. caught by a shell glob beside the run directories
    log.write_text(text)
    assert collect.run_cli(collect.main, [str(log)]) == 2
    assert f"{log} is not a train.evaluate --json report" in capsys.readouterr().err


def test_a_report_with_other_umap_neighbours_says_so(tmp_path, capsys):
    run = _finished(tmp_path / "a", 0, 0.6)
    report = tmp_path / "rescored.json"
    report.write_text(json.dumps({"run_dir": run, "umap_neighbors": 20,
                                  "metrics": {"umap_gmm": {"acc": 0.9, "nmi": 0.8, "ari": 0.7}}}))
    collect.main([str(report)])
    assert capsys.readouterr().out.strip().splitlines()[2].startswith(
        "| mnist | rescored with umap_neighbors=20, train on test | 0 |")


def test_a_run_scored_with_other_umap_neighbours_says_so(tmp_path, capsys):
    run = Path(_finished(tmp_path / "a", 0, 0.6))
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "umap_neighbors": 15}))
    collect.main([str(run), _finished(tmp_path / "b", 0, 0.7)])
    rows = capsys.readouterr().out.strip().splitlines()[2:]
    assert rows[0].startswith("| mnist | scored with umap_neighbors=15, train on test | 0 |")
    assert rows[1].startswith("| mnist | train on test | 0 |")
