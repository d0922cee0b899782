"""The input pipeline alone: training_batches over the training images, images/s and first-batch latency."""

import time

from bench.common import random_images
from ddnmf_tf.reporting.machine import load_average
from ddnmf_tf.training.step import training_batches


def bench_pipeline(sizes):
    config = sizes.config_for(sizes.loop_batch, True)
    images = random_images(sizes.pipeline_images, config.input_dim, 11)
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
