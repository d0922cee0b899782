"""Speed benchmark of DDNMF training and serving, in one process.

    python -m bench.run [--quick] [--json PATH] [--sections a,b,...] [--rounds N]
                        [--intra N --inter N] [--profile-dir DIR]

Sections (all by default; docs/performance.md has the results and the method):

    step      the project's compiled training step (DDNMFTrainer.train_step), jit on and
              off, at every batch size: images/s and achieved GFLOP/s
    kerasfit  the same networks and losses built the authors' way (bench/keras_fit.py):
              a functional model with add_loss terms trained by model.fit on arrays
    matmul    float32 matmul peak: an n x n x n tf.matmul, jit and not, best of N (timed in
              the same interleaved rounds as `step` when both are asked for)
    pipeline  training_batches alone over the training images: images/s, first-batch latency
    loop      the runner's real loop (runner._TrainingLoop.train, one epoch of synthetic
              IDX data) vs the bare train_step, and the input wait inside that loop
    serving   an exported SavedModel's serving_default: batch-1 latency, big-batch throughput
    head      the clustering head at the defaults: DDNMF steps against head steps (interleaved
              rounds), its start (UMAP+GMM's first targets) and a refresh of its targets, and
              what share of the DDNMF training time the head phase of 100-epoch runs costs
    profile   a TF profiler trace of a few training steps, summarised by op

`step`, `kerasfit` and `matmul` are measured together, interleaved round by round
(every configuration once per round, best round kept), so that the load of
a shared machine hits them alike. Every section records /proc/loadavg.

FLOPs are counted analytically (`flops_per_image`): a dense layer of
`n_in -> n_out` costs 2 n_in n_out per image forward and 3x that forward +
backward; both networks and both NMF matmuls (d x r and r x d) count.
Biases, activations, losses and the Adam update are left out (they are
O(width) per image or O(parameters) per step).
"""

import argparse
import contextlib
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ddnmf_tf.config import DDNMFConfig  # noqa: E402
from ddnmf_tf.model.networks import decoder_sizes  # noqa: E402

SECTIONS = ("step", "kerasfit", "matmul", "pipeline", "loop", "serving", "head", "profile")
# (name, training examples, DDNMF epochs) of the runs whose head phase, at the defaults, bench_head prices.
HEAD_RUNS = (("mnist_10k", 10_000, 100), ("fashion_mnist_60k", 60_000, 100))
TARGETS = {
    "step_vs_keras_fit": 1.5,
    "flop_rate_vs_matmul_peak": 0.8,
    "input_wait_pct": 5.0,
    "serving_batch1_p50_ms": 1.0,
    "serving_big_batch_images_per_s": 50_000,
}


# ---------------------------------------------------------------- sizes


def flops_per_image(config):
    """Analytic FLOPs per image of one training step (both networks, forward + backward).

    Returns the dict {"forward_macs", "forward_flops", "train_flops", "formula"}.
    """
    widths = (config.input_dim,) + tuple(config.layer_sizes) + decoder_sizes(config.input_dim, config.layer_sizes)
    dense_macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    nmf_macs = 2 * config.layer_sizes[-1] * config.rank
    forward_macs = 2 * dense_macs + nmf_macs  # supervisor + student dense layers, + NMF (student)
    return {
        "forward_macs": forward_macs,
        "forward_flops": 2 * forward_macs,
        "train_flops": 3 * 2 * forward_macs,
        "formula": "3 x 2 x (2 x sum_l n_(l-1) n_l + 2 d r): dense layers "
        + "-".join(str(w) for w in widths)
        + f" in both networks, NMF d={config.layer_sizes[-1]} r={config.rank}; "
        "x2 FLOPs per multiply-add, x3 forward + backward",
    }


def load_average():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return -1.0


def machine_info():
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: on)"),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "load_at_start": load_average(),
    }


