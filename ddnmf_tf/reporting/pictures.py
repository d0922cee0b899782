"""What a run's clusters hold: a gallery of each cluster's most confident members and, for labeled data, a
confusion matrix of cluster against label, as PNGs and TensorBoard images; and the Embedding Projector.

At the end of a run (ddnmf_tf.run.runner), of the examples it scored:

    clusters.png    a row per cluster: its number, its size and its MEMBERS most confident members (image data)
    confusion.png   labeled data: the count of every cluster and label, the Hungarian match boxed
    projector*      TensorBoard's Embedding Projector (ddnmf_tf.reporting.projector)

Each cluster and its probability are what the run serves (the outputs of
`ddnmf_tf.inference.Served.predict`, the SavedModel's own function). Drawn with matplotlib's object API (no pyplot), in the data's
own shape and colours; examples that are not images get no gallery and no
sprite.
"""

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ddnmf_tf.evaluation import hungarian_matching
from ddnmf_tf.files import write_atomic
from ddnmf_tf.inference import load_served
from ddnmf_tf.reporting import projector, summaries

GALLERY_FILE = "clusters.png"
CONFUSION_FILE = "confusion.png"
MEMBERS = 12  # examples shown per cluster
DPI = 80
ANNOTATED_CELLS = 900  # a confusion matrix with more cells is drawn without its counts


def served_of(run_dir, flag, served=None):
    """What a run serves (`served`, default ddnmf_tf.inference.load_served's); ValueError naming `flag` when it
    serves no clusters."""
    served = served or load_served(run_dir)
    if served.clusters is None:
        raise ValueError(f"{flag}: {run_dir} serves no clusters yet (no outputs.json: the run has not reached its "
                         "end)")
    return served


def confidence(clusters, probabilities):
    """The probability of each example's own cluster, float32 [n], of clusters [n] and probabilities [n, K]."""
    return np.asarray(probabilities, np.float32)[np.arange(len(clusters)), clusters]


def not_images(shape):
    """Why examples of `shape` get no gallery and no sprite, or None when they are images."""
    if summaries.is_drawable(tuple(shape)):
        return None
    return f"no cluster gallery and no projector sprite: examples of shape {list(shape)} are not images"


