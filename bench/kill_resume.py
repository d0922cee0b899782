"""Kill training with SIGKILL at random moments, resume each run, compare with an unkilled run.

    python -m bench.kill_resume --data-dir DIR [--trials 50] [--seed 0] [--workdir W]

DIR is a folder of MNIST-format IDX files; with MNIST's t10k files only, pass
`--train-split test`. A tiny model (784-16 | 3) trains for 3 epochs with a
checkpoint after every step; each trial starts the same command in a new
process, kills it with SIGKILL after a random fraction of the unkilled run's
wall time (so kills land in start-up, data loading, training steps, checkpoint
writes, scoring and the final writes), checks that every JSON file of the run
directory parses and `cluster_centers.npy` loads, resumes it
(`train.run --resume --run-dir RUN`, or a new run when the kill came before
the run recorded its config), and checks that the final weights equal the
unkilled run's, bit for bit. tests/integration/test_run_dir.py runs 10 trials.
"""

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ddnmf_tf.cli import run as train_run
from ddnmf_tf.run import checkpoints, directory

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "mnist", "--source", "idx", "--layers", "16", "--rank", "3", "--batch-size", "50",
        "--no-jit", "--quiet", "--clusterers", "kmeans", "--epochs", "3", "--checkpoint-every", "1"]


def _weights(run_dir):
    return [weight.numpy() for weight in checkpoints.load_model(run_dir, log=lambda line: None).weights]


def _check_files(run_dir):
    """Every JSON file parses and the cluster centres load: no torn file, whatever the moment of the kill."""
    for path in run_dir.glob("*.json"):
        json.loads(path.read_text())
    if (run_dir / directory.CLUSTER_CENTERS_FILE).exists():
        np.load(run_dir / directory.CLUSTER_CENTERS_FILE)


def kill_and_resume(flags, run_dir, seconds):
    """Start `train.run FLAGS --run-dir RUN`, SIGKILL it after `seconds` (if still running), resume it in-process."""
    process = subprocess.Popen([sys.executable, "-m", "train.run", *flags, "--run-dir", str(run_dir)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    _check_files(run_dir)
    argv = ["--resume", "--run-dir", str(run_dir)] if directory.is_run_dir(run_dir) else \
        [*flags, "--run-dir", str(run_dir)]
    if train_run.run_cli(train_run.main, argv) != 0:
        raise AssertionError(f"{' '.join(argv)} failed")
    _check_files(run_dir)
    return _weights(run_dir)


def straight_run(flags, run_dir):
    """The unkilled run of `flags` in a new process: (its wall seconds, its final weights)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "train.run", *flags, "--run-dir", str(run_dir)], cwd=ROOT,
                   check=True, capture_output=True, timeout=600)
    return time.monotonic() - started, _weights(run_dir)


def sigkill_trials(data_flags, workdir, trials, seed=0, log=print):
    """Run `trials` kill-and-resume trials; AssertionError on the first whose weights differ. Returns the moments."""
    flags = TINY + list(data_flags)
    workdir = Path(workdir)
    duration, straight = straight_run(flags, workdir / "straight")
    moments = random.Random(seed).sample(range(1000), trials)  # per mille of the unkilled run's wall time
    for trial, moment in enumerate(moments):
        resumed = kill_and_resume(flags, workdir / f"killed{trial}", duration * moment / 1000)
        for expected, weights in zip(straight, resumed):
            np.testing.assert_array_equal(expected, weights, err_msg=f"killed at {moment / 10:.1f}% of the run")
        log(f"trial {trial + 1}/{trials}: killed at {moment / 10:.1f}% of {duration:.1f} s, resumed to the same weights")
    return moments


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.kill_resume", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder of MNIST-format IDX files")
    parser.add_argument("--train-split", default="train", choices=("train", "test"), help="split to train on")
    parser.add_argument("--trials", type=int, default=50, help="kill-and-resume trials")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--workdir", help="where the runs go (default: a temporary folder, deleted)")
    args = parser.parse_args(argv)
    data_flags = ["--data-dir", args.data_dir, "--train-split", args.train_split, "--eval-split", args.train_split]
    with tempfile.TemporaryDirectory() as temporary:
        sigkill_trials(data_flags, args.workdir or temporary, args.trials, args.seed)
    print(f"{args.trials} trials: every file whole after each kill, every resumed run bitwise equal to the unkilled one")


if __name__ == "__main__":
    main()
