"""The decoded-data cache: tfds splits and image folders decoded once into uint8 files read back memory-mapped."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from ddnmf_tf.data.names import DataError

CACHE_DIR_ENV = "DDNMF_CACHE_DIR"
"""Where decoded tfds and image-folder data is cached (default ``~/.cache/ddnmf_tf``)."""


def _cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "ddnmf_tf")


def _write_cache(staging: Path, key, decode) -> None:
    """Write `decode()`'s batches into the staging folder of the cache (see `cached`)."""
    labels, shape = [], None
    with open(staging / "values.u8", "wb") as stream:
        for images, batch_labels in decode():
            images = np.ascontiguousarray(images, np.uint8)
            if shape is None:
                shape = images.shape[1:]
            stream.write(images.tobytes())
            labels.append(np.asarray(batch_labels, np.int64))
    if shape is None:
        raise DataError(f"{key[1]}: no examples")
    np.save(staging / "labels.npy", np.concatenate(labels))
    (staging / "meta.json").write_text(json.dumps({"shape": list(shape), "key": key}, default=str))


def cached(key, decode) -> tuple[np.ndarray, np.ndarray, tuple]:
    """uint8 values [n, features] (memory-mapped), labels and example shape of decoded data, decoded once.

    `decode()` yields (images [k, ...], labels [k]) batches; they are
    appended to `<cache>/<hash of key>/values.u8` as they come (so data larger
    than memory never sits in memory), the folder is renamed into place when
    complete, and the values are read back as a read-only memory map.
    """
    folder = _cache_dir() / hashlib.blake2b(json.dumps(key, default=str).encode(), digest_size=12).hexdigest()
    if not (folder / "meta.json").is_file():
        staging = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        staging.mkdir(parents=True, exist_ok=True)
        try:
            _write_cache(staging, key, decode)
            os.rename(staging, folder)
        except OSError:  # another process cached the same data meanwhile
            if not (folder / "meta.json").is_file():
                raise
        finally:  # a failed read (a bad image, a full disk, Ctrl-C) leaves no staging folder
            shutil.rmtree(staging, ignore_errors=True)
    shape = tuple(json.loads((folder / "meta.json").read_text())["shape"])
    labels = np.load(folder / "labels.npy")
    values = np.memmap(folder / "values.u8", np.uint8, "r", shape=(len(labels), math.prod(shape)))
    return values, labels, shape