class Sizes:
    """How much work each section does: full (the documented run) or quick (the smoke test)."""

    def __init__(self, quick):
        self.quick = quick
        self.jits = (True, False)
        if quick:
            self.config = DDNMFConfig(layer_sizes=(32, 16), rank=4)
            self.batches = (64,)
            self.reference_batch = 64
            self.images_per_chunk = 256
            self.rounds = 1
            self.warmup_steps = 1
            self.matmul_n, self.matmul_repeats = 256, 3
            self.pipeline_images = 1024
            self.loop_images, self.loop_batch = 1024, 64
            self.serving_calls, self.serving_big_batch, self.serving_big_repeats = 30, 256, 3
            self.profile_steps = 3
            self.head_images, self.head_steps = 1024, 3
        else:
            self.config = DDNMFConfig()
            self.batches = (128, 256, 1024)
            self.reference_batch = 256
            self.images_per_chunk = 4096
            self.rounds = 3
            self.warmup_steps = 2
            self.matmul_n, self.matmul_repeats = 2048, 10
            self.pipeline_images = 60_000
            self.loop_images, self.loop_batch = 60_000, 128
            self.serving_calls, self.serving_big_batch, self.serving_big_repeats = 2000, 1024, 20
            self.profile_steps = 20
            self.head_images, self.head_steps = 10_000, 40

    def config_for(self, batch, jit):
        return DDNMFConfig(**{**self.config.to_dict(), "batch_size": batch, "jit_compile": jit})


def _random_images(count, width, seed):
    return np.random.default_rng(seed).random((count, width), dtype=np.float32)


def _batches(batch, width, count=2, seed=0):
    """`count` (clean, noisy) pairs of random images; masking noise 0.1 like the default config."""
    pairs = []
    for i in range(count):
        clean = _random_images(batch, width, seed + i)
        noisy = np.where(np.random.default_rng(seed + 100 + i).random(clean.shape) >= 0.1, clean, 0.0)
        pairs.append((tf.constant(clean), tf.constant(noisy.astype(np.float32))))
    return pairs


# ---------------------------------------------------------------- (a) + (b): step vs Keras fit


class _StepCase:
    """The project's DDNMFTrainer.train_step at one (batch, jit)."""

    kind = "train_step"

    def __init__(self, sizes, batch, jit):
        from ddnmf_tf.training.step import DDNMFTrainer

        self.batch, self.jit = batch, jit
        self.config = sizes.config_for(batch, jit)
        self.trainer = DDNMFTrainer(self.config)
        self.data = _batches(batch, self.config.input_dim)
        self.steps = max(4, math.ceil(sizes.images_per_chunk / batch))
        started = time.perf_counter()
        for i in range(sizes.warmup_steps):
            self.trainer.train_step(*self.data[i % len(self.data)])["total"].numpy()
        self.warmup_seconds = time.perf_counter() - started

    def label(self):
        return f"train_step jit={'on' if self.jit else 'off'} batch={self.batch}"

    def time_chunk(self):
        """Seconds for `self.steps` steps, one host sync at the end (the loss of the last step)."""
        step, data = self.trainer.train_step, self.data
        started = time.perf_counter()
        for i in range(self.steps):
            terms = step(*data[i % len(data)])
        terms["total"].numpy()
        return time.perf_counter() - started, self.steps * self.batch


class _KerasFitCase:
    """The authors' build (bench/keras_fit.py) trained by model.fit on NumPy arrays."""

    kind = "keras_fit"

    def __init__(self, sizes, batch, jit):
        import keras

        from bench.keras_fit import build_keras_fit_model

        self.batch, self.jit_asked = batch, jit
        self.config = sizes.config_for(batch, True)
        self.model = build_keras_fit_model(self.config, jit_compile=jit)
        self.steps = max(4, math.ceil(sizes.images_per_chunk / batch))
        count = (self.steps + 1) * batch  # the first batch of each fit is left out of the timing
        self.clean = _random_images(count, self.config.input_dim, 7)
        rng = np.random.default_rng(8)
        self.noisy = np.where(rng.random(self.clean.shape) >= 0.1, self.clean, 0.0).astype(np.float32)
        self.times = []
        outer = self

        class _BatchClock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                outer.times.append(time.perf_counter())

        self.clock = _BatchClock()
        started = time.perf_counter()
        self._fit()
        self.warmup_seconds = time.perf_counter() - started
        self.jit = bool(self.model.jit_compile)

    def _fit(self):
        self.times = []
        self.model.fit([self.clean, self.noisy], batch_size=self.batch, epochs=1, verbose=0, callbacks=[self.clock])
        return time.perf_counter()

    def label(self):
        return f"keras_fit jit={self.jit_asked} batch={self.batch}"

    def time_chunk(self):
        """Seconds from the end of the first batch to the end of fit (steady state, no fit set-up)."""
        ended = self._fit()
        return ended - self.times[0], self.steps * self.batch