def gallery_png(values, shape, clusters, probabilities, n_clusters, scale, labels=None, members=MEMBERS):
    """clusters.png as bytes: per cluster a row with its number and size (with labels, its most frequent label
    and that label's share) and its `members` most confident examples, the most confident first.

    `values` are the examples' stored rows [n, prod(shape)] (memory-mapped or
    not), `scale` turns rows into values in [0, 1] (Preprocessing.apply);
    `clusters` int [n], `probabilities` float [n], `labels` int [n] or None.
    """
    rows = [scale(np.asarray(values[np.sort(best)]))[np.argsort(np.argsort(best))] if len(best) else None
            for best in most_confident(clusters, probabilities, n_clusters, members)]
    canvas, cell_height, gap = _gallery_canvas(rows, shape, members)
    figure = Figure(figsize=(2 + 0.55 * members, 0.7 + 0.55 * n_clusters * (1 + gap / cell_height)), dpi=DPI,
                    layout="constrained")
    axes = figure.add_subplot()
    axes.imshow(canvas, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([(cell_height + gap) * row + cell_height / 2 for row in range(n_clusters)],
                    [_row_label(cluster, clusters, labels) for cluster in range(n_clusters)], fontsize=8)
    axes.tick_params(length=0)
    for side in axes.spines.values():
        side.set_visible(False)
    axes.set_title(f"{len(clusters):,} examples in {n_clusters} clusters: each row a cluster's {members} most "
                   "confident members, the most confident first", fontsize=9)
    return _png(figure)


def most_confident(clusters, probabilities, n_clusters, members=MEMBERS):
    """For each of `n_clusters` clusters, the numbers of its at most `members` examples of the highest
    probability, the highest first (ties in example order)."""
    chosen = []
    for cluster in range(n_clusters):
        numbers = np.flatnonzero(clusters == cluster)
        chosen.append(numbers[np.argsort(-probabilities[numbers], kind="stable")[:members]])
    return chosen


def _gallery_canvas(rows, shape, members):
    """(RGBA canvas [height, width, 4], a thumbnail's height, the gap between rows) of each row's images
    (thumbnails of at most projector.THUMBNAIL_LIMIT px a side; transparent where a row has fewer than `members`)."""
    height, width = summaries.thumbnail_shape(shape, projector.THUMBNAIL_LIMIT)[:2]
    gap = max(2, height // 6)
    canvas = np.zeros((len(rows) * (height + gap) - gap, members * (width + 1) - 1, 4), np.float32)
    for row, images in enumerate(rows):
        if images is None:
            continue
        small, small_shape = summaries.thumbnails(images, shape, projector.THUMBNAIL_LIMIT)
        small = small.reshape(-1, height, width, *(small_shape[2:] or (1,)))
        for column, image in enumerate(small):
            top, left = row * (height + gap), column * (width + 1)
            canvas[top:top + height, left:left + width, :3] = image[..., :3]  # a gray image fills all three
            canvas[top:top + height, left:left + width, 3] = image[..., 3] if image.shape[-1] == 4 else 1.0
    return canvas, height, gap


def _row_label(cluster, clusters, labels):
    members = clusters == cluster
    text = f"{cluster}: {int(members.sum()):,}"
    known = labels[members & (labels >= 0)] if labels is not None else np.zeros(0, np.int64)
    if len(known):
        counts = np.bincount(known)
        text += f"\nlabel {counts.argmax()} {counts.max() / len(known):.0%}"
    return text


def confusion_png(clusters, labels, n_clusters):
    """confusion.png as bytes: the count of each cluster (row) and label (column) of the labeled examples, shaded
    by the cluster's share, the Hungarian match (ddnmf_tf.evaluation) boxed, with its ACC in the title."""
    labeled = labels >= 0
    classes, counts, (class_rows, cluster_columns) = hungarian_matching(labels[labeled], clusters[labeled],
                                                                         n_clusters)
    table = counts.T  # [clusters, classes]
    shares = table / np.maximum(table.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(1.6 + 0.5 * len(classes), 1.2 + 0.4 * n_clusters), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    if table.size <= ANNOTATED_CELLS:
        for (row, column), count in np.ndenumerate(table):
            axes.text(column, row, str(count), ha="center", va="center", fontsize=7,
                      color="white" if shares[row, column] > 0.6 else "black")
    for class_row, cluster in zip(class_rows, cluster_columns):
        axes.add_patch(Rectangle((class_row - 0.5, cluster - 0.5), 1, 1, fill=False, edgecolor="tab:red",
                                 linewidth=2))
    axes.set_xticks(range(len(classes)), [str(label) for label in classes], fontsize=8)
    axes.set_yticks(range(n_clusters), [str(cluster) for cluster in range(n_clusters)], fontsize=8)
    axes.set_xlabel("label")
    axes.set_ylabel("cluster")
    accuracy = counts[class_rows, cluster_columns].sum() / labeled.sum()
    axes.set_title(f"{int(labeled.sum()):,} examples; boxed: the Hungarian match, ACC {accuracy:.4f}", fontsize=9)
    figure.colorbar(image, ax=axes, label="share of the cluster")
    return _png(figure)


def save_gallery(path, values, shape, clusters, probabilities, n_clusters, scale, labels=None):
    """Write `gallery_png` to `path`, atomically."""
    write_atomic(path, gallery_png(values, shape, clusters, probabilities, n_clusters, scale, labels))


def write_run_pictures(run_dir, writer, examples, outputs, n_clusters, preprocessing, step, projector_examples, seed,
                       log=print):
    """The projector (at most `projector_examples` examples, drawn with `seed`; 0: none), clusters.png and, for
    labeled examples, confusion.png of a run's scored `examples` (ddnmf_tf.data.Examples) and what the run
    serves for them (`outputs` of Served.predict, `n_clusters` clusters), with images of both at `step` through
    the summary `writer`; one line saying what was written."""
    run_dir = Path(run_dir)
    features, clusters = outputs["representation"], outputs["cluster"]
    probabilities = confidence(clusters, outputs["cluster_probabilities"])
    labels = examples.labels if (examples.labels >= 0).any() else None
    if not_images(preprocessing.shape):
        log(not_images(preprocessing.shape))
    written = [_projector(run_dir, examples, features, clusters, probabilities, preprocessing, projector_examples,
                          seed)] if projector_examples else []
    figures = {}
    if not not_images(preprocessing.shape):
        figures[GALLERY_FILE, "clusters"] = gallery_png(examples.values, preprocessing.shape, clusters, probabilities,
                                                        n_clusters, preprocessing.apply, labels)
    if labels is not None:
        figures[CONFUSION_FILE, "confusion"] = confusion_png(clusters, labels, n_clusters)
    with writer.as_default():
        for (name, tag), png in figures.items():
            write_atomic(run_dir / name, png)
            summaries.write_png(tag, png, step)
    log(f"pictures of the served clusters of {len(features)} examples: "
        + ", ".join([name for name, _ in figures] + written))


def write_projector_of(run_dir, examples, outputs, preprocessing, count, seed, log=print):
    """The projector of at most `count` of `examples` (drawn with `seed`) with what the run serves for them
    (`outputs` of Served.predict); one line saying what was written."""
    clusters = outputs["cluster"]
    if not_images(preprocessing.shape):
        log(not_images(preprocessing.shape))
    log(_projector(run_dir, examples, outputs["representation"], clusters,
                   confidence(clusters, outputs["cluster_probabilities"]), preprocessing, count, seed) + f" in {run_dir}")


def _projector(run_dir, examples, features, clusters, probabilities, preprocessing, count, seed):
    shown = projector.write_projector(run_dir, examples, features, clusters, probabilities, preprocessing, count,
                                      seed)
    return f"the Embedding Projector of {shown} examples ({projector.CONFIG_FILE})"


def _png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
