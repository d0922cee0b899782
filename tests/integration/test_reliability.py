"""Reliability: what a user sees for bad inputs, kills, no network, and repeated runs.

docs/reliability.md lists every case with the test behind it; the cases
already tested in test_train_run.py, test_data.py, test_export.py,
test_checkpoints.py and test_config.py are referenced there, not repeated here.
"""

import dataclasses
import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from ddnmf_tf import DDNMF, DDNMFConfig
from ddnmf_tf.cli import export as export_cli
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.cli.common import run_cli
from ddnmf_tf.model.noise import corrupt
from ddnmf_tf.run import checkpoints, directory, outputs, runner
from ddnmf_tf.run.settings import RunSettings
from ddnmf_tf.serving import export_run
from ddnmf_tf.training.step import DDNMFTrainer
from tests import helpers
from tests.helpers import MNIST_IDX, ROOT, write_file

# The architecture of the tiny training runs: 784-32-16 | 4 | 16-32-784.
ARCHITECTURE = ["--layers", "32,16", "--rank", "4"]
TINY = MNIST_IDX + ["--batch-size", "50", "--summary-every", "2", "--no-jit", "--quiet",
        "--head-epochs", "0"]
TINY_CONFIG = dataclasses.replace(helpers.TINY_CONFIG, epochs=2)
# Seconds after the export's `.tmp-new-*` directory appears at which export.run is killed, one random draw from
# each window. Writing the SavedModel there and renaming it took 0.2 to 0.5 s on the shared 2-core machine, so
# kills land early in the write, later in it, and around or after the final rename.
KILL_WINDOWS = [(0.0, 0.05), (0.05, 0.2), (0.2, 0.8)]


def _cli(main, argv, capsys):
    """Exit code and stderr lines of `main` run the way the console scripts run it."""
    try:
        code = run_cli(main, argv)
    except SystemExit as exit_:  # argparse's own errors exit from parse_args
        code = exit_.code
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture(scope="module")
def same_seed_runs(data_dir, tmp_path_factory):
    """Two 2-epoch runs of TINY_CONFIG with one seed, in this one process: (results, run dir) each."""
    runs = []
    for name in ("first", "second"):
        run_dir = tmp_path_factory.mktemp(name)
        settings = RunSettings(dataset="mnist", source="idx", data_dir=str(data_dir),
                                      run_dir=str(run_dir), quiet=True)
        runs.append((runner.run(TINY_CONFIG, settings, log=lambda *args: None), run_dir))
    return runs


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory):
    """A run directory of a 784-16-8 | 3 model with a checkpoint and 4 cluster centres (as in test_export.py)."""
    run_dir = tmp_path_factory.mktemp("untrained_run")
    model = DDNMF(DDNMFConfig(layer_sizes=(16, 8), rank=3, jit_compile=False))
    model.build((None, 784))
    directory.save_config(run_dir, model.config)
    checkpoints.checkpoint_manager(run_dir, checkpoints.training_checkpoint(model, keras.optimizers.Adam())).save()
    directory.save_cluster_centers(run_dir, np.random.default_rng(1).random((4, 3)).astype(np.float32))
    outputs.record(run_dir, 1, "kmeans")  # the centres are the outputs of the checkpoint ckpt-1
    return run_dir


# --- bad flags ----------------------------------------------------------------------


