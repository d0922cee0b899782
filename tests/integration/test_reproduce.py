"""`python -m train.reproduce --quick`: the tables (md + csv) and the figures, on tiny data."""

import csv
import json

import pytest

from ddnmf_tf.cli import reproduce
from ddnmf_tf.reporting.paper import PAPER_TABLES
from tests.helpers import random_split, write_split, write_tiny_mnist

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    mnist = tmp_path_factory.mktemp("mnist")
    write_split(mnist, "t10k", *random_split(150, seed=2))  # MNIST offline: the test split only
    return mnist, write_tiny_mnist(tmp_path_factory.mktemp("fashion"), train=150, test=100)


def _reproduce(data_dirs, output_dir, *flags):
    mnist, fashion = data_dirs
    return reproduce.run_cli(reproduce.main, ["--quick", "--mnist-dir", str(mnist), "--fashion-dir", str(fashion),
                                              "--output-dir", str(output_dir), *flags])


def _csv_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def _is_png(path):
    return path.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def table_1(data_dirs, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("table1")
    assert _reproduce(data_dirs, output_dir, "--table", "1") == 0
    return output_dir


def test_table_1_quick_writes_the_table_beside_the_papers_and_the_figures(table_1):
    rows = {row["method"]: row for row in _csv_rows(table_1 / "table1.csv")}
    assert set(PAPER_TABLES["mnist"]) < set(rows) and {"AE1+K-means", "AE1+GMM"} < set(rows)
    assert rows["DDNMF+K-means"]["paper_acc"] == "0.8115" and 0 < float(rows["DDNMF+K-means"]["acc"]) <= 1
    markdown = (table_1 / "table1.md").read_text()
    assert "python -m train.reproduce --quick" in markdown and "| DDNMF+GMM |" in markdown
    assert "trained on 150 images of its test split" in markdown
    for figure in ("fig2_mnist.png", "parts_mnist.png"):
        assert _is_png(table_1 / figure)
    assert {path.name for path in (table_1 / "runs").iterdir()} == {"ae1", "ae2", "ddnmf"}


def test_a_second_invocation_reuses_the_finished_runs_of_the_same_config(table_1, data_dirs, capsys):
    first = _csv_rows(table_1 / "table1.csv")
    capsys.readouterr()
    assert _reproduce(data_dirs, table_1, "--table", "1") == 0
    assert capsys.readouterr().out.count("reusing the finished run in") == 3
    assert [row["acc"] for row in _csv_rows(table_1 / "table1.csv")] == [row["acc"] for row in first]
    assert _reproduce(data_dirs, table_1, "--table", "1", "--epochs", "2") == 2
    assert "holds a run of another config" in capsys.readouterr().err


def test_table_3_quick_sweeps_both_datasets_and_draws_fig_3(data_dirs, tmp_path):
    assert _reproduce(data_dirs, tmp_path, "--table", "3", "--levels", "0.4", "--clusterers", "kmeans,umap_gmm") == 0
    rows = _csv_rows(tmp_path / "table3.csv")
    assert len(rows) == 2 * 2 * 2  # datasets x models x clusterers at one level
    assert {row["clusterer"] for row in rows} == {"kmeans", "umap_gmm"}
    assert {(row["dataset"], row["model"], row["paper_acc"]) for row in rows} >= {
        ("mnist", "DDNMF", "0.7840"), ("fashion_mnist", "AE1", "0.4838")}
    assert "fashion_mnist, NMI:" in (tmp_path / "table3.md").read_text()
    assert _is_png(tmp_path / "fig3.png")


def test_bad_levels_are_a_one_line_error(data_dirs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _reproduce(data_dirs, tmp_path, "--table", "3", "--levels", "low")
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--levels takes numbers separated by commas" in lines[0]


def test_head_epochs_add_a_ddnmf_head_row_trained_on_from_the_ddnmf_run(table_1, data_dirs, tmp_path, capsys):
    import shutil

    output_dir = tmp_path / "table1"
    shutil.copytree(table_1, output_dir)
    assert _reproduce(data_dirs, output_dir, "--table", "1", "--head-epochs", "1") == 0
    assert capsys.readouterr().out.count("reusing the finished run in") == 3  # AE2, DDNMF, AE1: not retrained
    rows = {row["method"]: row for row in _csv_rows(output_dir / "table1.csv")}
    assert 0 < float(rows["DDNMF+head"]["acc"]) <= 1 and rows["DDNMF+head"]["paper_acc"] == ""
    assert rows["DDNMF+K-means"]["acc"] == {row["method"]: row for row in _csv_rows(table_1 / "table1.csv")}[
        "DDNMF+K-means"]["acc"]


def test_table_3_with_heads_trains_a_head_on_ddnmf_and_on_ae1(data_dirs, tmp_path):
    assert _reproduce(data_dirs, tmp_path, "--table", "3", "--levels", "0.5", "--head-epochs", "1",
                      "--head-init-sample", "120", "--clusterers", "kmeans") == 0
    rows = _csv_rows(tmp_path / "table3.csv")
    heads = {(row["dataset"], row["model"]) for row in rows if row["clusterer"] == "head"}
    assert heads == {(dataset, model) for dataset in ("mnist", "fashion_mnist") for model in ("DDNMF", "AE1")}
    assert "| AE1+head |" in (tmp_path / "table3.md").read_text()
    assert (tmp_path / "runs" / "mnist-ae1-noise0.5-head" / "autoencoder.json").is_file()
    headed_config = json.loads((tmp_path / "runs" / "mnist-ddnmf-noise0.5-head" / "config.json").read_text())
    assert headed_config["head_init_sample"] == 120 and headed_config["head_epochs"] == 1
