"""PNG figures: the paper's Fig 2 (t-SNE of representations) and Fig 3 (scores against noise), and the NMF parts.

Drawn with matplotlib's object API (`Figure`, Agg canvas): no pyplot, no
display, no global backend switch.
"""

import math

import numpy as np
from matplotlib.figure import Figure
from sklearn.manifold import TSNE

from ddnmf_tf.config import derive_seed
from ddnmf_tf.evaluation import METRICS
from ddnmf_tf.reporting.summaries import decoded_parts, image_grid, is_drawable

TSNE_POINTS = 2000
TSNE_PERPLEXITY = 30.0
DPI = 80


def tsne_embedding(features, labels, seed, points=TSNE_POINTS):
    """2-D t-SNE (sklearn, seeded) of a seeded random subsample of `points` rows; returns (embedding, labels)."""
    rng = np.random.default_rng(derive_seed(seed, "tsne"))
    chosen = np.sort(rng.permutation(len(features))[:points])
    perplexity = min(TSNE_PERPLEXITY, (len(chosen) - 1) / 3)
    embedding = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features[chosen])
    return embedding, np.asarray(labels)[chosen]


def save_tsne(panels, path):
    """Fig 2: one scatter per (title, embedding, labels), coloured by true label (tab10 up to 10 classes,
    tab20 up to 20, a continuous map beyond)."""
    classes = int(max(np.max(labels) for _, _, labels in panels)) + 1
    cmap = "tab10" if classes <= 10 else "tab20" if classes <= 20 else "turbo"
    figure = Figure(figsize=(5 * len(panels) + 1, 5), dpi=DPI, layout="constrained")
    for number, (title, embedding, labels) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), number)
        points = axes.scatter(embedding[:, 0], embedding[:, 1], c=labels, cmap=cmap, s=3, vmin=-0.5,
                              vmax=max(classes, 10) - 0.5)
        axes.set_title(title)
        axes.set_xticks([])
        axes.set_yticks([])
    ticks = range(0, max(classes, 10), max(1, classes // 20 + 1))
    figure.colorbar(points, ax=figure.axes, ticks=ticks, label="label")
    figure.savefig(path)


CLUSTERER_LINESTYLES = {"kmeans": "-", "gmm": "--", "umap_kmeans": "-.", "umap_gmm": (0, (6, 2, 1, 2, 1, 2)),
                        "head": ":"}


def save_noise_sweep(records, path, paper_acc=None):
    """Fig 3: ACC, NMI and ARI against the noise level, one row per dataset, one line per (model, clusterer).

    `records` are dicts with dataset, model, clusterer, level and the three
    metrics; `paper_acc` maps (dataset, model) to the paper's ACC per level.
    """
    datasets = list(dict.fromkeys(record["dataset"] for record in records))
    figure = Figure(figsize=(13, 3.8 * len(datasets)), dpi=DPI, layout="constrained")
    for row, dataset in enumerate(datasets):
        lines = {}
        for record in records:
            if record["dataset"] == dataset:
                lines.setdefault((record["model"], record["clusterer"]), []).append(record)
        for column, metric in enumerate(METRICS):
            axes = figure.add_subplot(len(datasets), len(METRICS), row * len(METRICS) + column + 1)
            for (model, clusterer), points in lines.items():
                points = sorted(points, key=lambda record: record["level"])
                axes.plot([p["level"] for p in points], [p[metric] for p in points], marker="o",
                          color=_model_color(model), linestyle=CLUSTERER_LINESTYLES[clusterer],
                          label=f"{model}+{clusterer}")
            for (paper_dataset, model), values in (paper_acc or {}).items():
                if metric == "acc" and paper_dataset == dataset:
                    known = [(level, values[level]) for level in sorted({p["level"] for p in records})
                             if level in values]
                    axes.plot(*zip(*known), marker="x", linestyle=":", color=_model_color(model),
                              label=f"{model} (paper)")
            axes.set_title(f"{dataset}: {metric.upper()}")
            axes.set_xlabel("masking noise level")
            axes.grid(alpha=0.3)
            if metric == "acc":
                axes.legend(fontsize=7)
    figure.savefig(path)


def _model_color(model):
    return {"DDNMF": "tab:blue", "AE1": "tab:red"}.get(model, "tab:grey")


def save_parts(student, path, shape=(28, 28), title="NMF parts: each unit of H decoded alone, scaled to its maximum"):
    """Each unit of H set alone and decoded by the student (`summaries.decoded_parts`), each scaled to its maximum,
    drawn as images of `shape` ([h, w] or [h, w, channels]); a vector is drawn as a [1, features] strip."""
    parts = decoded_parts(student)
    parts = parts / np.maximum(parts.max(axis=1, keepdims=True), 1e-12)
    columns = min(len(parts), 10)
    shape = tuple(shape) if is_drawable(tuple(shape)) else (1, parts.shape[1])
    grid = image_grid(parts, columns, shape)[0]
    grid = grid[:, :, 0] if grid.shape[-1] == 1 else grid
    rows = math.ceil(len(parts) / columns)
    figure = Figure(figsize=(1.2 * columns, 1.2 * rows + 0.5), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.imshow(grid, cmap="gray", vmin=0, vmax=1)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, fontsize=9)
    figure.savefig(path)
