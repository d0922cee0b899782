"""The compiled training step against Keras's model.fit and the float32 matmul peak, timed in interleaved rounds."""

import math
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from bench.common import flops_per_image, random_batches, random_images
from bench.keras_fit import build_keras_fit_model
from ddnmf_tf.reporting.machine import load_average
from ddnmf_tf.training.step import DDNMFTrainer


class _StepCase:
    """The project's DDNMFTrainer.train_step at one (batch, jit)."""

    kind = "train_step"

    def __init__(self, sizes, batch, jit):
        self.batch, self.jit = batch, jit
        self.config = sizes.config_for(batch, jit)
        self.trainer = DDNMFTrainer(self.config)
        self.data = random_batches(batch, self.config.input_dim)
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
        self.batch, self.jit_asked = batch, jit
        self.config = sizes.config_for(batch, True)
        self.model = build_keras_fit_model(self.config, jit_compile=jit)
        self.steps = max(4, math.ceil(sizes.images_per_chunk / batch))
        count = (self.steps + 1) * batch  # the first batch of each fit is left out of the timing
        self.clean = random_images(count, self.config.input_dim, 7)
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
