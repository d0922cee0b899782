"""The run directory as the single source of truth: resume from it alone, data identity, one writer, no torn files."""

import errno
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bench import kill_resume
from ddnmf_tf import DDNMFConfig, files
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.run import directory
from ddnmf_tf.run import lock as runlock
from tests.helpers import MNIST_IDX, ROOT, random_split, write_split

TINY = MNIST_IDX + ["--layers", "16", "--rank", "3", "--batch-size", "50", "--no-jit", "--quiet", "--clusterers",
                    "kmeans", "--head-epochs", "0"]


def _cli(argv, capsys):
    code = train_run.run_cli(train_run.main, argv)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def _tiny_run(data_dir, run_dir, *flags, epochs=1):
    train_run.main(TINY + ["--data-dir", str(data_dir), "--epochs", str(epochs), "--run-dir", str(run_dir), *flags])
    return run_dir


def test_the_layout_is_written_at_the_start(data_dir, tmp_path):
    from ddnmf_tf import DDNMFConfig
    from ddnmf_tf.run.runner import run
    from ddnmf_tf.run.settings import RunSettings
    from ddnmf_tf.training.step import DDNMFTrainer

    class Stop(Exception):
        pass

    class StoppedTrainer(DDNMFTrainer):  # stops at its first step: the run has written its layout, nothing else
        def __init__(self, config):
            super().__init__(config)
            self.train_step = self.stop

        def stop(self, clean, noisy):
            raise Stop

    config = DDNMFConfig(layer_sizes=(16,), rank=3, batch_size=50, epochs=1, jit_compile=False, head_epochs=0)
    settings = RunSettings(dataset="mnist", source="idx", data_dir=str(data_dir), run_dir=str(tmp_path / "run"),
                           eval_every=2, quiet=True)
    with pytest.raises(Stop):
        run(config, settings, trainer=StoppedTrainer(config), log=lambda line: None)
    run_dir = tmp_path / "run"
    assert directory.load_config(run_dir).layer_sizes == (16,)
    settings = json.loads((run_dir / "settings.json").read_text())
    assert settings["dataset"] == "mnist" and settings["train_split"] == "train" and settings["eval_every"] == 2
    assert settings["data_dir"] == str(data_dir) and settings["clusters"] == 10
    assert set(settings["fingerprints"]) == {"train", "eval"}
    assert not (run_dir / "run.lock").exists()  # released when the run stopped
    assert not directory.has_checkpoint(run_dir)


