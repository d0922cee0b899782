"""What every benchmark section shares: the sizes of a full or quick run, FLOP counts, random inputs."""

import numpy as np
import tensorflow as tf

from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.model.networks import decoder_sizes


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


def random_images(count, width, seed):
    return np.random.default_rng(seed).random((count, width), dtype=np.float32)


def random_batches(batch, width, count=2, seed=0):
    """`count` (clean, noisy) pairs of random images; masking noise 0.1 like the default config."""
    pairs = []
    for i in range(count):
        clean = random_images(batch, width, seed + i)
        noisy = np.where(np.random.default_rng(seed + 100 + i).random(clean.shape) >= 0.1, clean, 0.0)
        pairs.append((tf.constant(clean), tf.constant(noisy.astype(np.float32))))
    return pairs
