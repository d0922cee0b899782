"""TensorFlow Datasets: a named dataset or any image dataset of the tfds catalog, decoded once into the cache.

Prepared data in the tfds data dir (`TFDS_DATA_DIR`, default
`~/tensorflow_datasets`) is used as is; before a download the download host is
probed with a short socket connect, so that a machine without network fails in
seconds, with a message listing the other ways to get the data.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import numpy as np

from ddnmf_tf.data.cache import cached
from ddnmf_tf.data.examples import Examples
from ddnmf_tf.data.images import shaped
from ddnmf_tf.data.names import DATA_DIR_ENV, DATASETS, DEBIAN_FASHION_MNIST_DIR, UNLABELED, DataError

logger = logging.getLogger(__name__)


NETWORK_PROBE_TIMEOUT_S = 2.0


# Host and port tfds downloads each dataset from.
_DOWNLOAD_HOSTS = {
    "mnist": ("storage.googleapis.com", 443),
    "binarized_mnist": ("www.cs.toronto.edu", 80),
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
}


_TFDS_HOST = ("storage.googleapis.com", 443)  # tfds's own copies of catalogue datasets


_TFDS_SPLITS = {"train": "train", "test": "test", "all": "train+test"}


_TFDS_READ_BATCH = 10_000  # examples per batch when reading a tfds split into memory


def tfds_builder(name: str):
    import tensorflow_datasets as tfds  # slow import: only when tfds is needed

    return tfds.builder(name, data_dir=os.environ.get("TFDS_DATA_DIR"))


def tfds_prepared(builder) -> bool:
    # is_prepared() logs a warning for a folder that does not exist: skip it then.
    return builder.data_path.is_dir() and builder.is_prepared()


def load_tfds(name: str, split: str, color_mode=None, image_size=None) -> Examples:
    """A split of a tfds image dataset (NAME or NAME/CONFIG), preparing it when needed; decoded once into the cache.

    The image feature is ``image``; the label, when the dataset has one,
    ``label`` (or the dataset's supervised label).
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds_builder(name)
    except Exception as error:  # tfds's DatasetNotFoundError and its kin: a bad name
        raise DataError(f"tfds:{name}: {' '.join(str(error).split())[:300]}") from None
    if not tfds_prepared(builder):
        _download_tfds(builder, name)
    keys = builder.info.supervised_keys or ("image", "label")
    image_key, label_key = keys[0], keys[1] if keys[1] in builder.info.features else None
    if image_key not in builder.info.features:
        raise DataError(f"tfds:{name} has no image feature (features: {', '.join(builder.info.features)})")
    tfds_split = _TFDS_SPLITS.get(split, split)
    key = ("tfds", name, str(builder.info.version), tfds_split, color_mode, image_size)

    def decode():
        def examples():
            for batch in tfds.as_numpy(builder.as_dataset(split=tfds_split, batch_size=_TFDS_READ_BATCH)):
                images = shaped(batch[image_key], color_mode, image_size)
                labels = batch[label_key] if label_key else np.full(len(images), UNLABELED)
                yield images, labels
        return examples()

    values, labels, shape = cached(key, decode)
    if name == "binarized_mnist":
        values = np.asarray(values, np.float32)  # 0/1 already: no x/255
    logger.info("%s/%s: %d examples from tfds in %s", name, split, len(labels), builder.data_dir)
    return Examples(values, labels, shape, f"tfds:{name} ({split} split)")


def _download_tfds(builder, name: str) -> None:
    host, port = _DOWNLOAD_HOSTS.get(name, _TFDS_HOST)
    if not _reachable(host, port):
        raise DataError(_no_source_message(name, host))
    logger.info("%s: downloading with tfds into %s", name, builder.data_dir)
    try:
        builder.download_and_prepare()
    except Exception as error:  # any tfds failure here means the data is unavailable
        raise DataError(f"tfds could not download {name}: {error}") from error


def _reachable(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host`` opens within the probe timeout.

    The probe runs in a daemon thread so that a slow DNS lookup cannot hold
    the caller past the timeout either.
    """
    outcome = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=NETWORK_PROBE_TIMEOUT_S).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(NETWORK_PROBE_TIMEOUT_S)
    return outcome == [True]


def _no_source_message(name: str, host: str) -> str:
    if name not in DATASETS:
        return (f"no data for tfds:{name}: it is not prepared in the tfds data dir and {host} is unreachable. "
                f"Prepare it on a networked machine (tfds build {name}) and copy it into the tfds data dir "
                "(TFDS_DATA_DIR, default ~/tensorflow_datasets)")
    ways = [
        f"pass --data-dir (data_dir=) or set {DATA_DIR_ENV} to a folder of the "
        "IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)"
        + (" of MNIST" if name == "binarized_mnist" else ""),
    ]
    if name == "fashion_mnist":
        ways.append(f"apt-get install dataset-fashion-mnist (files in {DEBIAN_FASHION_MNIST_DIR})")
    ways.append(
        f"prepare the tfds dataset on a networked machine (tfds build {name}) and copy it "
        "into the tfds data dir (TFDS_DATA_DIR, default ~/tensorflow_datasets)"
    )
    numbered = "; ".join(f"({number}) {way}" for number, way in enumerate(ways, 1))
    return f"no data for {name}: no local copy and {host} is unreachable. Get it: {numbered}"
