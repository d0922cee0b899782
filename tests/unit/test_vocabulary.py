"""One vocabulary across the command-line tools: the same flag names, old spellings kept as aliases."""

import argparse

import pytest

from ddnmf_tf.cli import evaluate
from ddnmf_tf.cli import export as export_run
from ddnmf_tf.cli import reproduce
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.cli.common import parse_clusterers
from ddnmf_tf.data import DataError, fingerprint, identify, load_arrays, load_examples
from ddnmf_tf.evaluation import CLUSTERERS


def _parse(parser, argv):
    return vars(parser.parse_args(argv))


def test_clusterers_all_means_every_clusterer_in_every_tool():
    assert parse_clusterers("all") == CLUSTERERS
    assert parse_clusterers("kmeans,umap_gmm") == ("kmeans", "umap_gmm")
    with pytest.raises(argparse.ArgumentTypeError, match="'all' or names from"):
        parse_clusterers("all,kmeans")
    base = {"train.run": [], "train.evaluate": ["--run-dir", "R"], "train.reproduce": ["--table", "1"]}
    parsers = {"train.run": train_run.build_parser(), "train.evaluate": evaluate.build_parser(),
               "train.reproduce": reproduce.build_parser()}
    for tool, parser in parsers.items():
        assert _parse(parser, base[tool] + ["--clusterers", "all"])["clusterers"] == CLUSTERERS, tool
        assert _parse(parser, base[tool])["clusterers"] == CLUSTERERS, tool  # the default


@pytest.mark.parametrize("new, old, dest, value", [
    ("--run-dir", "--output-dir", "run_dir", "R"),
    ("--learning-rate", "--lr", "learning_rate", 0.002),
])
def test_train_run_names_and_their_old_spellings(new, old, dest, value):
    parser = train_run.build_parser()
    assert _parse(parser, [new, str(value)])[dest] == value
    assert _parse(parser, [old, str(value)])[dest] == value


def test_every_tool_names_a_run_with_run_dir_and_splits_alike():
    assert _parse(evaluate.build_parser(), ["--run-dir", "R", "--eval-split", "train"])["eval_split"] == "train"
    assert _parse(evaluate.build_parser(), ["--run-dir", "R", "--split", "train"])["eval_split"] == "train"
    assert str(_parse(export_run.build_parser(), ["--run-dir", "R", "--export-dir", "M"])["run_dir"]) == "R"
    run_flags = _parse(train_run.build_parser(), ["--train-split", "test", "--eval-split", "train"])
    assert (run_flags["train_split"], run_flags["eval_split"]) == ("test", "train")


def test_reproduce_takes_data_dir_for_the_tables_dataset():
    parser = reproduce.build_parser()
    assert reproduce.table_data_dirs(parser.parse_args(["--table", "1", "--data-dir", "D"])) == {
        "mnist": "D", "fashion_mnist": None}
    assert reproduce.table_data_dirs(parser.parse_args(["--table", "2", "--data-dir", "F"]))["fashion_mnist"] == "F"
    assert reproduce.table_data_dirs(parser.parse_args(["--table", "1", "--mnist-dir", "D"]))["mnist"] == "D"
    with pytest.raises(ValueError, match="table 3 reads MNIST and Fashion-MNIST"):
        reproduce.table_data_dirs(parser.parse_args(["--table", "3", "--data-dir", "D"]))


def test_abbreviated_flags_are_refused_so_a_resume_sees_every_flag():
    with pytest.raises(SystemExit):
        train_run.build_parser().parse_args(["--epo", "3"])


def _fingerprint_of(examples):
    return fingerprint(examples.values, examples.labels)


def test_the_fingerprint_ignores_order_and_adds_over_disjoint_sets():
    import numpy as np

    rng = np.random.default_rng(0)
    images, labels = rng.random((30, 12)).astype(np.float32), rng.integers(0, 3, 30)
    order = rng.permutation(30)
    assert fingerprint(images, labels) == fingerprint(images[order], labels[order])
    assert fingerprint(images, labels) != fingerprint(images, (labels + 1) % 3)
    assert fingerprint(images[:10]).startswith("10-")


def test_real_mnist_files_read_as_fashion_mnist_are_refused(mnist_dir, monkeypatch):
    assert identify(_fingerprint_of(load_examples("mnist", "test", data_dir=mnist_dir))) == ("mnist", "test")
    with pytest.raises(DataError, match=rf"^{mnist_dir} holds mnist's test split, not fashion_mnist's: point "
                                        "--data-dir \\(or DDNMF_DATA_DIR\\) at fashion_mnist's IDX files, or pass "
                                        "--dataset mnist$"):
        load_arrays("fashion_mnist", "test", data_dir=mnist_dir)
    monkeypatch.setenv("DDNMF_DATA_DIR", str(mnist_dir))
    with pytest.raises(DataError, match="holds mnist's test split"):
        load_arrays("fashion_mnist", "test", source="idx")
    load_arrays("binarized_mnist", "test", data_dir=mnist_dir)  # MNIST's files binarized: as named


def test_fashion_mnist_fingerprints_are_known():
    from ddnmf_tf.data import DEBIAN_FASHION_MNIST_DIR

    if not (DEBIAN_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    for split in ("train", "test", "all"):
        assert identify(_fingerprint_of(load_examples("fashion_mnist", split, source="idx"))) == ("fashion_mnist", split)
