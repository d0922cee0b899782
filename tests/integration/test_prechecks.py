"""Every check that can fail runs before training (ddnmf_tf.prechecks): one line naming the flag, nothing written."""

import json

import numpy as np
import pytest

from ddnmf_tf import inference
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.data import load_examples
from ddnmf_tf.run.directory import ASSIGNMENTS_FILE
from tests.helpers import write_tiny_mnist

# 200 training images in batches of 50: 4 steps an epoch.
TINY = ["--dataset", "mnist", "--source", "idx", "--layers", "16", "--rank", "3", "--batch-size", "50",
        "--no-jit", "--quiet", "--clusterers", "kmeans", "--projector-examples", "0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_tiny_mnist(tmp_path_factory.mktemp("idx"))


def _train(argv, capsys):
    code = train_run.run_cli(train_run.main, [str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def _listing(folder):
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_unlabeled_data_with_fewer_examples_than_clusters_is_refused_before_training(tmp_path, capsys):
    np.save(tmp_path / "five.npy", np.random.default_rng(0).integers(0, 256, (5, 8, 8), dtype=np.uint8))
    code, out, err = _train(["--dataset", tmp_path / "five.npy", "--run-dir", tmp_path / "run", "--layers", "8",
                             "--rank", "2", "--epochs", "1", "--head-epochs", "0", "--no-jit", "--quiet"], capsys)
    assert (code, out) == (2, [])
    assert err == [f"error: {tmp_path / 'five.npy'}: 5 training examples, fewer than the 10 clusters asked for "
                   "(--clusters, default the training labels' classes, else 10): pass --clusters 5 or fewer"]
    assert not (tmp_path / "run").exists()


def test_a_preset_on_resume_is_checked_against_the_run_and_never_overrides_it(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    base = TINY + ["--data-dir", data_dir, "--head-epochs", "0"]
    assert _train(base + ["--preset", "authors", "--epochs", "1", "--run-dir", run_dir], capsys)[0] == 0
    before = _listing(run_dir)
    code, out, err = _train(["--resume", "--run-dir", run_dir, "--preset", "authors"], capsys)
    assert (code, out) == (2, [])
    assert err == [f"error: --resume {run_dir}: --preset authors sets --epochs 300, the run has 1 (a preset does "
                   "not change a resumed run: give a flag itself to change what a resume may change, or start a "
                   "new --run-dir)"]
    code, _, err = _train(["--resume", "--run-dir", run_dir, "--preset", "paper"], capsys)
    assert code == 2 and err[0].startswith(f"error: --resume {run_dir}: --preset paper sets "
                                           "--reconstruction-weight 0.0, the run has 1.0; --loss-reduction sum, "
                                           "the run has mean; --nmf-bias False, the run has True;")
    assert _listing(run_dir) == before  # refused before anything was written
    code, out, _ = _train(["--resume", "--run-dir", run_dir, "--preset", "authors", "--epochs", "2"], capsys)
    assert code == 0 and out[0] == f"resumed {run_dir} at step 4"
    assert json.loads((run_dir / "results.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(("flags", "line"), [
    (["--preset", "authors", "--preset", "paper"],
     "error: --preset given 2 times (authors, paper): give one (flags beside it override its values)"),
    (["--preset=paper", "--preset=paper"],
     "error: --preset given 2 times (paper, paper): give one (flags beside it override its values)"),
    (["--noise-type", "gaussian", "--noise-rescale"],
     "error: --noise-rescale applies to masking noise only, --noise-type gaussian given"),
    (["--alpha", "0", "--beta", "0", "--gamma", "0", "--reconstruction-weight", "0"],
     "error: loss weights alpha, beta, gamma, reconstruction_weight are all 0: the DDNMF epochs would train "
     "nothing"),
])
def test_contradictory_model_flags_are_one_line_and_write_nothing(flags, line, tmp_path, capsys):
    assert _train(["--run-dir", tmp_path / "run", *flags], capsys) == (2, [], [line])
    assert not (tmp_path / "run").exists()


def test_a_preset_leaves_off_the_masking_options_of_other_noise_and_says_so(data_dir, tmp_path, capsys):
    argv = TINY + ["--data-dir", data_dir, "--head-epochs", "0", "--epochs", "1", "--run-dir", tmp_path / "run",
                   "--preset", "authors", "--noise-type", "gaussian"]
    code, out, _ = _train(argv, capsys)
    assert code == 0
    assert out[0] == ("--preset authors: --noise-rescale left off: it applies to masking noise, --noise-type "
                      "gaussian given")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["noise_type"], config["noise_rescale"], config["noise_fixed"]) == ("gaussian", False, True)


def test_a_finished_run_without_checkpoints_is_not_retrained_from_step_0(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert _train(TINY + ["--data-dir", data_dir, "--head-epochs", "0", "--epochs", "1", "--run-dir", run_dir],
                  capsys)[0] == 0
    for path in (run_dir / "checkpoints").iterdir():
        path.unlink()
    before = _listing(run_dir)
    code, out, err = _train(["--resume", "--run-dir", run_dir], capsys)
    assert (code, out) == (2, [])
    assert err == [f"error: --resume {run_dir}: the run has finished (outputs.json) but {run_dir / 'checkpoints'} "
                   f"holds no checkpoint (the weights of its outputs are in {run_dir / 'served'}): a resume would "
                   "train from step 0 and replace its outputs; restore the checkpoints or start a new --run-dir"]
    assert _listing(run_dir) == before


def test_clusters_against_a_trained_head_are_refused_and_head_epochs_0_serves_k_means(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    head = ["--head-epochs", "1", "--head-layers", "8", "--head-init-sample", "0", "--head-umap-neighbors", "10"]
    argv = TINY + ["--data-dir", data_dir, "--epochs", "1", "--clusters", "4", "--run-dir", run_dir, *head]
    assert _train(argv, capsys)[0] == 0
    assert inference.load_served(run_dir, log=lambda line: None).head.clusters == 4
    before = _listing(run_dir)
    code, out, err = _train(["--resume", "--run-dir", run_dir, "--clusters", "3", "--head-epochs", "2"], capsys)
    assert (code, out) == (2, [])
    assert err == [f"error: --resume {run_dir}: --clusters is 3, the run's clustering head has trained on 4 "
                   "clusters: pass --clusters 4, or --head-epochs 0 to serve K-means's 3 instead, or start a new "
                   "--run-dir"]
    assert _listing(run_dir) == before
    code, _, err = _train(["--resume", "--run-dir", run_dir, "--clusters", "3", "--head-epochs", "0"], capsys)
    assert (code, err) == (0, [])
    served = inference.load_served(run_dir, log=lambda line: None)  # what the run served: K-means, not the head
    assert served.head is None and served.clusters == 3
    assert json.loads((run_dir / "outputs.json").read_text())["served_clusters"] == "kmeans"
    train = load_examples("mnist", "train", source="idx", data_dir=data_dir)
    np.testing.assert_array_equal(served.predict(train.values)["cluster"], np.load(run_dir / ASSIGNMENTS_FILE))
