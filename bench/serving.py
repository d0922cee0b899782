"""An exported SavedModel's serving_default: batch-1 latency and big-batch throughput."""

import statistics
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from bench.common import random_images
from ddnmf_tf.model.networks import DDNMF
from ddnmf_tf.reporting.machine import load_average
from ddnmf_tf.serving import SERVING_DEFAULT, export_model


def bench_serving(sizes, workdir):
    config = sizes.config
    model = DDNMF(config)
    model.build((None, config.input_dim))
    started = time.perf_counter()
    version_dir = export_model(model, Path(workdir) / "export")
    export_seconds = time.perf_counter() - started
    serve = tf.saved_model.load(str(version_dir)).signatures[SERVING_DEFAULT]
    one = tf.constant(random_images(1, config.input_dim, 3))
    big = tf.constant(random_images(sizes.serving_big_batch, config.input_dim, 4))
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