class _MatmulCase:
    """An n x n x n float32 tf.matmul (jit or not); a chunk is the best of a few calls."""

    kind = "matmul"

    def __init__(self, sizes, jit, calls=4):
        n = self.n = sizes.matmul_n
        self.jit, self.calls, self.batch = jit, calls, 0
        self.a = tf.random.stateless_normal([n, n], seed=[1, 2])
        self.b = tf.random.stateless_normal([n, n], seed=[3, 4])
        self.function = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)), jit_compile=jit)
        self.function(self.a, self.b).numpy()
        self.warmup_seconds = 0.0

    def time_chunk(self):
        """(seconds of the fastest call, its FLOPs); the reduce_sum keeps the output transfer out."""
        best = math.inf
        for _ in range(self.calls):
            started = time.perf_counter()
            self.function(self.a, self.b).numpy()
            best = min(best, time.perf_counter() - started)
        return best, 2 * self.n**3


def bench_step_and_keras_fit(sizes, sections):
    """Sections (a), (b) and (c), interleaved: every case once per round, best round kept.

    The matmul peak is timed in the same rounds as the steps, so that the
    FLOP-rate ratio compares numbers taken under the same load.
    """
    per_image = flops_per_image(sizes.config)["train_flops"]
    cases = []
    if "step" in sections:
        cases += [_StepCase(sizes, batch, jit) for jit in sizes.jits for batch in sizes.batches]
    if "kerasfit" in sections:
        cases += [_KerasFitCase(sizes, batch, "auto") for batch in sizes.batches]
        cases.append(_KerasFitCase(sizes, sizes.reference_batch, True))
    if "matmul" in sections:
        cases += [_MatmulCase(sizes, jit) for jit in (True, False)]
    rates = {id(case): [] for case in cases}
    loads = []
    for _ in range(sizes.rounds):
        loads.append(load_average())
        for case in cases:
            seconds, images = case.time_chunk()
            rates[id(case)].append(images / seconds)
    loads.append(load_average())
    results = {"train_step": [], "keras_fit": []}
    matmul = {case.jit: max(rates[id(case)]) / 1e9 for case in cases if case.kind == "matmul"}
    if matmul:
        results["matmul"] = {
            "n": sizes.matmul_n, "gflops_jit": round(matmul[True], 2), "gflops_nojit": round(matmul[False], 2),
            "peak_gflops": round(max(matmul.values()), 2), "calls_per_round": 4, "rounds": sizes.rounds,
            "load": loads[0], "interleaved_with_steps": True,
        }
    for case in cases:
        if case.kind == "matmul":
            continue
        best = max(rates[id(case)])
        row = {
            "batch": case.batch,
            "jit": case.jit,
            "images_per_s": round(best, 1),
            "images_per_s_median": round(statistics.median(rates[id(case)]), 1),
            "ms_per_step": round(1000 * case.batch / best, 2),
            "gflops": round(best * per_image / 1e9, 2),
            "rounds": len(rates[id(case)]),
            "first_call_s": round(case.warmup_seconds, 2),
        }
        if case.kind == "keras_fit":
            row["jit_asked"] = case.jit_asked
        results[case.kind].append(row)
    results["load_during"] = loads
    results["flops_per_image"] = flops_per_image(sizes.config)
    return results


# ---------------------------------------------------------------- (c) matmul peak