@pytest.mark.parametrize("flags, line", [
    (["--layers", ""], "python -m train.run: error: argument --layers: --layers takes whole numbers separated by "
                       "commas, got '' (see --help)"),
    (["--layers", "a,b"], "python -m train.run: error: argument --layers: --layers takes whole numbers separated "
                          "by commas, got 'a,b' (see --help)"),
    (["--train-split", "validation"], "python -m train.run: error: argument --train-split: invalid choice: "
                                      "'validation' (choose from 'train', 'test', 'all') (see --help)"),
    (["--epochs", "-1"], "error: epochs must be a whole number >= 1, got -1"),
    (["--batch-size", "0"], "error: batch_size must be a whole number >= 1, got 0"),
    (["--batch-size", "-3"], "error: batch_size must be a whole number >= 1, got -3"),
    (["--rank", "-1"], "error: rank must be a whole number >= 1, got -1"),
    (["--gamma", "-0.5"], "error: loss weight gamma must be a finite number >= 0, got -0.5"),
    (["--alpha", "nan"], "error: loss weight alpha must be a finite number >= 0, got nan"),
    (["--noise-level", "1"], "error: noise_level must be in [0, 1), got 1.0"),
    (["--lr", "0"], "error: learning_rate must be a finite number > 0, got 0.0"),
    (["--seed", "-1"], "error: seed must be a whole number >= 0, got -1"),
    (["--eval-every", "-1"], "error: eval_every must be a whole number >= 0, got -1"),
    (["--checkpoint-every", "-1"], "error: checkpoint_every must be a whole number >= 0, got -1"),
])
def test_a_bad_flag_is_one_line_and_writes_nothing(flags, line, tmp_path, capsys):
    code, lines = _cli(train_run.main, ["--output-dir", str(tmp_path / "run")] + flags, capsys)
    assert (code, lines) == (2, [line])
    assert not (tmp_path / "run").exists()


def test_an_unknown_dataset_lists_the_valid_names(tmp_path, capsys):
    code, lines = _cli(train_run.main, ["--output-dir", str(tmp_path / "run"), "--dataset", "cifar10"], capsys)
    assert (code, lines) == (2, ["error: unknown dataset 'cifar10'; valid: mnist, binarized_mnist, fashion_mnist, "
                                 "tfds:NAME[/CONFIG], a .npz or .npy file, or a folder of IDX files or of images"])


@pytest.mark.parametrize("origin", ["data_dir", "DDNMF_DATA_DIR"])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path, capsys, monkeypatch, origin):
    not_a_folder = write_file(tmp_path / "mnist.gz", b"")
    argv = TINY + ARCHITECTURE + ["--output-dir", str(tmp_path / "run")]
    if origin == "data_dir":
        argv += ["--data-dir", str(not_a_folder)]
    else:
        monkeypatch.setenv("DDNMF_DATA_DIR", str(not_a_folder))
    code, lines = _cli(train_run.main, argv, capsys)
    assert (code, lines) == (2, [f"error: {origin} {not_a_folder} is not a folder"])
    assert not (tmp_path / "run").exists()  # nothing is written before the data is read


def _spoil(folder, case):
    """Spoil the training images of an IDX folder; returns (file, the problem the error names)."""
    path = folder / "train-images-idx3-ubyte.gz"
    content = gzip.decompress(path.read_bytes())
    if case == "missing":
        path.unlink()
        return folder, "lacks the train split: missing train-images-idx3-ubyte.gz (or the same names without .gz)"
    if case == "truncated":
        path.write_bytes(gzip.compress(content[:-784]))
        return path, "truncated file, header announces 156800 data bytes, file has 156016"
    if case == "truncated gzip":
        path.write_bytes(path.read_bytes()[:100])
        return path, ("truncated or corrupt gzip file "
                      "(Compressed file ended before the end-of-stream marker was reached)")
    path.write_bytes(content)  # "not gzip": the IDX bytes under a .gz name
    return path, "not a gzip file"


@pytest.mark.parametrize("case", ["missing", "truncated", "truncated gzip", "not gzip"])
def test_a_bad_data_file_on_the_command_line_is_one_line(data_dir, tmp_path, capsys, case):
    folder = shutil.copytree(data_dir, tmp_path / "idx")
    spoiled, problem = _spoil(folder, case)
    argv = TINY + ARCHITECTURE + ["--data-dir", str(folder), "--output-dir", str(tmp_path / "run")]
    code, lines = _cli(train_run.main, argv, capsys)
    assert (code, lines) == (2, [f"error: {spoiled}{' ' if case == 'missing' else ': '}{problem}"])


def test_ctrl_c_is_one_line_and_status_130(capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    assert _cli(interrupted, [], capsys) == (130, ["interrupted"])


def test_the_deterministic_flag_turns_on_op_determinism(tmp_path, capsys, monkeypatch):
    # Op determinism cannot be turned off again in a process, so the call is recorded instead of made;
    # a data folder that does not exist stops the run right after it.
    calls = []
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: calls.append(True))
    argv = TINY + ARCHITECTURE + ["--deterministic", "--data-dir", str(tmp_path / "none"), "--run-dir",
                                  str(tmp_path / "run")]
    code, lines = _cli(train_run.main, argv, capsys)
    assert (code, calls) == (2, [True]) and lines[0] == f"error: data_dir {tmp_path / 'none'} is not a folder"


