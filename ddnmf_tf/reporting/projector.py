"""TensorBoard's Embedding Projector for a run: H of a seeded sample of its examples, their clusters and a sprite.

Written into the run directory, TensorBoard's log dir, so that
`tensorboard --logdir runs/` lists the embedding in its Projector tab:

    projector_config.pbtxt   the ProjectorConfig (tensorboard.plugins.projector): the tensor H and its files
    projector/h-N.*          H of the examples shown [n, rank]: the variable of a tf.train.Checkpoint whose
                             state is `checkpoint` beside the events (a TensorBoard already running notices a
                             new checkpoint, where it would not notice a new TSV)
    projector/metadata.tsv   a header, then each example's served cluster, its probability, its label (where
                             the examples have labels) and its name (its file in an image folder, else its number)
    projector/sprite.png     image data only: the examples as thumbnails of at most THUMBNAIL_LIMIT px a side,
                             ceil(sqrt(n)) to a row, within the projector's SPRITE_LIMIT px a side

Each file appears atomically and H last: a TensorBoard that is already
running reads the projector's files again when a new checkpoint of H
appears, so it then finds all of them.
"""

import io
import math
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins import projector

from ddnmf_tf.config import derive_seed
from ddnmf_tf.data import sample_numbers
from ddnmf_tf.files import write_atomic
from ddnmf_tf.reporting.summaries import image_grid, is_drawable, thumbnails

PROJECTOR_EXAMPLES = 5000  # examples shown by default
CONFIG_FILE = "projector_config.pbtxt"  # the name TensorBoard looks for in a log dir
VECTORS_CHECKPOINT = "projector/h"  # checkpoints of H in the run directory, their state file beside the events
METADATA_FILE = "projector/metadata.tsv"
SPRITE_FILE = "projector/sprite.png"
SPRITE_LIMIT = 8192  # pixels a side: the largest sprite the projector takes
THUMBNAIL_LIMIT = 64  # pixels a side
SPRITE_CHUNK = 256  # examples read and shrunk at a time
TENSOR_NAME = "H/.ATTRIBUTES/VARIABLE_VALUE"  # the name tf.train.Checkpoint(H=...) gives it


def write_projector(run_dir, examples, features, clusters, probabilities, preprocessing, count=PROJECTOR_EXAMPLES,
                    seed=0):
    """The projector's files for a sample of at most `count` of `examples` (drawn with `seed`); returns its size.

    `features` (H [n, rank]), `clusters` (int [n]) and `probabilities` (of
    each example's cluster, float [n]) belong to `examples`
    (ddnmf_tf.data.Examples, stored rows), which the run's `preprocessing`
    scales and shapes. Examples that are not images get no sprite.
    """
    chosen = sample_numbers(len(features), count, derive_seed(seed, "projector"))
    labels = examples.labels[chosen] if (examples.labels >= 0).any() else None
    shape = preprocessing.shape
    sprite = sprite_png(examples.values, chosen, shape, preprocessing.apply) if is_drawable(shape) else None
    write_files(run_dir, features[chosen], clusters[chosen], probabilities[chosen], labels,
                examples.example_names()[chosen], sprite)
    return len(chosen)


def write_files(run_dir, features, clusters, probabilities, labels, names, sprite=None):
    """The projector's files of n examples: H [n, rank], clusters [n], probabilities [n], labels [n] (negative:
    none) or None, names [n], and the sprite, (PNG bytes, (width, height) of one image) or None for none."""
    run_dir = Path(run_dir)
    write_atomic(run_dir / METADATA_FILE, metadata_tsv(clusters, probabilities, labels, names))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = TENSOR_NAME
    embedding.metadata_path = METADATA_FILE
    if sprite is not None:
        png, single_image_dim = sprite
        write_atomic(run_dir / SPRITE_FILE, png)
        embedding.sprite.image_path = SPRITE_FILE
        embedding.sprite.single_image_dim.extend(single_image_dim)
    else:
        (run_dir / SPRITE_FILE).unlink(missing_ok=True)
    write_atomic(run_dir / CONFIG_FILE, text_format.MessageToString(config))  # as projector.visualize_embeddings
    save_vectors(run_dir, features)


def save_vectors(run_dir, features):
    """H [n, rank] as the variable H of a checkpoint numbered one past the last, which alone is kept; returns its
    path. TensorBoard's projector reads the newest checkpoint of the run directory."""
    checkpoint = tf.train.Checkpoint(H=tf.Variable(np.asarray(features, np.float32), trainable=False))
    manager = tf.train.CheckpointManager(checkpoint, str(run_dir), max_to_keep=1, checkpoint_name=VECTORS_CHECKPOINT)
    latest = manager.latest_checkpoint
    return manager.save(checkpoint_number=int(latest.rsplit("-", 1)[1]) + 1 if latest else 1)


def metadata_tsv(clusters, probabilities, labels, names):
    """A header row (cluster, probability, label where there are labels, name), then one row per example."""
    columns = ["cluster", "probability"] + (["label"] if labels is not None else []) + ["name"]
    lines = ["\t".join(columns)]
    for number, (cluster, probability) in enumerate(zip(clusters, probabilities)):
        row = [str(int(cluster)), f"{float(probability):.4f}"]
        if labels is not None:
            row.append(str(int(labels[number])) if labels[number] >= 0 else "")
        row.append(" ".join(str(names[number]).split()))  # no tab or line break inside a field
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def thumbnail_side(count):
    """The largest side of the thumbnails of a sprite of `count` images: THUMBNAIL_LIMIT, less when
    ceil(sqrt(count)) of them in a row would pass SPRITE_LIMIT."""
    return min(THUMBNAIL_LIMIT, SPRITE_LIMIT // math.ceil(math.sqrt(count)))


def sprite_png(values, numbers, shape, scale):
    """(PNG bytes, (width, height) of one thumbnail) of the examples `numbers` of stored rows `values` [n,
    prod(shape)], scaled to [0, 1] by `scale` and shrunk SPRITE_CHUNK at a time, tiled row by row,
    ceil(sqrt(len(numbers))) to a row, in their own colours."""
    side = thumbnail_side(len(numbers))
    parts = []
    for start in range(0, len(numbers), SPRITE_CHUNK):
        small, small_shape = thumbnails(scale(np.asarray(values[numbers[start:start + SPRITE_CHUNK]])), shape, side)
        parts.append(np.round(small * 255).astype(np.uint8))
    grid = image_grid(np.concatenate(parts), math.ceil(math.sqrt(len(numbers))), small_shape)[0]
    return _png(grid[..., 0] if grid.shape[-1] == 1 else grid), (small_shape[1], small_shape[0])


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