def bench_matmul(sizes):
    n = sizes.matmul_n
    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])
    flops = 2 * n**3
    load = load_average()
    best = {}
    functions = {
        "jit": tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)), jit_compile=True),
        "nojit": tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)), jit_compile=False),
    }
    for function in functions.values():
        function(a, b).numpy()
    times = {name: [] for name in functions}
    for _ in range(sizes.matmul_repeats):  # interleaved
        for name, function in functions.items():
            started = time.perf_counter()
            function(a, b).numpy()
            times[name].append(time.perf_counter() - started)
    for name in functions:
        best[name] = flops / min(times[name]) / 1e9
    return {
        "n": n,
        "gflops_jit": round(best["jit"], 2),
        "gflops_nojit": round(best["nojit"], 2),
        "peak_gflops": round(max(best.values()), 2),
        "repeats": sizes.matmul_repeats,
        "load": load,
    }


# ---------------------------------------------------------------- (d) input pipeline


def bench_pipeline(sizes):
    from ddnmf_tf.training.step import training_batches

    config = sizes.config_for(sizes.loop_batch, True)
    images = _random_images(sizes.pipeline_images, config.input_dim, 11)
    load = load_average()
    runs = []
    for epoch in range(2):
        started = time.perf_counter()
        iterator = iter(training_batches(images, config, epoch))
        first = None
        count = 0
        for clean, _ in iterator:
            if first is None:
                first = time.perf_counter() - started
            count += int(clean.shape[0])
        runs.append((time.perf_counter() - started, first, count))
    seconds, first, count = min(runs)
    return {
        "images": count,
        "batch": config.batch_size,
        "images_per_s": round(count / seconds, 1),
        "epoch_seconds": round(seconds, 3),
        "first_batch_s": round(first, 3),
        "load": load,
    }


# ---------------------------------------------------------------- loop: runner vs bare step


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
    """Synthetic MNIST-shaped IDX files (tests/idx_files.py helpers)."""
    from tests.idx_files import random_split, write_split

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_split(folder, "train", *random_split(train_count, seed=0), compressed=False)
    write_split(folder, "t10k", *random_split(test_count, seed=1), compressed=False)
    return folder


def _warm_trainer(config, train_count):
    """A DDNMFTrainer whose step is already compiled for the full and the last (partial) batch."""
    from ddnmf_tf.training.step import DDNMFTrainer

    trainer = DDNMFTrainer(config)
    started = time.perf_counter()
    shapes = {config.batch_size, train_count % config.batch_size or config.batch_size}
    for batch in sorted(shapes, reverse=True):
        clean, noisy = _batches(batch, config.input_dim, count=1)[0]
        trainer.train_step(clean, noisy)["total"].numpy()
    compile_seconds = time.perf_counter() - started
    trainer.optimizer.iterations.assign(0)  # the loop starts at epoch 0, step 0
    return trainer, compile_seconds


def run_training_loop(trainer, config, settings, data, run_dir, loop_class=None):
    """One epoch of the runner's loop (runner._TrainingLoop.train) on `data` (runner.RunData); returns
    (images/s, input wait s, seconds)."""
    from ddnmf_tf.run import checkpoints
    from ddnmf_tf.run import runner

    base = loop_class or runner._TrainingLoop
    waits = {"wait": 0.0, "batches": 0}

    class TimedLoop(base):
        def batches(self, data, epoch, done_in_epoch):
            return _TimedBatches(super().batches(data, epoch, done_in_epoch), waits)

    training_clock = checkpoints.training_clock()
    loop = TimedLoop(trainer, config, settings, Path(run_dir), training_clock, lambda *args: None)
    with contextlib.redirect_stdout(io.StringIO()):
        loop.train(data)
    seconds = float(training_clock.seconds)
    return int(training_clock.images) / seconds, waits["wait"], seconds


