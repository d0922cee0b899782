"""The data layer: any dataset argument in, one `Examples` (values as stored, labels, shape) out.

`load_examples(dataset, split, ...)` is the one entry (ddnmf_tf.data.load).
A dataset is a name of `DATASETS` (MNIST, binarized MNIST, Fashion-MNIST:
from IDX files or tfds), `tfds:NAME[/CONFIG]` (any image dataset of the tfds
catalog), a `.npz`/`.npy` file, a folder of IDX files or of PNG/JPEG images,
or an array. One module per source: `idx`, `tfds`, `arrays`, `images`;
`cache` keeps decoded tfds and image data; `fingerprints` digests a set of
examples so that a resume checks its data; `preprocessing` scales stored
values into the model's [0, 1] inputs. Every problem a user can meet raises
`DataError`, a ValueError whose one-line message names the file or the
remedy.
"""

from ddnmf_tf.data.examples import Examples, sample_numbers
from ddnmf_tf.data.fingerprints import KNOWN_FINGERPRINTS, fingerprint, identify
from ddnmf_tf.data.load import has_splits, load_arrays, load_examples
from ddnmf_tf.data.names import (COLOR_MODES, DATA_DIR_ENV, DATASETS, DEBIAN_FASHION_MNIST_DIR, SOURCES, SPLITS,
                                 TFDS_PREFIX, UNLABELED, DataError, is_named)

__all__ = ["COLOR_MODES", "DATASETS", "DATA_DIR_ENV", "DEBIAN_FASHION_MNIST_DIR", "DataError", "Examples",
           "KNOWN_FINGERPRINTS", "SOURCES", "SPLITS", "TFDS_PREFIX", "UNLABELED", "fingerprint", "has_splits",
           "identify", "is_named", "load_arrays", "load_examples", "sample_numbers"]
