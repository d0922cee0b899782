"""The clustering head at the defaults: its steps against DDNMF's, its start, a refresh, its share of a run."""

import math
import time

import tensorflow as tf

from bench.common import random_batches, random_images
from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.inference import encode
from ddnmf_tf.model.head import initial_targets, refit_epochs, self_labels, start_sample_size
from ddnmf_tf.reporting.machine import load_average
from ddnmf_tf.training.step import DDNMFTrainer

# (name, training examples, DDNMF epochs) of the runs whose head phase, at the defaults, bench_head prices.
HEAD_RUNS = (("mnist_10k", 10_000, 100), ("fashion_mnist_60k", 60_000, 100))


def bench_head(sizes):
    """The clustering head's cost at the defaults, measured in interleaved rounds (best kept) at batch 128: its
    steps against DDNMF's, its start (UMAP+GMM's first targets) and a refresh of its targets."""
    config = DDNMFConfig(**{**sizes.config.to_dict(), "batch_size": 128})
    trainer = DDNMFTrainer(config)
    trainer.build_head(10, sizes.head_images)
    images = random_images(sizes.head_images, config.input_dim, 0)
    pairs = random_batches(128, config.input_dim, count=sizes.head_steps)
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
                           ("start", lambda: initial_targets(features[:sample], 10, 0, config.head_umap_neighbors))):
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
        # Each of the head_refits refits costs what the start does.
        starts = 1 + len(refit_epochs(config))
        head_seconds = (config.head_epochs * examples / head_rate + (refreshes + starts) * examples * refresh_per_image
                        + starts * seconds["start"] * start_sample_size(config.head_init_sample, examples) / sample)
        runs[name] = {"ddnmf_seconds": round(ddnmf_seconds, 1), "head_seconds": round(head_seconds, 1),
                      "head_share": round(head_seconds / ddnmf_seconds, 3), "refreshes": refreshes,
                      "refits": starts - 1}
    return {"ddnmf_images_per_s": round(ddnmf_rate, 1), "head_images_per_s": round(head_rate, 1),
            "head_step_cost": round(ddnmf_rate / head_rate, 3),
            "refresh_seconds_per_10k": round(refresh_per_image * 10_000, 3),
            "start_seconds": round(seconds["start"], 3), "start_examples": sample,
            "head_epochs": config.head_epochs, "runs": runs, "load": load_average()}