def bare_steps(trainer, images, batch, noise_seed=0):
    """The bare compiled step over the same images, pre-batched in memory, one sync at the end."""
    from ddnmf_tf.model.noise import corrupt

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
    from ddnmf_tf.run import runner

    folder = write_idx_folder(Path(workdir) / "idx", sizes.loop_images, max(200, sizes.loop_images // 60))
    settings = runner.RunSettings(dataset="mnist", source="idx", data_dir=str(folder), quiet=True,
                                  run_dir=str(Path(workdir) / "run"))
    data = runner.load_run_data(settings, seed=0)
    images = data.preprocessing.apply(data.train.values)
    config = sizes.config_for(sizes.loop_batch, True)
    config = DDNMFConfig(**{**config.to_dict(), "epochs": 1})
    trainer, compile_seconds = _warm_trainer(config, len(images))
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


# ---------------------------------------------------------------- (e) serving


def bench_serving(sizes, workdir):
    from ddnmf_tf.serving import SERVING_DEFAULT, export_model
    from ddnmf_tf.model.networks import DDNMF

    config = sizes.config
    model = DDNMF(config)
    model.build((None, config.input_dim))
    started = time.perf_counter()
    version_dir = export_model(model, Path(workdir) / "export")
    export_seconds = time.perf_counter() - started
    serve = tf.saved_model.load(str(version_dir)).signatures[SERVING_DEFAULT]
    one = tf.constant(_random_images(1, config.input_dim, 3))
    big = tf.constant(_random_images(sizes.serving_big_batch, config.input_dim, 4))
    for _ in range(10):
        serve(images=one)["representation"].numpy()
    serve(images=big)["representation"].numpy()
    load = load_average()
    latencies = []
    for _ in range(sizes.serving_calls):
        started = time.perf_counter()
        serve(images=one)["representation"].numpy()
        latencies.append(time.perf_counter() - started)
    big_times = []
    for _ in range(sizes.serving_big_repeats):
        started = time.perf_counter()
        serve(images=big)["representation"].numpy()
        big_times.append(time.perf_counter() - started)
    latencies_ms = np.array(latencies) * 1000
    return {
        "batch1_p50_ms": round(float(np.percentile(latencies_ms, 50)), 4),
        "batch1_p99_ms": round(float(np.percentile(latencies_ms, 99)), 4),
        "batch1_calls": len(latencies),
        "big_batch": sizes.serving_big_batch,
        "big_batch_images_per_s": round(sizes.serving_big_batch / min(big_times), 1),
        "big_batch_images_per_s_median": round(sizes.serving_big_batch / statistics.median(big_times), 1),
        "export_seconds": round(export_seconds, 2),
        "load": [load, load_average()],
    }


# ---------------------------------------------------------------- profile


def bench_head(sizes):
    """The clustering head's cost at the defaults, measured in interleaved rounds (best kept) at batch 128: its
    steps against DDNMF's, its start (UMAP+GMM's first targets) and a refresh of its targets."""
    from ddnmf_tf.model.head import initial_targets, self_labels, start_sample_size
    from ddnmf_tf.run.runner import encode
    from ddnmf_tf.training.step import DDNMFTrainer

    config = DDNMFConfig(**{**sizes.config.to_dict(), "batch_size": 128})
    trainer = DDNMFTrainer(config)
    trainer.build_head(10, sizes.head_images)
    images = _random_images(sizes.head_images, config.input_dim, 0)
    pairs = _batches(128, config.input_dim, count=sizes.head_steps)
    numbers = tf.range(128, dtype=tf.int64)

    def ddnmf_steps():
        for clean, noisy in pairs:
            terms = trainer.train_step(clean, noisy)
        terms["total"].numpy()

    def head_steps():
        for clean, noisy in pairs:
            terms = trainer.head_step(clean, noisy, numbers)
        terms["total"].numpy()

    def refresh():
        self_labels(trainer.head(encode(trainer.model, images)).numpy(), config.head_confidence)

    features = encode(trainer.model, images)
    sample = start_sample_size(config.head_init_sample, sizes.head_images)  # what its start fits
    best = {}
    for _ in range(sizes.rounds + 1):  # the first round compiles and warms up, and is dropped
        for name, work in (("ddnmf", ddnmf_steps), ("head", head_steps), ("refresh", refresh),
                           ("start", lambda: initial_targets(features[:sample], 10, 0, 100))):
            started = time.perf_counter()
            work()
            best.setdefault(name, []).append(time.perf_counter() - started)
    seconds = {name: min(times[1:]) for name, times in best.items()}
    steps_images = sizes.head_steps * 128
    ddnmf_rate, head_rate = steps_images / seconds["ddnmf"], steps_images / seconds["head"]
    refresh_per_image = seconds["refresh"] / sizes.head_images
    runs = {}
    for name, examples, epochs in HEAD_RUNS:
        steps = config.head_epochs * math.ceil(examples / 128)
        refreshes = steps // config.head_update_every if config.head_update_every else 0
        ddnmf_seconds = epochs * examples / ddnmf_rate
        # The start scales about linearly with the examples it fits (at most head_init_sample); its encoding of
        # the whole set and each refresh are priced as one refresh.
        head_seconds = (config.head_epochs * examples / head_rate + (refreshes + 1) * examples * refresh_per_image
                        + seconds["start"] * start_sample_size(config.head_init_sample, examples) / sample)
        runs[name] = {"ddnmf_seconds": round(ddnmf_seconds, 1), "head_seconds": round(head_seconds, 1),
                      "head_share": round(head_seconds / ddnmf_seconds, 3), "refreshes": refreshes}
    return {"ddnmf_images_per_s": round(ddnmf_rate, 1), "head_images_per_s": round(head_rate, 1),
            "head_step_cost": round(ddnmf_rate / head_rate, 3),
            "refresh_seconds_per_10k": round(refresh_per_image * 10_000, 3),
            "start_seconds": round(seconds["start"], 3), "start_examples": sample,
            "head_epochs": config.head_epochs, "runs": runs, "load": load_average()}


def _category(name):
    """Coarse kind of a trace event: XLA dots, XLA fusions, the caller's wait, the XLA runtime, other."""
    if name == "BlockUntilReady":
        return "caller waits for the XLA executable"
    if name.startswith(("MatMul", "dot")):
        return "XLA dots (matmuls)"
    if "fusion" in name or name.startswith(("copy", "reduce", "transpose")):
        return "XLA fusions (elementwise, losses, Adam)"
    if "Thunk" in name or "Execut" in name:
        return "XLA runtime"
    return "other (Python, eager, tf.function dispatch)"


def summarize_trace(logdir, top=15):
    """Top ops by total self time from the newest `*.xplane.pb` under `logdir` (TF's XSpace proto)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(Path(logdir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not paths:
        return {"error": f"no .xplane.pb under {logdir}"}
    space = xplane_pb2.XSpace()
    space.ParseFromString(paths[-1].read_bytes())
    totals, counts = {}, {}
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            events = sorted(
                ((event.offset_ps, event.offset_ps + event.duration_ps, plane.event_metadata[event.metadata_id].name)
                 for event in line.events),
                key=lambda e: (e[0], -e[1]),
            )
            # Self time: an event's duration minus its children's (events nested on the same thread line).
            stack = []
            for start, end, name in events:
                while stack and stack[-1][1] <= start:
                    stack.pop()
                if stack:
                    parent = stack[-1]
                    totals[parent[2]] = totals.get(parent[2], 0) - (end - start)
                totals[name] = totals.get(name, 0) + (end - start)
                counts[name] = counts.get(name, 0) + 1
                stack.append((start, end, name))
    busy = sum(value for value in totals.values() if value > 0)
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    categories = {}
    for name, ps in totals.items():
        if ps > 0:
            categories[_category(name)] = categories.get(_category(name), 0) + ps
    return {
        "trace_file": str(paths[-1]),
        "self_time_by_category_pct": {name: round(100 * ps / busy, 1)
                                      for name, ps in sorted(categories.items(), key=lambda item: -item[1])},
        "top_self_time": [
            {"name": name[:120], "self_ms": round(ps / 1e9, 3), "pct": round(100 * ps / busy, 2),
             "count": counts[name]}
            for name, ps in ranked
        ],
    }


def bench_profile(sizes, logdir):
    from ddnmf_tf.training.step import DDNMFTrainer

    config = sizes.config_for(sizes.loop_batch, True)
    trainer = DDNMFTrainer(config)
    data = _batches(config.batch_size, config.input_dim)
    for pair in data:
        trainer.train_step(*pair)["total"].numpy()
    load = load_average()
    tf.profiler.experimental.start(str(logdir))
    for i in range(sizes.profile_steps):
        with tf.profiler.experimental.Trace("train", step_num=i, _r=1):
            values = {name: float(value) for name, value in trainer.train_step(*data[i % 2]).items()}
    tf.profiler.experimental.stop()
    del values
    summary = summarize_trace(logdir)
    summary.update(steps=sizes.profile_steps, batch=config.batch_size, jit=config.jit_compile, load=load,
                   logdir=str(logdir), view=f"tensorboard --logdir {logdir}  (Profile tab; needs tensorboard-plugin-profile)")
    return summary


# ---------------------------------------------------------------- targets and output


def evaluate_targets(results, sizes):
    targets = {}
    steps = {(row["batch"], row["jit"]): row for row in results.get("train_step", [])}
    fits = [row for row in results.get("keras_fit", []) if row["batch"] == sizes.reference_batch]
    if steps and fits:
        best_step = max(row["images_per_s"] for (batch, _), row in steps.items() if batch == sizes.reference_batch)
        default_fit = next((row for row in fits if row["jit_asked"] == "auto"), fits[0])
        best_fit = max(row["images_per_s"] for row in fits)
        targets["step_vs_keras_fit"] = {
            "value": round(best_step / default_fit["images_per_s"], 3),
            "vs_best_keras_fit": round(best_step / best_fit, 3),
            "target": f">= {TARGETS['step_vs_keras_fit']} at batch {sizes.reference_batch}",
            "met": best_step / default_fit["images_per_s"] >= TARGETS["step_vs_keras_fit"],
        }
    if steps and "matmul" in results:
        best = max(row["gflops"] for row in steps.values())
        ratio = best / results["matmul"]["peak_gflops"]
        targets["flop_rate_vs_matmul_peak"] = {
            "value": round(ratio, 3), "best_step_gflops": best,
            "target": f">= {TARGETS['flop_rate_vs_matmul_peak']}", "met": ratio >= TARGETS["flop_rate_vs_matmul_peak"],
        }
    if "loop" in results:
        wait = results["loop"]["input_wait_pct"]
        targets["input_wait_pct"] = {"value": wait, "target": f"< {TARGETS['input_wait_pct']}",
                                     "met": wait < TARGETS["input_wait_pct"]}
    if "serving" in results:
        p50 = results["serving"]["batch1_p50_ms"]
        rate = results["serving"]["big_batch_images_per_s"]
        targets["serving_batch1_p50_ms"] = {"value": p50, "target": f"< {TARGETS['serving_batch1_p50_ms']}",
                                            "met": p50 < TARGETS["serving_batch1_p50_ms"]}
        targets["serving_big_batch_images_per_s"] = {
            "value": rate, "batch": results["serving"]["big_batch"],
            "target": f"> {TARGETS['serving_big_batch_images_per_s']}",
            "met": rate > TARGETS["serving_big_batch_images_per_s"],
        }
    return targets


def print_table(results):
    out = []
    for kind in ("train_step", "keras_fit"):
        for row in results.get(kind, []):
            out.append(f"{kind:10s} batch {row['batch']:5d} jit {str(row['jit']):5s}  "
                       f"{row['images_per_s']:10.1f} img/s  {row['gflops']:7.2f} GFLOP/s  {row['ms_per_step']:8.2f} ms/step")
    if "matmul" in results:
        m = results["matmul"]
        out.append(f"matmul {m['n']}^3: jit {m['gflops_jit']} GFLOP/s, no jit {m['gflops_nojit']} GFLOP/s (load {m['load']})")
    if "pipeline" in results:
        p = results["pipeline"]
        out.append(f"pipeline: {p['images_per_s']} img/s, first batch {p['first_batch_s']} s (load {p['load']})")
    if "loop" in results:
        p = results["loop"]
        out.append(f"loop: runner {p['runner_images_per_s']} img/s vs bare {p['bare_step_images_per_s']} img/s, "
                   f"input wait {p['input_wait_pct']} % (load {p['load']})")
    if "serving" in results:
        s = results["serving"]
        out.append(f"serving: batch-1 p50 {s['batch1_p50_ms']} ms p99 {s['batch1_p99_ms']} ms; "
                   f"batch-{s['big_batch']} {s['big_batch_images_per_s']} img/s (load {s['load']})")
    if "head" in results:
        h = results["head"]
        out.append(f"head: DDNMF step {h['ddnmf_images_per_s']} img/s, head step {h['head_images_per_s']} img/s "
                   f"(x{h['head_step_cost']}), refresh {h['refresh_seconds_per_10k']} s per 10k examples, start "
                   f"(UMAP+GMM on {h['start_examples']} examples) {h['start_seconds']} s (load {h['load']})")
        for name, run in h["runs"].items():
            out.append(f"  {name}: {h['head_epochs']} head epochs {run['head_seconds']} s "
                       f"({100 * run['head_share']:.1f} %) of DDNMF's {run['ddnmf_seconds']} s")
    if "profile" in results and "top_self_time" in results["profile"]:
        out.append(f"profile, self time by kind: {results['profile']['self_time_by_category_pct']}")
        out.append("profile, top self time:")
        for row in results["profile"]["top_self_time"][:10]:
            out.append(f"  {row['pct']:6.2f} %  {row['self_ms']:9.3f} ms  x{row['count']:<5d} {row['name']}")
    for name, target in results.get("targets", {}).items():
        out.append(f"target {name}: {target['value']} ({target['target']}) -> {'MET' if target['met'] else 'not met'}")
    print("\n".join(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and sizes: a seconds-long smoke run")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the step / Keras-fit timings")
    parser.add_argument("--intra", type=int, help="tf.config.threading intra-op threads")
    parser.add_argument("--inter", type=int, help="tf.config.threading inter-op threads")
    parser.add_argument("--batches", help="comma list of batch sizes of the step section (default 128,256,1024)")
    parser.add_argument("--jit", choices=("both", "on", "off"), default="both", help="jit settings of the step section")
    parser.add_argument("--profile-dir", help="where the profiler trace goes (default: a temporary dir)")
    args = parser.parse_args(argv)
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    if args.inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    sizes = Sizes(args.quick)
    if args.rounds:
        sizes.rounds = args.rounds
    if args.batches:
        sizes.batches = tuple(int(b) for b in args.batches.split(","))
        if sizes.reference_batch not in sizes.batches:
            sizes.reference_batch = sizes.batches[0]
    sizes.jits = {"both": (True, False), "on": (True,), "off": (False,)}[args.jit]
    started = time.perf_counter()
    results = {"machine": machine_info(), "quick": args.quick, "sections": sections}
    seconds = results["section_seconds"] = {}

    def timed(name, function, *args):
        began = time.perf_counter()
        value = function(*args)
        seconds[name] = round(time.perf_counter() - began, 1)
        return value

    with tempfile.TemporaryDirectory(prefix="ddnmf-bench-") as workdir:
        if "step" in sections or "kerasfit" in sections:
            results.update(timed("step+kerasfit", bench_step_and_keras_fit, sizes, sections))
            if "kerasfit" not in sections:
                results.pop("keras_fit")
            if "step" not in sections:
                results.pop("train_step")
        if "matmul" in sections and "matmul" not in results:
            results["matmul"] = timed("matmul", bench_matmul, sizes)
        if "pipeline" in sections:
            results["pipeline"] = timed("pipeline", bench_pipeline, sizes)
        if "loop" in sections:
            results["loop"] = timed("loop", bench_loop, sizes, workdir)
        if "serving" in sections:
            results["serving"] = timed("serving", bench_serving, sizes, workdir)
        if "head" in sections:
            results["head"] = timed("head", bench_head, sizes)
        if "profile" in sections:
            logdir = Path(args.profile_dir) if args.profile_dir else Path(workdir) / "profile"
            results["profile"] = timed("profile", bench_profile, sizes, logdir)
    results["targets"] = evaluate_targets(results, sizes)
    results["machine"]["load_at_end"] = load_average()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    print_table(results)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
