import dataclasses
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util.tensor_util import make_ndarray

from ddnmf_tf.cli import run as train_run
from tests.helpers import MNIST_IDX, ROOT, TINY_FLAGS, random_split, write_split

SMALL = MNIST_IDX + TINY_FLAGS + ["--summary-every", "2", "--head-epochs", "0"]
# A subprocess scoring with UMAP would pay for compiling umap-learn's numba code (about 15 s) again.
WITHOUT_UMAP = ["--clusterers", "kmeans,gmm"]


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train_run.main(SMALL + ["--data-dir", str(data_dir), "--epochs", "2", "--output-dir", str(run_dir)])
    return run_dir


def _events(run_dir):
    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0}
    )
    return accumulator.Reload()


def test_run_writes_results_with_the_documented_keys(finished_run):
    results = json.loads((finished_run / "results.json").read_text())
    assert {"dataset", "config", "epochs", "wall_seconds", "images_per_second", "metrics"} <= set(results)
    assert results["epochs"] == 2 and results["steps"] == 8
    assert list(results["metrics"]) == ["served", "kmeans", "gmm", "umap_kmeans", "umap_gmm"]
    assert results["served_clusters"] == "kmeans"  # --head-epochs 0: the K-means centres are served
    for clusterer in results["metrics"]:
        assert set(results["metrics"][clusterer]) == {"acc", "nmi", "ari"}
        assert 0 < results["metrics"][clusterer]["acc"] <= 1
    assert (finished_run / "cluster_centers.npy").is_file()
    assert list((finished_run / "checkpoints").glob("ckpt-8.index"))


def test_tensorboard_reader_finds_every_scalar_and_the_parts_image(finished_run):
    tags = _events(finished_run).Tags()
    scalars = set(tags["tensors"])  # TF2 summaries are stored as tensors
    for name in ("sym", "ap", "nc", "total", "ap/encoder_1", "ap/encoder_2", "ap/decoder_1", "ap/decoder_2"):
        assert f"loss/{name}" in scalars and f"epoch_loss/{name}" in scalars
    for clusterer in ("served", "kmeans", "gmm", "umap_kmeans", "umap_gmm"):
        assert {f"eval/{clusterer}/acc", f"eval/{clusterer}/nmi", f"eval/{clusterer}/ari"} <= scalars
    assert {"parts", "clean_noisy_reconstructed", "representation_h"} <= scalars
    assert "_hparams_/session_start_info" in scalars


def test_resume_continues_the_step_counter_and_the_training_clock(finished_run, data_dir):
    before = json.loads((finished_run / "results.json").read_text())
    train_run.main(SMALL + ["--data-dir", str(data_dir), "--epochs", "3", "--output-dir", str(finished_run),
                            "--resume"])
    results = json.loads((finished_run / "results.json").read_text())
    assert results["steps"] == 12  # 8 before, 4 more for the third epoch
    assert list((finished_run / "checkpoints").glob("ckpt-12.index"))
    # Totals over both runs of the command: the first two epochs' seconds, and 3 epochs of 200 images.
    assert results["wall_seconds"] > before["wall_seconds"]
    assert results["images_per_second"] * results["wall_seconds"] == pytest.approx(600, rel=0.02)


