"""The one training loop (ddnmf_tf.training.loop) on synthetic IDX data against bare train_steps, and its input wait."""

import contextlib
import io
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from bench.common import random_batches
from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.data.idx import write_idx_split
from ddnmf_tf.model.noise import corrupt
from ddnmf_tf.reporting.machine import load_average
from ddnmf_tf.run.inputs import load_run_data
from ddnmf_tf.run.settings import RunSettings
from ddnmf_tf.training.loop import TrainingLoop
from ddnmf_tf.training.step import DDNMFTrainer, training_clock


class _TimedBatches:
    """Wraps a dataset; counts the seconds the consumer spends waiting in next()."""

    def __init__(self, dataset, clock):
        self.dataset, self.clock = dataset, clock

    def __iter__(self):
        iterator = iter(self.dataset)
        while True:
            started = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                self.clock["wait"] += time.perf_counter() - started
                return
            self.clock["wait"] += time.perf_counter() - started
            self.clock["batches"] += 1
            yield batch


def write_idx_folder(folder, train_count, test_count):
    """Synthetic MNIST-shaped IDX files: random 28x28 uint8 images with labels in 0..9."""
    for prefix, count, seed in (("train", train_count, 0), ("t10k", test_count, 1)):
        rng = np.random.default_rng(seed)
        write_idx_split(folder, prefix, rng.integers(0, 256, (count, 28, 28), np.uint8), rng.integers(0, 10, count))
    return Path(folder)


def warm_trainer(config, train_count):
    """A DDNMFTrainer whose step is already compiled for the full and the last (partial) batch."""
    trainer = DDNMFTrainer(config)
    started = time.perf_counter()
    shapes = {config.batch_size, train_count % config.batch_size or config.batch_size}
    for batch in sorted(shapes, reverse=True):
        clean, noisy = random_batches(batch, config.input_dim, count=1)[0]
        trainer.train_step(clean, noisy)["total"].numpy()
    compile_seconds = time.perf_counter() - started
    trainer.optimizer.iterations.assign(0)  # the loop starts at epoch 0, step 0
    return trainer, compile_seconds


def run_training_loop(trainer, config, settings, data, run_dir, loop_class=None):
    """One epoch of the training loop (TrainingLoop.train) on `data` (a RunData); returns
    (images/s, input wait s, seconds)."""
    base = loop_class or TrainingLoop
    waits = {"wait": 0.0, "batches": 0}

    class TimedLoop(base):
        def batches(self, data, epoch, done_in_epoch):
            return _TimedBatches(super().batches(data, epoch, done_in_epoch), waits)

    clock = training_clock()
    loop = TimedLoop(trainer, config, settings, Path(run_dir), clock, lambda *args: None)
    with contextlib.redirect_stdout(io.StringIO()):
        loop.train(data)
    seconds = float(clock.seconds)
    return int(clock.images) / seconds, waits["wait"], seconds


def bare_steps(trainer, images, batch, noise_seed=0):
    """The bare compiled step over the same images, pre-batched in memory, one sync at the end."""
    batches = []
    for start in range(0, len(images), batch):
        clean = tf.constant(images[start:start + batch])
        batches.append((clean, corrupt(clean, "masking", 0.1, [noise_seed, start])))
    started = time.perf_counter()
    for clean, noisy in batches:
        terms = trainer.train_step(clean, noisy)
    terms["total"].numpy()
    return len(images) / (time.perf_counter() - started)


def bench_loop(sizes, workdir):
    folder = write_idx_folder(Path(workdir) / "idx", sizes.loop_images, max(200, sizes.loop_images // 60))
    settings = RunSettings(dataset="mnist", source="idx", data_dir=str(folder), quiet=True,
                                  run_dir=str(Path(workdir) / "run"))
    data = load_run_data(settings, seed=0)
    images = data.preprocessing.apply(data.train.values)
    config = sizes.config_for(sizes.loop_batch, True)
    config = DDNMFConfig(**{**config.to_dict(), "epochs": 1})
    trainer, compile_seconds = warm_trainer(config, len(images))
    load = load_average()
    bare = bare_steps(trainer, images, config.batch_size)
    trainer.optimizer.iterations.assign(0)
    loop_rate, wait, seconds = run_training_loop(trainer, config, settings, data, Path(workdir) / "run")
    bare_again = bare_steps(trainer, images, config.batch_size)
    bare_best = (bare + bare_again) / 2  # the loop ran between the two: their mean is the fair reference
    return {
        "images": len(images),
        "batch": config.batch_size,
        "jit": config.jit_compile,
        "runner_images_per_s": round(loop_rate, 1),
        "bare_step_images_per_s": round(bare_best, 1),
        "bare_before_after": [round(bare, 1), round(bare_again, 1)],
        "runner_vs_bare": round(loop_rate / bare_best, 3),
        "input_wait_s": round(wait, 3),
        "input_wait_pct": round(100 * wait / seconds, 2),
        "epoch_seconds": round(seconds, 3),
        "compile_seconds": round(compile_seconds, 2),
        "load": [load, load_average()],
    }
