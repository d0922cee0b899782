"""The smaller things a run, train.encode and train.evaluate say: each a line that is right, said once."""

import contextlib
import io
import re

import numpy as np
import pytest
from PIL import Image

from ddnmf_tf.cli import encode as encode_cli
from ddnmf_tf.cli import evaluate as evaluate_cli
from ddnmf_tf.cli import run as train_run
from tests.helpers import write_tiny_mnist

# 200 training images in batches of 50: 4 steps an epoch.
TINY = ["--dataset", "mnist", "--source", "idx", "--layers", "16", "--rank", "3", "--batch-size", "50",
        "--no-jit", "--quiet", "--clusterers", "kmeans", "--head-epochs", "0", "--projector-examples", "0"]
SMALL = ["--layers", "8", "--rank", "2", "--epochs", "1", "--head-epochs", "0", "--no-jit", "--quiet",
         "--clusterers", "kmeans", "--projector-examples", "0"]


def _tool(module, argv, capsys):
    try:
        code = module.run_cli(module.main, [str(arg) for arg in argv])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_tiny_mnist(tmp_path_factory.mktemp("idx"))


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A finished 1-epoch run on 12 unlabeled 6x6 PNG images, 2 clusters: (run dir, image folder, its output)."""
    folder = tmp_path_factory.mktemp("images")
    for number, image in enumerate(np.random.default_rng(3).integers(0, 256, (12, 6, 6), dtype=np.uint8)):
        Image.fromarray(image).save(folder / f"{number:02d}.png")
    run_dir = tmp_path_factory.mktemp("image_run") / "run"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        train_run.main([str(arg) for arg in ["--dataset", folder, "--run-dir", run_dir, "--clusters", 2,
                                             "--image-size", "6x6", "--batch-size", 4, *SMALL]])
    return run_dir, folder, out.getvalue().splitlines()


def test_the_final_line_times_the_compiling_first_step_apart(data_dir, tmp_path, capsys):
    code, out, _ = _tool(train_run, TINY + ["--data-dir", data_dir, "--epochs", 2, "--run-dir", tmp_path / "a"],
                         capsys)
    assert code == 0
    assert re.fullmatch(r"done: 8 steps in [0-9.]+ s \(first step, compiling: [0-9.]+ s; [0-9]+ images/s after "
                        r"it\); served ACC [0-9.]+, kmeans ACC [0-9.]+; run directory .*", out[-1]), out[-1]
    rate = int(re.search(r"; ([0-9]+) images/s", out[-1]).group(1))
    assert rate > 0
    code, out, _ = _tool(train_run, TINY + ["--data-dir", data_dir, "--epochs", 1, "--batch-size", 200,
                                            "--run-dir", tmp_path / "b"], capsys)
    assert code == 0 and re.match(r"done: 1 step in [0-9.]+ s \(first step, compiling: [0-9.]+ s; no later step "
                                  r"to time\);", out[-1]), out[-1]


def test_an_unlabeled_run_says_no_scores_once(image_run, capsys):
    run_dir, _, out = image_run
    once = ["no scores: the examples scored have no labels (the training examples' clusters are in assignments.npy)"]
    assert [line for line in out if line.startswith("no scores")] == once
    code, out, _ = _tool(train_run, ["--resume", "--run-dir", run_dir], capsys)  # a finished run: scored again
    assert code == 0 and [line for line in out if line.startswith("no scores")] == once


def test_scores_of_too_few_examples_a_cluster_come_with_a_note(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, _ = _tool(train_run, TINY + ["--data-dir", data_dir, "--epochs", 1, "--run-dir", run_dir,
                                            "--eval-limit", 15], capsys)
    note = "note: 15 examples scored in 10 clusters, fewer than 2 per cluster: ACC is near 1 whatever H is"
    assert code == 0 and note in out
    code, out, _ = _tool(evaluate_cli, ["--run-dir", run_dir, "--eval-limit", 1, "--clusters", 1, "--clusterers",
                                        "kmeans"], capsys)
    assert code == 0 and "note: one cluster: ACC is the largest class's share and NMI 0 whatever H is (1 " \
                         "examples scored)" in out
    code, out, err = _tool(evaluate_cli, ["--run-dir", run_dir, "--eval-limit", 3, "--clusterers", "kmeans"], capsys)
    assert (code, out, err) == (2, [], ["error: need at least n_clusters=10 samples, got 3"])  # before encoding


def test_encode_notes_how_it_reads_values_the_run_was_not_trained_on(image_run, tmp_path, capsys):
    run_dir, folder, _ = image_run
    images = np.random.default_rng(4).integers(0, 256, (5, 6, 6)).astype(np.float64)
    np.save(tmp_path / "raw.npy", images)
    code, out, _ = _tool(encode_cli, ["--run-dir", run_dir, "--input", tmp_path / "raw.npy", "--output",
                                      tmp_path / "raw.npz", "--quiet"], capsys)
    assert code == 0 and out[0] == (f"note: {tmp_path / 'raw.npy'}: 5 of 5 examples hold values above 1: read as "
                                    "0-255 values and divided by 255 (the run's inputs are in [0, 1])")
    np.save(tmp_path / "bytes.npy", images.astype(np.uint8))
    assert _tool(encode_cli, ["--run-dir", run_dir, "--input", tmp_path / "bytes.npy", "--output",
                              tmp_path / "bytes.npz", "--quiet"], capsys)[0] == 0
    np.testing.assert_array_equal(np.load(tmp_path / "raw.npz")["representation"],
                                  np.load(tmp_path / "bytes.npz")["representation"])  # not saturated


def test_encode_reads_no_labels_it_does_not_use(image_run, tmp_path, capsys):
    run_dir, _, _ = image_run
    np.savez(tmp_path / "named.npz", x=np.zeros((3, 6, 6), np.uint8), y=np.array(["cat", "dog", "cat"]))
    code, out, err = _tool(encode_cli, ["--run-dir", run_dir, "--input", tmp_path / "named.npz", "--output",
                                        tmp_path / "out.npz", "--quiet"], capsys)
    assert (code, err) == (0, []) and len(np.load(tmp_path / "out.npz")["cluster"]) == 3


def test_a_model_path_without_its_version_suggests_one(tmp_path, capsys):
    for version in (1, 3):
        (tmp_path / "models" / str(version)).mkdir(parents=True)
        (tmp_path / "models" / str(version) / "saved_model.pb").write_bytes(b"")
    code, _, err = _tool(encode_cli, ["--model", tmp_path / "models", "--input", "x.npy", "--output", "o.npz"],
                         capsys)
    assert (code, err) == (2, [f"error: {tmp_path / 'models'} is not a SavedModel (no saved_model.pb): it is an "
                               f"export directory: pass one of its versions, --model {tmp_path / 'models' / '3'} "
                               "(versions: 1, 3)"])


def test_a_resume_names_an_image_size_and_the_changed_folder_as_their_flags(image_run, tmp_path, capsys):
    run_dir, folder, _ = image_run
    code, _, err = _tool(train_run, ["--resume", "--run-dir", run_dir, "--image-size", "5x5"], capsys)
    assert (code, err) == (2, [f"error: --resume {run_dir}: --image-size is '6x6' in the run, '5x5' given (start a "
                               "new --run-dir to train with other settings)"])
    kept = (folder / "00.png").read_bytes()
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(folder / "00.png")  # the folder's images changed
    try:
        code, _, err = _tool(train_run, ["--resume", "--run-dir", run_dir], capsys)
    finally:
        (folder / "00.png").write_bytes(kept)
    assert code == 2 and err[0].startswith(f"error: --resume {run_dir}: the train data differs from the run's")
    assert err[0].endswith("point --dataset at the data the run trained on")


def test_help_shows_a_default_once_and_never_none(capsys):
    with pytest.raises(SystemExit):
        train_run.build_parser().parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in shown
    assert "(default: 100) (default: 100)" not in shown and "(default: 100)" in shown  # --umap-neighbors
    assert "(default: --seed); the authors scored with 15 --umap" in shown  # --cluster-seed: its own words only
