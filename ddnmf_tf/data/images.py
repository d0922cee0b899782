"""Folders of PNG/JPEG images (one subfolder per class, or flat: unlabeled), through Keras's image utilities."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from ddnmf_tf.data.cache import cached
from ddnmf_tf.data.examples import Examples
from ddnmf_tf.data.names import UNLABELED, DataError

logger = logging.getLogger(__name__)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def shaped(images: np.ndarray, color_mode, image_size) -> np.ndarray:
    """uint8 images [n, h, w(, c)] in the asked colour mode and size (grayscale as [n, h, w])."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if color_mode == "rgb" and images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    elif color_mode == "grayscale" and images.shape[-1] == 3:
        images = np.round(tf.image.rgb_to_grayscale(images.astype(np.float32)).numpy()).astype(images.dtype)
    if image_size is not None and tuple(images.shape[1:3]) != tuple(image_size):
        resized = tf.image.resize(images.astype(np.float32), image_size).numpy()
        images = np.clip(np.round(resized), 0, 255).astype(np.uint8)
    return images[..., 0] if images.shape[-1] == 1 else images


def _image_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The image files of a folder and its class names: one subfolder per class, or none (a flat folder)."""
    def images_in(directory):
        return sorted(path for path in directory.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)

    classes = sorted(path.name for path in folder.iterdir() if path.is_dir() and images_in(path))
    if classes:
        return [file for name in classes for file in images_in(folder / name)], classes
    return images_in(folder), []


def load_image_folder(folder: Path, color_mode, image_size) -> Examples:
    """PNG/JPEG images through Keras's image utilities, decoded once into the uint8 cache."""
    files, classes = _image_files(folder)
    if not files:
        raise DataError(f"{folder}: no PNG or JPEG images in it or in its subfolders")
    sizes, modes = {}, set()
    for path in files:
        try:
            with Image.open(path) as image:
                sizes.setdefault(image.size, path)
                modes.add(image.mode)
        except OSError as error:
            raise DataError(f"{path}: not a readable image ({error})") from None
    if len(sizes) > 1 and image_size is None:
        (w1, h1), (w2, h2) = list(sizes)[:2]
        raise DataError(f"{folder}: images of different sizes ({h1}x{w1} in {sizes[w1, h1].name}, {h2}x{w2} in "
                        f"{sizes[w2, h2].name}): pass --image-size HxW to resize them")
    height, width = image_size or next(iter(sizes))[::-1]
    color_mode = color_mode or ("grayscale" if modes <= {"L", "1", "I;16", "I"} else "rgb")
    stamp = [(str(path.relative_to(folder)), path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    key = ("images", str(folder.resolve()), stamp, color_mode, (height, width))

    def decode():
        dataset = keras.utils.image_dataset_from_directory(
            str(folder), labels="inferred" if classes else None, label_mode="int" if classes else None,
            class_names=classes or None, color_mode=color_mode, image_size=(height, width), batch_size=256,
            shuffle=False, verbose=False)
        try:
            for batch in dataset:
                images, labels = batch if classes else (batch, None)
                images = np.clip(np.round(images.numpy()), 0, 255).astype(np.uint8)
                yield shaped(images, None, None), (labels.numpy() if classes else np.full(len(images), UNLABELED))
        except tf.errors.OpError as error:  # a file PIL opened but TensorFlow cannot decode (a truncated PNG)
            found = first_undecodable(files)
            path, reason = found if found else (folder, op_message(error))
            raise DataError(f"{path}: not a readable image ({reason})") from None

    values, labels, shape = cached(key, decode)
    logger.info("%s: %d images of %s, %d classes", folder, len(labels), shape, len(classes))
    return Examples(values, labels, shape, str(folder), np.array([str(path.relative_to(folder)) for path in files]))


def first_undecodable(files):
    """(path, TensorFlow's reason) of the first of `files` (PNG/JPEG paths) that does not decode, or None."""
    for path in files:
        try:
            tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
        except tf.errors.OpError as error:
            return path, op_message(error)
    return None


def op_message(error):
    """A TensorFlow op error's message in one line, without its function-node and op decorations."""
    text = re.sub(r"\{\{[^}]*\}\}", "", error.message)
    text = re.sub(r"\[\[[^\]]*\]\]|\[Op:[^\]]*\].*$", "", text, flags=re.DOTALL)
    return " ".join(text.split())
