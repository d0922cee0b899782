"""TensorBoard summaries of a DDNMF run: losses, scores, NMF parts, reconstructions, H, hyperparameters."""

import math

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

IMAGE_SIDE = 28


def image_grid(images, columns):
    """Tile flat square images [n, side*side] into one [1, rows*side, columns*side, 1] image, clipped to [0, 1]."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    count, side = len(images), math.isqrt(images.shape[-1])
    rows = math.ceil(count / columns)
    padded = np.zeros((rows * columns, side, side), np.float32)
    padded[:count] = images.reshape(count, side, side)
    grid = padded.reshape(rows, columns, side, side).transpose(0, 2, 1, 3).reshape(rows * side, columns * side)
    return grid[None, :, :, None]


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


def write_pictures(model, clean, noisy, step):
    """The decoded NMF parts, clean / noisy / reconstructed triplets and a histogram of H."""
    student = model.student
    square = math.isqrt(model.config.input_dim) ** 2 == model.config.input_dim
    if square:
        tf.summary.image("parts", image_grid(decoded_parts(student), columns=min(student.rank, 10)), step=step)
        reconstructed = student(noisy)[-1].numpy()
        triplets = np.stack([clean, noisy, reconstructed], axis=1).reshape(-1, clean.shape[-1])
        tf.summary.image("clean_noisy_reconstructed", image_grid(triplets, columns=3), step=step)
    tf.summary.histogram("representation_h", student.representation(clean), step=step)


def write_hparams(config, settings):
    """The run's hyperparameters for TensorBoard's HParams dashboard."""
    values = {**config.to_dict(), "dataset": settings.dataset, "train_split": settings.train_split}
    values["layer_sizes"] = ",".join(str(size) for size in config.layer_sizes)
    hparams_api.hparams(values)