# --- run directories -----------------------------------------------------------------


def test_resume_without_a_checkpoint_is_one_line_and_writes_nothing(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, lines = _cli(train_run.main, ["--resume", "--output-dir", str(run_dir)], capsys)
    assert (code, lines) == (2, [f"error: --resume: {run_dir} holds no run to resume (no config.json)"])
    assert not run_dir.exists()


def test_an_output_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    a_file = write_file(tmp_path / "run", b"")
    code, lines = _cli(train_run.main, TINY + ARCHITECTURE + ["--output-dir", str(a_file)], capsys)
    assert (code, lines) == (2, [f"error: --run-dir {a_file} is not a folder"])
    assert a_file.read_bytes() == b""


@pytest.mark.parametrize("architecture, differing", [
    (["--layers", "32,8", "--rank", "4"], "--layers is '32,16' in the run, '32,8' given"),
    (["--layers", "32,16", "--rank", "5"], "--rank is 4 in the run, 5 given"),
])
def test_resume_with_another_architecture_names_the_flags(same_seed_runs, data_dir, tmp_path, capsys,
                                                           architecture, differing):
    run_dir = tmp_path / "run"
    shutil.copytree(same_seed_runs[0][1], run_dir)
    saved = {path.name: path.read_bytes() for path in (run_dir / "checkpoints").iterdir()}
    saved_config = (run_dir / "config.json").read_text()
    argv = TINY + architecture + ["--data-dir", str(data_dir), "--epochs", "3", "--output-dir", str(run_dir),
                                  "--resume"]
    code, lines = _cli(train_run.main, argv, capsys)
    assert (code, lines) == (2, [f"error: --resume {run_dir}: {differing} (start a new --run-dir to train with "
                                  "other settings)"])
    assert {path.name: path.read_bytes() for path in (run_dir / "checkpoints").iterdir()} == saved
    assert (run_dir / "config.json").read_text() == saved_config


class _NaNAtStepTwo(DDNMFTrainer):
    """The DDNMF trainer, except that L_nc reads NaN at step 2."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        compiled = self.train_step

        def train_step(clean, noisy):
            terms = dict(compiled(clean, noisy))
            if int(self.step) == 2:
                terms["nc"] = float("nan")
            return terms

        self.train_step = train_step


def test_a_nan_loss_on_the_command_line_exits_3_with_one_line(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "DDNMFTrainer", _NaNAtStepTwo)
    argv = TINY + ARCHITECTURE + ["--data-dir", str(data_dir), "--epochs", "1", "--checkpoint-every", "1",
                                  "--output-dir", str(tmp_path)]
    code, lines = _cli(train_run.main, argv, capsys)
    assert (code, lines) == (3, [f"error: loss/nc became nan at step 2; training stopped and the last good "
                                 f"checkpoint in {tmp_path / 'checkpoints'} is kept"])
    assert sorted(path.name for path in (tmp_path / "checkpoints").glob("*.index")) == ["ckpt-1.index"]


def test_debug_shows_the_traceback_in_a_real_process(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "train.run", "--output-dir", str(tmp_path / "run"), "--rank", "0", "--debug"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 1
    assert "Traceback (most recent call last):" in completed.stderr
    assert completed.stderr.splitlines()[-1] == (
        "ddnmf_tf.config.ConfigError: rank must be a whole number >= 1, got 0"
    )


# --- export ------------------------------------------------------------------------


def test_export_onto_an_existing_version_is_one_line(untrained_run, tmp_path, capsys):
    argv = ["--run-dir", str(untrained_run), "--export-dir", str(tmp_path / "ddnmf"), "--version", "1"]
    assert _cli(export_cli.main, argv, capsys)[0] == 0
    code, lines = _cli(export_cli.main, argv, capsys)
    assert (code, lines) == (2, [f"error: version {tmp_path / 'ddnmf' / '1'} already exists: pass "
                                 "--overwrite (overwrite=True) to replace it"])


def test_export_of_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    argv = ["--run-dir", str(tmp_path / "nothing"), "--export-dir", str(tmp_path / "ddnmf")]
    code, lines = _cli(export_cli.main, argv, capsys)
    assert (code, lines) == (2, [f"error: {tmp_path / 'nothing'} is not a run directory: config.json is missing"])
    assert not (tmp_path / "ddnmf").exists()


def test_export_onto_a_file_is_one_line(untrained_run, tmp_path, capsys):
    a_file = write_file(tmp_path / "ddnmf", b"")
    code, lines = _cli(export_cli.main, ["--run-dir", str(untrained_run), "--export-dir", str(a_file)], capsys)
    assert (code, lines) == (2, [f"error: export directory {a_file} is not a folder"])
    assert a_file.read_bytes() == b""


def _new_staging_dir(export_dir, before, process, timeout):
    """Wait until export.run creates a `.tmp-new-*` directory that is not in `before`; False when it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if export_dir.is_dir() and {p.name for p in export_dir.glob(".tmp-new-*")} - before:
            return True
        time.sleep(0.005)
    return False


def test_export_killed_at_random_moments_leaves_no_broken_version(untrained_run, tmp_path):
    export_dir = tmp_path / "ddnmf"
    command = [sys.executable, "-m", "export.run", "--run-dir", str(untrained_run), "--export-dir", str(export_dir)]
    rng = random.Random(9)
    killed_mid_write, outcomes = 0, []
    for low, high in KILL_WINDOWS:
        before = {path.name for path in export_dir.glob(".tmp-new-*")}
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        staged = _new_staging_dir(export_dir, before, process, timeout=120)
        time.sleep(rng.uniform(low, high))
        process.send_signal(signal.SIGKILL)
        process.wait()
        left = sorted(path.name for path in export_dir.iterdir()) if export_dir.is_dir() else []
        outcomes.append((process.returncode, left))
        if staged and process.returncode == -signal.SIGKILL:
            killed_mid_write += {path.name for path in export_dir.glob(".tmp-new-*")} != before
    print("export.run exit statuses and export dir after each kill:", outcomes)
    assert killed_mid_write >= 1, "no kill landed while a version was being written"

    images = np.random.default_rng(0).random((2, 784), dtype=np.float32)
    versions = [path for path in export_dir.iterdir() if path.name.isdigit()]
    for version in versions:  # nothing, or complete versions that load and serve
        served = tf.saved_model.load(str(version)).signatures["serving_default"](images=images)
        assert served["representation"].shape == (2, 3)
        assert (version / "assets.extra" / "ddnmf_config.json").is_file()
    leftovers = {path.name for path in export_dir.iterdir()} - {path.name for path in versions} - {"models.config"}
    assert all(name.startswith(".tmp-") for name in leftovers), leftovers
    # A later export is not disturbed by what the killed ones left.
    new_version = export_run(untrained_run, export_dir)
    assert new_version.name == str(len(versions) + 1)
    assert tf.saved_model.load(str(new_version)).signatures["serving_default"](images=images)["cluster"].shape == (2,)
    assert (export_dir / "models.config").is_file()


# --- pixel values -------------------------------------------------------------------


def test_serving_reads_a_float_example_above_1_as_bytes_and_clips_nothing(untrained_run, tmp_path):
    version = export_run(untrained_run, tmp_path / "ddnmf")
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    model = checkpoints.load_model(untrained_run)
    rng = np.random.default_rng(2)
    below = rng.uniform(-1, 1, (2, 784)).astype(np.float32)  # no value above 1: taken to be in [0, 1] already
    above = rng.uniform(-1, 300, (2, 784)).astype(np.float32)  # a value above 1: 0-255 values, divided by 255
    served = serve(images=np.concatenate([below, above]))["representation"].numpy()
    expected = model.student.representation(np.concatenate([below, above / 255]))
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)  # not clipped
    assert not np.allclose(served[:2], model.student.representation(np.clip(below, 0, 1)), atol=1e-3)
    assert np.all((served >= 0) & (served <= 1))


