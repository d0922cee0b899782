"""Corruption of the student's input: x~ = x + eps (paper eq 2).

Every draw is stateless: the same images, seed and settings give the same
noisy images on any device, and resuming a run replays the same noise.
"""

import tensorflow as tf

from ddnmf_tf.config import NOISE_TYPES


def is_image_shape(shape):
    """Whether examples of `shape` are images `shift` can move: [h, w] or [h, w, c]."""
    return len(shape) in (2, 3)


def shift(rows, shape, pixels, seed):
    """`rows` [batch, features] of images of `shape` ([h, w] or [h, w, c]), each moved by its own whole number of
    pixels in [-pixels, pixels] along each axis (vacated pixels 0), drawn from the stateless `seed` (shape [2])."""
    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    batch = tf.shape(rows)[0]
    moves = tf.random.stateless_uniform([batch, 2], tf.cast(seed, tf.int64), -pixels, pixels + 1, tf.int32)
    moves = tf.cast(moves, tf.float32)
    ones, zeros = tf.ones([batch]), tf.zeros([batch])
    # output (x, y) reads input (x + dx, y + dy): a whole-pixel translation, exact with nearest sampling.
    transforms = tf.stack([ones, zeros, moves[:, 0], zeros, ones, moves[:, 1], zeros, zeros], axis=1)
    images = tf.reshape(rows, [batch, height, width, channels])
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[height, width], fill_value=0.0,
        interpolation="NEAREST", fill_mode="CONSTANT")
    return tf.reshape(moved, tf.shape(rows))


def corrupt(images, noise_type, level, seed, rescale=False):
    """Noisy copy of `images` (values in [0, 1]) drawn from the stateless `seed` (shape [2]).

    - masking: each pixel is zeroed with probability `level`; with `rescale`
      the kept pixels are divided by 1 - level (as the authors' script does).
    - gaussian: adds N(0, level^2) and clips to [0, 1].
    - salt_and_pepper: a fraction `level` of pixels is set to 0 or 1, half each.
    """
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"unknown noise_type {noise_type!r}; choose one of {', '.join(NOISE_TYPES)}")
    images = tf.convert_to_tensor(images, tf.float32)
    if level == 0:
        return images
    seed = tf.cast(seed, tf.int64)
    shape = tf.shape(images)
    if noise_type == "gaussian":
        return tf.clip_by_value(images + level * tf.random.stateless_normal(shape, seed), 0.0, 1.0)
    draws = tf.random.stateless_uniform(shape, seed)
    if noise_type == "masking":
        kept = tf.where(draws >= level, images, 0.0)
        return kept / (1.0 - level) if rescale else kept
    salted = tf.where(draws < level / 2, 1.0, images)
    return tf.where((draws >= level / 2) & (draws < level), 0.0, salted)