def test_resume_with_the_run_dir_alone_continues_that_run(data_dir, tmp_path):
    run_dir = _tiny_run(data_dir, tmp_path / "run", "--train-split", "test", "--eval-split", "test", "--seed", "4")
    # Nothing but the run directory and a longer schedule: no dataset, split, seed or architecture given.
    completed = subprocess.run([sys.executable, "-m", "train.run", "--resume", "--run-dir", str(run_dir),
                                "--epochs", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert (results["dataset"], results["train_split"], results["config"]["seed"]) == ("mnist", "test", 4)
    assert results["steps"] == 4 and results["config"]["layer_sizes"] == [16]  # 100 test images, batch 50
    assert "could not be found in the restored object" not in completed.stderr
    assert "WARNING" not in completed.stderr.replace("WARNING: All log messages before absl::InitializeLog()", "")


def test_a_flag_contradicting_the_run_is_refused_by_name_and_safe_ones_change(data_dir, tmp_path, capsys):
    run_dir = _tiny_run(data_dir, tmp_path / "run")
    code, _, err = _cli(["--resume", "--run-dir", str(run_dir), "--dataset", "fashion_mnist", "--layers", "32",
                         "--epochs", "2"], capsys)
    assert (code, err) == (2, [f"error: --resume {run_dir}: --layers is '16' in the run, '32' given; --dataset is "
                                "'mnist' in the run, 'fashion_mnist' given (start a new --run-dir to train with "
                                "other settings)"])
    code, _, err = _cli(["--resume", "--run-dir", str(run_dir), "--train-split", "test"], capsys)
    assert code == 2 and "--train-split is 'train' in the run, 'test' given" in err[0]
    # The settings a resume may change.
    code, out, _ = _cli(["--resume", "--run-dir", str(run_dir), "--epochs", "2", "--learning-rate", "0.002",
                         "--clusterers", "gmm", "--eval-every", "1", "--summary-every", "7"], capsys)
    assert code == 0 and out[0] == f"resumed {run_dir} at step 4"
    settings = json.loads((run_dir / "settings.json").read_text())
    assert (settings["clusterers"], settings["eval_every"], settings["summary_every"]) == (["gmm"], 1, 7)
    assert directory.load_config(run_dir).learning_rate == 0.002
    assert set(json.loads((run_dir / "results.json").read_text())["metrics"]) == {"served", "gmm"}


def test_resuming_on_other_data_is_refused(data_dir, tmp_path, capsys):
    run_dir = _tiny_run(data_dir, tmp_path / "run")
    other = tmp_path / "other"
    other.mkdir()
    write_split(other, "train", *random_split(200, seed=9))
    write_split(other, "t10k", *random_split(100, seed=1))
    code, _, err = _cli(["--resume", "--run-dir", str(run_dir), "--data-dir", str(other), "--epochs", "2"], capsys)
    recorded = json.loads((run_dir / "settings.json").read_text())["fingerprints"]["train"]
    assert code == 2
    assert err[0].startswith(f"error: --resume {run_dir}: the train data differs from the run's (fingerprint 200-")
    assert err[0].endswith(f"the run recorded {recorded}): point --data-dir at the data the run trained on")
    # The same data in another folder is the same run.
    moved = tmp_path / "moved"
    moved.mkdir()
    for path in Path(data_dir).iterdir():
        (moved / path.name).write_bytes(path.read_bytes())
    code, out, _ = _cli(["--resume", "--run-dir", str(run_dir), "--data-dir", str(moved), "--epochs", "2"], capsys)
    assert code == 0 and out[0] == f"resumed {run_dir} at step 4"


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    directory.save_config(run_dir, DDNMFConfig(layer_sizes=(16,), rank=3, batch_size=50,
                                                             jit_compile=False, epochs=1, head_epochs=0))
    directory.save_settings(run_dir, {"dataset": "mnist", "source": "idx", "data_dir": str(data_dir),
                                        "train_split": "train", "eval_split": "test", "clusterers": ["kmeans"],
                                        "quiet": True})
    code, out, _ = _cli(["--resume", "--run-dir", str(run_dir)], capsys)
    assert code == 0
    assert out[0] == f"{run_dir} has no checkpoint yet (it stopped before its first one): training from step 0"
    assert json.loads((run_dir / "results.json").read_text())["steps"] == 4
    code, _, err = _cli(TINY + ["--data-dir", str(data_dir), "--run-dir", str(run_dir)], capsys)
    assert (code, err) == (2, [f"error: {run_dir} already holds a run: pass --resume to continue it or choose "
                                "another --run-dir"])


def test_a_damaged_checkpoint_is_passed_over_by_a_resume_and_refused_as_the_served_one(data_dir, tmp_path, capsys):
    from ddnmf_tf.cli import evaluate
    from ddnmf_tf.cli import export as export_run

    run_dir = _tiny_run(data_dir, tmp_path / "run", epochs=2)
    capsys.readouterr()
    data = run_dir / "checkpoints" / "ckpt-8.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])  # in place: served/ckpt-8, a hard link of it, is damaged too
    refused = (f"error: {run_dir / 'served' / 'ckpt-8'}, the checkpoint of the outputs of step 8, is damaged (Read "
               f"less bytes than requested); train.run --resume --run-dir {run_dir} writes the outputs anew")
    export = ["--run-dir", str(run_dir), "--export-dir", str(tmp_path / "m")]
    assert evaluate.run_cli(evaluate.main, ["--run-dir", str(run_dir), "--clusterers", "kmeans"]) == 2
    assert capsys.readouterr().err.splitlines() == [refused]
    assert export_run.run_cli(export_run.main, export) == 2
    assert capsys.readouterr().err.splitlines() == [refused]
    damaged = "damaged checkpoint ckpt-8 (Read less bytes than requested): restoring ckpt-4, the newest intact one"
    code, out, _ = _cli(["--resume", "--run-dir", str(run_dir)], capsys)
    assert code == 0 and out[:2] == [damaged, f"resumed {run_dir} at step 4"]
    assert evaluate.run_cli(evaluate.main, ["--run-dir", str(run_dir), "--clusterers", "kmeans"]) == 0
    assert export_run.run_cli(export_run.main, export) == 0
    capsys.readouterr()
    code, out, _ = _cli(["--resume", "--run-dir", str(run_dir), "--epochs", "3"], capsys)
    assert code == 0 and out[0] == f"resumed {run_dir} at step 8"
    assert json.loads((run_dir / "results.json").read_text())["steps"] == 12


def _lock(run_dir, pid, host=None):
    (run_dir / runlock.LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))


def test_one_writer_per_run_directory(data_dir, tmp_path, capsys):
    run_dir = _tiny_run(data_dir, tmp_path / "run")
    resume = ["--resume", "--run-dir", str(run_dir), "--epochs", "2"]
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(run_dir, living.pid)
        code, _, err = _cli(resume, capsys)
        assert (code, err) == (2, [f"error: {run_dir} is being trained by pid {living.pid} on {socket.gethostname()} "
                                    f"({run_dir / 'run.lock'}); wait for it, or pass --break-lock if no process "
                                    "trains it any more"])
    finally:
        living.kill()
        living.wait()
    code, out, _ = _cli(resume, capsys)  # the same pid, now dead: a stale lock
    assert code == 0 and out[0] == (f"taking over {run_dir / 'run.lock'} from pid {living.pid} on "
                                    f"{socket.gethostname()}, which no longer runs")
    _lock(run_dir, 1, host="another-host")
    code, _, err = _cli(resume[:-1] + ["3"], capsys)
    assert code == 2 and "is being trained by pid 1 on another-host" in err[0]
    code, out, _ = _cli(resume[:-1] + ["3", "--break-lock"], capsys)
    assert code == 0 and out[0].endswith("from pid 1 on another-host, which --break-lock overrides")
    assert not (run_dir / "run.lock").exists()


def test_two_processes_starting_on_one_run_directory_one_is_refused(tmp_path):
    """O_EXCL: of two lockers racing for the same directory, exactly one holds it (until the other has tried)."""
    release = tmp_path / "release"
    script = ("import os, sys, time; from ddnmf_tf.run.lock import RunLock\n"
              "try:\n    lock = RunLock(sys.argv[1], log=lambda line: None).__enter__()\n"
              "except OSError as error:\n    print('refused'); sys.exit(0)\n"
              "print('held'); sys.stdout.flush()\n"
              "while not os.path.exists(sys.argv[2]):\n    time.sleep(0.05)\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    processes = [subprocess.Popen([sys.executable, "-c", script, str(run_dir), str(release)], cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
    deadline = time.monotonic() + 120
    while all(process.poll() is None for process in processes) and time.monotonic() < deadline:
        time.sleep(0.1)  # the holder waits for `release`; the other ends once it has tried
    release.touch()
    outcomes = sorted(process.communicate(timeout=120)[0].strip() for process in processes)
    assert outcomes == ["held", "refused"]


def test_a_full_disk_is_one_line_and_keeps_the_last_good_checkpoint(data_dir, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    original = tf.train.CheckpointManager.save
    saves = []

    def full_disk_after_one(manager, *args, **kwargs):
        saves.append(1)
        if len(saves) > 1:
            raise tf.errors.ResourceExhaustedError(None, None, f"{run_dir}/checkpoints/ckpt-8_temp; No space left "
                                                               "on device")
        return original(manager, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk_after_one)
    code, _, err = _cli(TINY + ["--data-dir", str(data_dir), "--epochs", "2", "--run-dir", str(run_dir)], capsys)
    assert (code, err) == (2, [f"error: could not write the checkpoint of step 8 in {run_dir / 'checkpoints'}: "
                                f"{run_dir}/checkpoints/ckpt-8_temp; No space left on device; the last good "
                                "checkpoint ckpt-4 is kept"])
    assert directory.latest_checkpoint(run_dir).endswith("ckpt-4")
    assert not (run_dir / "run.lock").exists()

    monkeypatch.setattr(tf.train.CheckpointManager, "save", original)

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", no_space)  # every JSON and .npy the run writes
    code, _, err = _cli(["--resume", "--run-dir", str(run_dir)], capsys)
    assert (code, err) == (2, ["error: [Errno 28] No space left on device"])
    assert json.loads((run_dir / "settings.json").read_text())["dataset"] == "mnist"  # the old version, whole


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_real_full_file_system_is_one_line(data_dir, tmp_path, capsys):
    """A 1 MiB tmpfs: TensorFlow's own checkpoint writer meets ENOSPC (mounting may be refused in a container)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs; the test above covers the same paths")
    try:
        code, _, err = _cli(TINY + ["--layers", "200", "--data-dir", str(data_dir), "--epochs", "3",
                                    "--run-dir", str(mount / "run")], capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
        assert "space" in err[0].lower() or "resource" in err[0].lower()
        for name in ("config.json", "settings.json"):
            json.loads((mount / "run" / name).read_text())
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_unkilled_weights(data_dir, tmp_path):
    """10 trials here (`python -m bench.kill_resume --trials 50` runs 50): SIGKILL a run at a random moment, resume
    it; every JSON file parses after the kill, and the resumed run ends with the unkilled run's weights, bit for bit,
    and all its outputs."""
    flags = kill_resume.TINY + ["--data-dir", str(data_dir)]
    duration, straight = kill_resume.straight_run(flags, tmp_path / "straight")
    for trial, moment in enumerate(random.Random(0).sample(range(1000), 10)):
        run_dir = tmp_path / f"killed{trial}"
        resumed = kill_resume.kill_and_resume(flags, run_dir, duration * moment / 1000)
        where = f"killed at {moment / 10:.1f}% of {duration:.1f} s"
        assert len(resumed) == len(straight), where
        for expected, weights in zip(straight, resumed):
            np.testing.assert_array_equal(expected, weights, err_msg=where)
        for path in run_dir.glob("*.json"):
            json.loads(path.read_text())
        assert json.loads((run_dir / directory.RESULTS_FILE).read_text())["steps"] == \
            json.loads((tmp_path / "straight" / directory.RESULTS_FILE).read_text())["steps"], where
        np.testing.assert_array_equal(np.load(run_dir / directory.ASSIGNMENTS_FILE),
                                      np.load(tmp_path / "straight" / directory.ASSIGNMENTS_FILE), err_msg=where)
