"""Speed-up attempts that need a library change, measured here with local variants (docs/performance.md).

    python -m bench.attempts [--json PATH] [--images N] [--rounds N] [--only a,b]

    pipeline   training_batches as it is vs shuffling image INDICES and gathering rows
               (bench_pipeline_variants; the batches are checked to be identical)
    loop       the runner's per-step loop body (runner._TrainingLoop._epoch) vs a lean
               variant with fewer host syncs, both around a stub step that costs nothing,
               so the difference is pure loop overhead per step
    epoch      one real epoch through _TrainingLoop.train: current vs lean loop, current vs
               index pipeline, interleaved A, B, A, B
    lr_batch   images/s of the step at batch 128 vs 1024 with lr scaled by 8 (speed only)
    threads    subprocesses of `bench.run --sections step` under threading settings and
               TF_ENABLE_ONEDNN_OPTS=0, alternated A, B, A, B

A and B of each comparison run inside one process, interleaved, best kept,
except `threads`, which needs one process per setting (the settings must be
made before TensorFlow starts).
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.run import (  # noqa: E402
    _TimedBatches,
    _random_images,
    _warm_trainer,
    load_average,
    write_idx_folder,
)
from ddnmf_tf import checkpoints, runner  # noqa: E402
from ddnmf_tf.config import DDNMFConfig, derive_seed  # noqa: E402
from ddnmf_tf.noise import corrupt  # noqa: E402
from ddnmf_tf.training import SHUFFLE_STREAM, training_batches  # noqa: E402

ATTEMPTS = ("pipeline", "loop", "epoch", "lr_batch", "threads")


# ---------------------------------------------------------------- the proposed library variants


def indexed_training_batches(images, config, epoch):
    """training_batches for in-memory images: shuffle row INDICES, gather each batch's rows.

    Same (clean, noisy) batches, in the same order, as training_batches(
    Dataset.from_tensor_slices(images), config, epoch) when noise is drawn
    per batch (the default): tf.data's shuffle permutes by seed and count
    only, whatever the elements are. Only the 60k indices pass through the
    shuffle buffer instead of 60k rows of 784 floats.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    count = int(images.shape[0])
    seed = tf.constant(config.seed, tf.int64)
    order = (
        tf.data.Dataset.range(count)
        .shuffle(count, seed=derive_seed(config.seed, SHUFFLE_STREAM, epoch), reshuffle_each_iteration=False)
        .batch(config.batch_size)
    )
    first_batch = epoch * math.ceil(count / config.batch_size)

    def pair(number, indices):
        clean = tf.gather(images, indices)
        return clean, corrupt(clean, config.noise_type, config.noise_level, tf.stack([seed, number]),
                              config.noise_rescale)

    return (
        order.enumerate(start=first_batch)
        .map(pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


class LeanLoop(runner._TrainingLoop):
    """_TrainingLoop whose step makes ONE host transfer (all terms stacked) and counts steps itself.

    Same summaries, progress values, finiteness check and checkpoints as the
    runner's; only how the values reach Python changes.
    """

    _step_count = None

    def _step(self, clean, noisy):
        terms = self.trainer.train_step(clean, noisy)
        if self._step_count is None:
            self._step_count = int(self.trainer.step) - 1
        self._step_count += 1
        return dict(zip(terms, tf.stack(list(terms.values())).numpy().tolist())), self._step_count


class IndexedLoop(runner._TrainingLoop):
    """_TrainingLoop fed by indexed_training_batches (one replica only)."""

    def train(self, train_images, eval_images, eval_labels):
        self._images = tf.constant(train_images)
        return super().train(train_images, eval_images, eval_labels)

    def batches(self, images, epoch, done_in_epoch):
        return indexed_training_batches(self._images, self.config, epoch).skip(done_in_epoch)


class LeanIndexedLoop(IndexedLoop, LeanLoop):
    pass


# ---------------------------------------------------------------- attempts


def bench_pipeline_variants(count, batch, rounds):
    config = DDNMFConfig(batch_size=batch)
    array = _random_images(count, config.input_dim, 11)
    dataset = tf.data.Dataset.from_tensor_slices(array)
    tensor = tf.constant(array)
    same = True
    for epoch in range(2):
        for (a_clean, a_noisy), (b_clean, b_noisy) in zip(training_batches(dataset, config, epoch),
                                                          indexed_training_batches(tensor, config, epoch)):
            same &= bool(tf.reduce_all(a_clean == b_clean)) and bool(tf.reduce_all(a_noisy == b_noisy))
    variants = {
        "current": lambda epoch: training_batches(dataset, config, epoch),
        "indexed": lambda epoch: indexed_training_batches(tensor, config, epoch),
    }
    rates, firsts = defaultdict(list), defaultdict(list)
    loads = [load_average()]
    for round_ in range(rounds):
        for name, make in variants.items():
            started = time.perf_counter()
            first, images = None, 0
            for clean, _ in make(round_):
                if first is None:
                    first = time.perf_counter() - started
                images += int(clean.shape[0])
            rates[name].append(images / (time.perf_counter() - started))
            firsts[name].append(first)
    loads.append(load_average())
    return {
        "identical_batches": same,
        "images": count,
        "batch": batch,
        **{f"{name}_images_per_s": round(max(rates[name]), 1) for name in variants},
        **{f"{name}_first_batch_s": round(min(firsts[name]), 4) for name in variants},
        "load": loads,
    }


class _StubTrainer:
    """A trainer whose step returns 13 ready scalar tensors at once: only the loop's own cost remains."""

    def __init__(self, config):
        from ddnmf_tf.networks import DDNMF

        self.config = config
        self.model = DDNMF(config)
        self.model.build((None, config.input_dim))
        import keras

        self.optimizer = keras.optimizers.Adam()
        self.optimizer.build(self.model.trainable_variables)
        names = ["sym", "ap", "nc", "rec", "total"] + [f"ap/{n}" for n in self.model.supervisor.feature_names]
        self._terms = {name: tf.constant(0.5) for name in names}
        self.strategy = tf.distribute.get_strategy()

    @property
    def step(self):
        return int(tf.convert_to_tensor(self.optimizer.iterations.value))

    def train_step(self, clean, noisy):
        self.optimizer.iterations.assign_add(1)
        return dict(self._terms)


def bench_loop_overhead(steps, rounds, workdir):
    config = DDNMFConfig(layer_sizes=(32, 16), rank=4, batch_size=8)
    batch = (tf.zeros([8, config.input_dim]), tf.zeros([8, config.input_dim]))
    batches = [batch] * steps
    results = defaultdict(list)
    loads = [load_average()]
    settings = runner.RunSettings(quiet=False, output_dir=str(workdir))
    for round_ in range(rounds):
        for name, cls in (("current", runner._TrainingLoop), ("lean", LeanLoop)):
            trainer = _StubTrainer(config)
            loop = cls(trainer, config, settings, Path(workdir) / f"{name}{round_}", checkpoints.training_clock(),
                       lambda *a: None)
            progress = runner._Progress(steps, quiet=False)
            with tf.summary.create_file_writer(str(Path(workdir) / f"{name}{round_}")).as_default():
                import contextlib
                import io

                with contextlib.redirect_stdout(io.StringIO()):
                    progress.start(0, 1, 0)
                    started = time.perf_counter()
                    loop._epoch(batches, 0, progress)
                    results[name].append((time.perf_counter() - started) / steps)
    loads.append(load_average())
    return {
        "steps": steps,
        **{f"{name}_us_per_step": round(1e6 * min(values), 1) for name, values in results.items()},
        "note": "stub step that returns ready tensors; progress bar on (not quiet), stdout captured",
        "load": loads,
    }


def bench_epoch_variants(count, batch, rounds, workdir):
    folder = write_idx_folder(Path(workdir) / "idx", count, 500)
    from ddnmf_tf.data import load_arrays

    images, _ = load_arrays("mnist", "train", source="idx", data_dir=folder)
    eval_images, eval_labels = load_arrays("mnist", "test", source="idx", data_dir=folder)
    config = DDNMFConfig(batch_size=batch, epochs=1)
    trainer, _ = _warm_trainer(config, len(images))
    variants = {"current": runner._TrainingLoop, "lean": LeanLoop, "indexed": IndexedLoop,
                "lean+indexed": LeanIndexedLoop}
    from bench.run import run_training_loop

    rates, waits = defaultdict(list), defaultdict(list)
    loads = [load_average()]
    for round_ in range(rounds):
        for name, cls in variants.items():
            trainer.optimizer.iterations.assign(0)
            rate, wait, seconds = run_training_loop(
                trainer, config, images, eval_images, eval_labels, Path(workdir) / f"run-{name}-{round_}", cls
            )
            rates[name].append(rate)
            waits[name].append(100 * wait / seconds)
    loads.append(load_average())
    return {
        "images": count,
        "batch": batch,
        **{f"{name}_images_per_s": round(max(values), 1) for name, values in rates.items()},
        **{f"{name}_images_per_s_all": [round(v, 1) for v in values] for name, values in rates.items()},
        **{f"{name}_input_wait_pct_median": round(statistics.median(values), 2) for name, values in waits.items()},
        "load": loads,
    }


def bench_lr_batch(rounds):
    from bench.run import _StepCase, Sizes

    sizes = Sizes(False)
    cases = {
        "batch128_lr1e-3": _StepCase(sizes, 128, True),
        "batch1024_lr8e-3": _StepCase(sizes, 1024, True),
    }
    cases["batch1024_lr8e-3"].trainer.optimizer.learning_rate.assign(8e-3)
    rates = defaultdict(list)
    loads = [load_average()]
    for _ in range(rounds):
        for name, case in cases.items():
            seconds, images = case.time_chunk()
            rates[name].append(images / seconds)
    loads.append(load_average())
    return {**{f"{name}_images_per_s": round(max(v), 1) for name, v in rates.items()}, "load": loads,
            "note": "speed only; the quality of lr-scaled large-batch training is not measured here"}


def bench_threads(rounds):
    """Alternate processes: default, intra=2/inter=1, intra=1/inter=1, oneDNN off."""
    settings = {
        "default": ([], {}),
        "intra2_inter1": (["--intra", "2", "--inter", "1"], {}),
        "intra1_inter1": (["--intra", "1", "--inter", "1"], {}),
        "onednn_off": ([], {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    }
    found = defaultdict(list)
    for _ in range(rounds):
        for name, (args, env) in settings.items():
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                load = load_average()
                subprocess.run(
                    [sys.executable, "-m", "bench.run", "--sections", "step", "--batches", "256", "--rounds", "2",
                     "--json", out.name, *args],
                    check=True, capture_output=True, env={**os.environ, **env},
                )
                rows = json.loads(Path(out.name).read_text())["train_step"]
            found[name].append({"load": load, **{f"{'jit' if r['jit'] else 'nojit'}_{r['batch']}": r["images_per_s"]
                                                 for r in rows}})
    summary = {}
    for name, runs in found.items():
        keys = [key for key in runs[0] if key != "load"]
        summary[name] = {key: max(run[key] for run in runs) for key in keys}
        summary[name]["loads"] = [run["load"] for run in runs]
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json")
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(ATTEMPTS))
    args = parser.parse_args(argv)
    only = args.only.split(",")
    results = {}
    with tempfile.TemporaryDirectory(prefix="ddnmf-attempts-") as workdir:
        if "pipeline" in only:
            results["pipeline"] = bench_pipeline_variants(args.images, 128, args.rounds)
            print("pipeline", results["pipeline"], flush=True)
        if "loop" in only:
            results["loop"] = bench_loop_overhead(500, args.rounds, Path(workdir) / "loop")
            print("loop", results["loop"], flush=True)
        if "epoch" in only:
            results["epoch"] = bench_epoch_variants(args.images, 128, args.rounds, Path(workdir) / "epoch")
            print("epoch", results["epoch"], flush=True)
        if "lr_batch" in only:
            results["lr_batch"] = bench_lr_batch(args.rounds)
            print("lr_batch", results["lr_batch"], flush=True)
        if "threads" in only:
            results["threads"] = bench_threads(args.rounds)
            print("threads", results["threads"], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