def test_training_on_pixels_outside_0_1_is_not_checked(small_config):
    # The data loaders only make [0, 1] images (uint8 / 255); a library caller's own arrays are used as given.
    images = np.random.default_rng(3).uniform(-1, 2, (32, 64)).astype(np.float32)
    trainer = DDNMFTrainer(small_config)
    terms = trainer.train_step(images, corrupt(images, "masking", 0.1, [0, 0]))
    assert all(np.isfinite(float(value)) for value in terms.values())
    masked = corrupt(images, "masking", 0.5, [0, 1]).numpy()
    assert np.all((masked == 0) | (masked == images))  # masking keeps out-of-range pixels as they are
    gaussian = corrupt(images, "gaussian", 0.1, [0, 2]).numpy()
    assert gaussian.min() >= 0 and gaussian.max() <= 1  # gaussian noise clips the student's input to [0, 1]


# --- no network ---------------------------------------------------------------------

OFFLINE_WRAPPER = textwrap.dedent("""\
    import socket
    import sys
    import time
    from pathlib import Path

    import ddnmf_tf.data.idx
    from ddnmf_tf.cli.common import run_cli
    from ddnmf_tf.cli import run as train_run


    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")


    socket.socket.connect = refuse
    ddnmf_tf.data.idx.DEBIAN_FASHION_MNIST_DIR = Path(sys.argv[1])  # where IDX folders are looked up
    started = time.monotonic()
    code = run_cli(train_run.main, sys.argv[2:])
    print(f"seconds {time.monotonic() - started:.3f}")
    sys.exit(code)
    """)