def test_clusterers_flag_chooses_the_scores(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    train_run.main(SMALL + ["--data-dir", str(data_dir), "--epochs", "1", "--clusterers", "umap_gmm",
                            "--output-dir", str(run_dir)])
    assert set(json.loads((run_dir / "results.json").read_text())["metrics"]) == {"served", "umap_gmm"}


def test_the_umap_neighbour_count_reaches_the_scores_and_results(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train_run.main(SMALL + ["--data-dir", str(data_dir), "--epochs", "1", "--clusterers", "umap_gmm",
                            "--umap-neighbors", "5", "--output-dir", str(run_dir)])
    assert json.loads((run_dir / "results.json").read_text())["umap_neighbors"] == 5
    assert train_run.run_cli(train_run.main, SMALL + ["--data-dir", str(data_dir), "--umap-neighbors", "1",
                                                      "--output-dir", str(tmp_path / "bad")]) == 2
    assert "error: umap_neighbors must be a whole number >= 2, got 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_an_eval_split_too_small_for_umap_fails_before_training(tmp_path, capsys):
    data_dir = tmp_path / "idx"
    data_dir.mkdir()
    write_split(data_dir, "train", *random_split(60, seed=0))
    images, _ = random_split(5, seed=1)
    write_split(data_dir, "t10k", images, np.arange(5, dtype=np.uint8))  # 5 classes, 5 images
    run_dir = tmp_path / "run"
    code = train_run.run_cli(train_run.main, SMALL + ["--data-dir", str(data_dir), "--epochs", "1", "--clusters", "5",
                                                      "--output-dir", str(run_dir)])
    assert code == 2
    assert "error: a UMAP embedding of width 5 needs at least 7 samples, got 5" in capsys.readouterr().err
    code = train_run.run_cli(train_run.main, SMALL + ["--data-dir", str(data_dir), "--epochs", "1",
                                                      "--output-dir", str(run_dir)])  # 10 training classes
    assert (code, capsys.readouterr().err) == (2, "error: need at least n_clusters=10 samples, got 5\n")
    assert not list(run_dir.glob("checkpoints/*.index"))


def test_a_used_run_directory_needs_resume(finished_run, data_dir, capsys):
    code = train_run.run_cli(train_run.main, SMALL + ["--data-dir", str(data_dir), "--output-dir", str(finished_run)])
    assert code == 2
    assert "already holds a run: pass --resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "epochs must be a whole number >= 1"),
        (["--layers", "500,x"], "--layers takes whole numbers separated by commas"),
        (["--layers", "500,-1"], "layer_sizes must be positive whole numbers"),
        (["--noise-level", "1.5"], "noise_level must be in [0, 1)"),
        (["--beta", "-1"], "loss weight beta must be a finite number >= 0"),
        (["--dataset", "cifar"], "unknown dataset 'cifar'; valid: mnist, binarized_mnist, fashion_mnist, tfds:NAME"),
        (["--lr-schedule", "linear"], "--lr-schedule: invalid choice: 'linear'"),
        (["--loss-reduction", "max"], "--loss-reduction: invalid choice: 'max'"),
        (["--batch-size", "many"], "invalid int value: 'many'"),
        (["--clusterers", "kmeans,tsne"], "--clusterers takes 'all' or names from kmeans, gmm, umap_kmeans, umap_gmm"),
    ],
)
def test_bad_flags_exit_non_zero_with_one_line(flags, message, tmp_path, capsys):
    try:
        code = train_run.run_cli(train_run.main, ["--output-dir", str(tmp_path / "run")] + flags)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_a_bad_flag_in_a_real_process_prints_no_traceback(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "train.run", "--output-dir", str(tmp_path / "run"), "--rank", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2
    assert "error: rank must be a whole number >= 1, got 0" in completed.stderr
    assert "Traceback" not in completed.stderr


def _final_weights(run_dir):
    from ddnmf_tf.run.checkpoints import load_model

    return [weight.numpy() for weight in load_model(run_dir).weights]


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(data_dir, tmp_path):
    flags = SMALL + WITHOUT_UMAP + ["--data-dir", str(data_dir), "--epochs", "6", "--checkpoint-every", "3"]
    command = [sys.executable, "-m", "train.run"] + flags
    subprocess.run(command + ["--output-dir", str(tmp_path / "straight")], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    process = subprocess.Popen(command + ["--output-dir", str(killed)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    # Wait for the manager's state file: a kill between a checkpoint's files and it leaves nothing to resume.
    while not (killed / "checkpoints" / "checkpoint").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "results.json").exists(), "the run finished before it could be killed"

    subprocess.run(command + ["--output-dir", str(killed), "--resume"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    assert json.loads((killed / "results.json").read_text())["steps"] == 24
    for straight, resumed in zip(_final_weights(tmp_path / "straight"), _final_weights(killed)):
        np.testing.assert_array_equal(straight, resumed)


class _DivergingTrainer:
    """A DDNMF trainer whose loss turns NaN at a chosen step."""

    def __init__(self, config, bad_step):
        from ddnmf_tf.training.step import DDNMFTrainer

        self._trainer, self.bad_step = DDNMFTrainer(config), bad_step
        self.model, self.optimizer = self._trainer.model, self._trainer.optimizer

    @property
    def step(self):
        return self._trainer.step

    def train_step(self, clean, noisy):
        terms = dict(self._trainer.train_step(clean, noisy))
        if int(self.step) == self.bad_step:
            terms["nc"] = float("nan")
        return terms


class _Interrupted(Exception):
    pass


class _InterruptedTrainer(_DivergingTrainer):
    """A DDNMF trainer interrupted when asked for its step `bad_step`."""

    def train_step(self, clean, noisy):
        if int(self.step) + 1 == self.bad_step:
            raise _Interrupted
        return self._trainer.train_step(clean, noisy)


def test_a_mid_epoch_checkpoint_holds_that_epochs_images_and_seconds(data_dir, tmp_path):
    from ddnmf_tf import DDNMFConfig
    from ddnmf_tf.run import checkpoints, directory
    from ddnmf_tf.run.runner import run
    from ddnmf_tf.run.settings import RunSettings
    from ddnmf_tf.training.step import training_clock

    config = DDNMFConfig(layer_sizes=(16,), rank=3, batch_size=50, epochs=2, jit_compile=False, head_epochs=0)
    settings = RunSettings(dataset="mnist", source="idx", data_dir=str(data_dir), run_dir=str(tmp_path),
                           quiet=True, checkpoint_every=3, clusterers=("kmeans",))
    with pytest.raises(_Interrupted):
        run(config, settings, trainer=_InterruptedTrainer(config, bad_step=4))
    latest = directory.latest_checkpoint(tmp_path)
    assert latest.endswith("ckpt-3")  # three of the first epoch's four steps
    from ddnmf_tf.training.step import DDNMFTrainer

    clock, resumed = training_clock(), DDNMFTrainer(config)
    checkpoints.restore_training(resumed.model, resumed.optimizer, clock, tmp_path)
    assert int(clock.images) == 150 and float(clock.seconds) > 0
    results = run(config, dataclasses.replace(settings, resume=True))
    assert results["steps"] == 8
    assert results["images_per_second"] * results["wall_seconds"] == pytest.approx(400, rel=0.02)


def _run_until_diverged(trainer_class, bad_step, data_dir, run_dir, message):
    """Train 3 tiny epochs (4 steps each) with a trainer that goes bad at `bad_step`; expect `message`."""
    from ddnmf_tf import DDNMFConfig
    from ddnmf_tf.run.runner import run
    from ddnmf_tf.run.settings import RunSettings
    from ddnmf_tf.training.loop import TrainingDiverged

    config = DDNMFConfig(layer_sizes=(16,), rank=3, batch_size=50, epochs=3, jit_compile=False, head_epochs=0)
    settings = RunSettings(dataset="mnist", source="idx", data_dir=str(data_dir), run_dir=str(run_dir), quiet=True)
    with pytest.raises(TrainingDiverged, match=message):
        run(config, settings, trainer=trainer_class(config, bad_step=bad_step))
    return [path.name for path in (run_dir / "checkpoints").glob("*.index")]


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    saved = _run_until_diverged(_DivergingTrainer, 6, data_dir, tmp_path,
                                r"loss/nc became nan at step 6; .*last good checkpoint")
    assert saved == ["ckpt-4.index"]
    assert not (tmp_path / "results.json").exists()


def test_resume_trains_at_the_learning_rate_asked_for(finished_run, data_dir):
    from ddnmf_tf.run.runner import run
    from ddnmf_tf.run.settings import RunSettings
    from ddnmf_tf.training.step import DDNMFTrainer

    config = train_run.config_from_args(train_run.build_parser().parse_args(
        SMALL + ["--epochs", "4", "--lr", "0.0005"]))
    trainer = DDNMFTrainer(config)
    run(config, RunSettings(dataset="mnist", source="idx", data_dir=str(data_dir), run_dir=str(finished_run),
                            resume=True, quiet=True), trainer=trainer)
    assert float(trainer.optimizer.learning_rate) == pytest.approx(0.0005)
    assert json.loads((finished_run / "config.json").read_text())["learning_rate"] == 0.0005


def test_cosine_schedule_sets_each_epochs_rate_and_logs_it(data_dir, tmp_path):
    from ddnmf_tf.run.runner import run
    from ddnmf_tf.run.settings import RunSettings
    from ddnmf_tf.training.step import DDNMFTrainer

    config = train_run.config_from_args(train_run.build_parser().parse_args(
        SMALL + ["--epochs", "4", "--lr", "0.002", "--lr-schedule", "cosine"]))
    trainer = DDNMFTrainer(config)
    run(config, RunSettings(dataset="mnist", source="idx", data_dir=str(data_dir), run_dir=str(tmp_path),
                            clusterers=("kmeans",), quiet=True), trainer=trainer)
    # cos decay from 0.002 to 0 over 4 epochs, read at the start of epochs 0-3
    expected = [0.002, 0.001707107, 0.001, 0.000292893]
    assert float(trainer.optimizer.learning_rate) == pytest.approx(expected[-1], rel=1e-5)
    logged = [(event.step, float(make_ndarray(event.tensor_proto))) for event in _events(tmp_path).Tensors("learning_rate")]
    assert [step for step, _ in logged] == [1, 2, 3, 4]
    assert [rate for _, rate in logged] == pytest.approx(expected, rel=1e-5)


def test_resume_takes_the_saved_settings_and_refuses_other_ones(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train_run.main(SMALL + ["--data-dir", str(data_dir), "--epochs", "1", "--seed", "7", "--output-dir", str(run_dir)])
    # Only the data flags and --epochs: the layers, rank, batch size and seed come from config.json.
    train_run.main(["--dataset", "mnist", "--source", "idx", "--data-dir", str(data_dir), "--quiet",
                    "--epochs", "2", "--output-dir", str(run_dir), "--resume"])
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["layer_sizes"], saved["batch_size"], saved["seed"], saved["epochs"]) == ([32, 16], 50, 7, 2)
    assert json.loads((run_dir / "results.json").read_text())["steps"] == 8

    code = train_run.run_cli(train_run.main, SMALL + ["--data-dir", str(data_dir), "--epochs", "3", "--seed", "8",
                                                      "--batch-size", "40", "--output-dir", str(run_dir), "--resume"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --resume {run_dir}: --batch-size is 50 in the run, 40 given; --seed is 7 in the run, 8 given "
        "(start a new --run-dir to train with other settings)")
    assert json.loads((run_dir / "config.json").read_text()) == saved


class _NaNWeightTrainer(_DivergingTrainer):
    """Losses stay finite, but the update of a chosen step leaves a NaN weight (caught before it is saved)."""

    def train_step(self, clean, noisy):
        terms = self._trainer.train_step(clean, noisy)
        if int(self.step) == self.bad_step:
            kernel = self.model.student.nmf.encoding_kernel
            kernel.assign(kernel * float("nan"))
        return terms


def test_non_finite_weights_are_never_checkpointed(data_dir, tmp_path):
    saved = _run_until_diverged(_NaNWeightTrainer, 8, data_dir, tmp_path,
                                r"a weight became NaN or infinite by step 8; .*last good checkpoint")
    assert saved == ["ckpt-4.index"]
