"""TensorBoard summaries of a DDNMF run: losses, scores, NMF parts, reconstructions, H, figures, hyperparameters."""

import math

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorboard.plugins.hparams import api as hparams_api


def image_grid(images, columns, shape):
    """Tile flat images [n, prod(shape)] of `shape` ([h, w] or [h, w, c]) into one [1, H, W, c] image: uint8
    images as they are, any others clipped to [0, 1] (float32)."""
    height, width, channels = (*shape[:2], shape[2] if len(shape) == 3 else 1)
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.clip(images.astype(np.float32), 0.0, 1.0)
    images = images.reshape(-1, height, width, channels)
    count = len(images)
    rows = math.ceil(count / columns)
    padded = np.zeros((rows * columns, height, width, channels), images.dtype)
    padded[:count] = images
    grid = padded.reshape(rows, columns, height, width, channels).transpose(0, 2, 1, 3, 4)
    return grid.reshape(1, rows * height, columns * width, channels)


def thumbnail_shape(shape, side):
    """The shape of images of `shape` shrunk to at most `side` pixels a side, the aspect kept (never enlarged)."""
    height, width = shape[:2]
    factor = min(1.0, side / max(height, width))
    return (max(1, round(height * factor)), max(1, round(width * factor)), *shape[2:])


def thumbnails(images, shape, side):
    """(images, shape) of flat images [n, prod(shape)] clipped to [0, 1] and shrunk to `thumbnail_shape(shape, side)`
    (Lanczos); images already that small are only clipped."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    small_shape = thumbnail_shape(shape, side)
    if small_shape == tuple(shape):
        return images, small_shape
    pixels = np.round(images * 255).astype(np.uint8).reshape(-1, *shape)
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    size = (small_shape[1], small_shape[0])
    small = np.stack([np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)) for image in pixels])
    return small.reshape(len(small), -1).astype(np.float32) / 255.0, small_shape


def is_drawable(shape):
    """Whether examples of `shape` are images: [h, w], or [h, w, c] with 1, 3 or 4 channels."""
    return len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))


def decoded_parts(student):
    """Each unit of H set alone (one-hot H) and decoded by the student: the parts NMF learned, [r, input_dim]."""
    return student.decode(tf.eye(student.rank)).numpy()


def write_losses(terms, step, prefix="loss"):
    """One scalar per loss term: loss/sym, loss/ap, loss/nc, loss/rec, loss/total, loss/ap/<layer>."""
    for name, value in terms.items():
        tf.summary.scalar(f"{prefix}/{name}", value, step=step)


def write_learning_rate(rate, epoch):
    """learning_rate: the optimizer's rate during `epoch` (1-based, as epoch_loss)."""
    tf.summary.scalar("learning_rate", rate, step=epoch)


def write_scores(scores, step):
    """eval/<clusterer>/<metric> for every clusterer and metric."""
    for clusterer, metrics in scores.items():
        for metric, value in metrics.items():
            tf.summary.scalar(f"eval/{clusterer}/{metric}", value, step=step)


def write_pictures(model, clean, noisy, step, shape):
    """The decoded NMF parts, clean / noisy / reconstructed triplets (for image data, in its `shape` and
    colours) and a histogram of H."""
    student = model.student
    if is_drawable(shape):
        tf.summary.image("parts", image_grid(decoded_parts(student), min(student.rank, 10), shape), step=step)
        reconstructed = student(noisy)[-1].numpy()
        triplets = np.stack([clean, noisy, reconstructed], axis=1).reshape(-1, clean.shape[-1])
        tf.summary.image("clean_noisy_reconstructed", image_grid(triplets, 3, shape), step=step)
    tf.summary.histogram("representation_h", student.representation(clean), step=step)


def write_png(tag, png, step):
    """A PNG (bytes, e.g. a figure written beside the events) as the image `tag`."""
    tf.summary.image(tag, tf.image.decode_png(png)[tf.newaxis], step=step)


def write_hparams(config, settings):
    """The run's hyperparameters for TensorBoard's HParams dashboard."""
    values = {**config.to_dict(), "dataset": settings.dataset, "train_split": settings.train_split}
    for name in ("layer_sizes", "head_layers"):
        values[name] = ",".join(str(size) for size in getattr(config, name))
    hparams_api.hparams(values)