def test_offline_training_without_local_data_fails_fast_with_the_ways_to_get_it(tmp_path):
    wrapper = tmp_path / "offline_train.py"
    wrapper.write_text(OFFLINE_WRAPPER)
    env = {name: value for name, value in os.environ.items() if name != "DDNMF_DATA_DIR"}
    env.update(TFDS_DATA_DIR=str(tmp_path / "tfds_empty"), PYTHONPATH=str(ROOT))
    (tmp_path / "tfds_empty").mkdir()
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, str(wrapper), str(tmp_path / "no-debian-folder"), "--dataset", "fashion_mnist",
         "--epochs", "1", "--output-dir", str(tmp_path / "run")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    process_seconds = time.monotonic() - started
    assert completed.returncode == 2, completed.stderr
    seconds = float(completed.stdout.split("seconds ")[1])
    assert seconds < 10, f"the command took {seconds:.1f} s after its imports"
    assert process_seconds < 60
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and completed.stderr.splitlines()[-1] == errors[0]
    assert "Traceback" not in completed.stderr
    assert errors[0].startswith("error: no data for fashion_mnist: no local copy and ")
    for way in ("--data-dir", "DDNMF_DATA_DIR", "apt-get install dataset-fashion-mnist", "tfds build fashion_mnist",
                "TFDS_DATA_DIR"):
        assert way in errors[0]


# --- determinism ------------------------------------------------------------------------


def test_two_runs_with_one_seed_end_with_identical_weights_and_metrics(same_seed_runs):
    (first, first_dir), (second, second_dir) = same_seed_runs
    assert first["steps"] == second["steps"] == 8
    assert first["metrics"] == second["metrics"]
    centers = [np.load(run_dir / "cluster_centers.npy") for run_dir in (first_dir, second_dir)]
    np.testing.assert_array_equal(*centers)
    # Every checkpointed value: both networks' weights (saved as the optimizer's trainable variables), Adam's
    # moments, the step and the images trained on; only the seconds spent training differ.
    first_checkpoint = tf.train.load_checkpoint(directory.latest_checkpoint(first_dir))
    second_checkpoint = tf.train.load_checkpoint(directory.latest_checkpoint(second_dir))
    names = first_checkpoint.get_variable_to_shape_map()
    assert names == second_checkpoint.get_variable_to_shape_map()
    weights = sum(name.startswith("optimizer/_trainable_variables/") for name in names)
    assert weights == len(checkpoints.load_model(first_dir).weights) == 18
    assert sum(name.startswith("optimizer/_variables/") for name in names) >= 2 * weights
    assert "clock/images/.ATTRIBUTES/VARIABLE_VALUE" in names
    for name in names:
        if name not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "clock/seconds/.ATTRIBUTES/VARIABLE_VALUE"):
            np.testing.assert_array_equal(first_checkpoint.get_tensor(name), second_checkpoint.get_tensor(name),
                                          err_msg=name)
