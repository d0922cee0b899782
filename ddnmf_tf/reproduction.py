"""The paper's Tables 1-3 reproduced: the data each table reads, the networks it trains (through the one run),
the rows it scores beside the paper's, and the reports it writes (train.reproduce is its command line)."""

import dataclasses
import functools
import json
import shutil
import time
from pathlib import Path

import numpy as np

from ddnmf_tf.baselines import load_run_model, nmf_representation, train_autoencoder
from ddnmf_tf.config import derive_seed
from ddnmf_tf.data import load_arrays
from ddnmf_tf.data.idx import write_idx_split
from ddnmf_tf.evaluation import CLUSTERERS, METRICS, evaluate_representation
from ddnmf_tf.inference import encode
from ddnmf_tf.reporting import figures, tables
from ddnmf_tf.reporting.paper import PAPER, PAPER_NOISE_ACC, PAPER_TABLES
from ddnmf_tf.run.directory import RESULTS_FILE, RunDirError, is_run_dir, load_config
from ddnmf_tf.run.runner import run
from ddnmf_tf.run.settings import RunSettings
from ddnmf_tf.training.step import DDNMFTrainer

TABLE_DATASETS = {1: ("mnist",), 2: ("fashion_mnist",), 3: ("mnist", "fashion_mnist")}


# (train split, eval split): offline, MNIST has its 10k test split only (see the shared data README).
DATASET_SPLITS = {"mnist": ("test", "test"), "fashion_mnist": ("train", "test")}


DEFAULT_EPOCHS = {1: 30, 2: 10, 3: 5}


QUICK_IMAGES = 300


QUICK_LAYERS = (32, 16)


CLUSTERER_NAMES = {"kmeans": "K-means", "gmm": "GMM", "umap_kmeans": "UMAP+K-means", "umap_gmm": "UMAP+GMM",
                   "head": "head"}


TABLE_COLUMNS = ("method", "acc", "nmi", "ari", "paper_acc", "paper_nmi", "paper_ari", "seconds")


SCORE_COLUMNS = {"acc", "nmi", "ari", "paper_acc", "paper_nmi", "paper_ari"}


SWEEP_COLUMNS = ("dataset", "model", "level", "clusterer", "acc", "nmi", "ari", "paper_acc", "seconds")


@dataclasses.dataclass(frozen=True)
class Data:
    """A dataset's images as the runs see them, and the RunSettings that make a run read the same images."""

    name: str
    train_images: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    settings: RunSettings

    def describe(self):
        return (f"{self.name}: trained on {len(self.train_images)} images of its {DATASET_SPLITS[self.name][0]} "
                f"split, scored on {len(self.eval_images)} of its {DATASET_SPLITS[self.name][1]} split")


def load_data(name, data_dir, train_limit, eval_limit, seed, output_dir, clusterers=CLUSTERERS):
    """The table's splits of `name`; a seeded random subset written as IDX files under output_dir/data when limited."""
    train_split, eval_split = DATASET_SPLITS[name]
    source = "idx" if data_dir else "auto"
    train_images, train_labels = load_arrays(name, train_split, source=source, data_dir=data_dir)
    eval_images, eval_labels = (
        (train_images, train_labels) if eval_split == train_split
        else load_arrays(name, eval_split, source=source, data_dir=data_dir)
    )
    settings = RunSettings(dataset=name, source=source, data_dir=data_dir, train_split=train_split,
                           eval_split=eval_split, quiet=True, clusterers=clusterers)
    if train_limit or eval_limit:
        train_images, train_labels = _subset(train_images, train_labels, train_limit, seed, train_split)
        eval_images, eval_labels = _subset(eval_images, eval_labels, eval_limit, seed, eval_split)
        folder = output_dir / "data" / name
        write_idx_split(folder, "train", _pixels(train_images), train_labels)
        write_idx_split(folder, "t10k", _pixels(eval_images), eval_labels)
        settings = dataclasses.replace(settings, source="idx", data_dir=str(folder), train_split="train",
                                       eval_split="test")
    return Data(name, train_images, eval_images, eval_labels, settings)


def _subset(images, labels, limit, seed, split):
    """The first `limit` images of a permutation seeded by (seed, split): a split gets the same subset every time."""
    if not limit or limit >= len(images):
        return images, labels
    chosen = np.sort(np.random.default_rng(derive_seed(seed, "subset", split)).permutation(len(images))[:limit])
    return images[chosen], labels[chosen]


def _pixels(images):
    """28x28 uint8 images of rows in [0, 1]."""
    return np.round(images * 255).astype(np.uint8).reshape(len(images), 28, 28)


def train_ddnmf(config, settings, log=print):
    """Train DDNMF through `runner.run`; returns (the trained model, what results.json holds)."""
    trainer = DDNMFTrainer(config)
    return trainer.model, run(config, settings, trainer=trainer, log=log)


def headed_scores(train, config, data, output_dir, name, log=print):
    """The clustering head's served scores (`--head-epochs`) on the network of runs/<name>: that run copied to
    runs/<name>-head and resumed by `train` through the head epochs, which trains what one run with the head from
    the start would."""
    trained, run_dir = output_dir / "runs" / name, output_dir / "runs" / f"{name}-head"
    if not is_run_dir(run_dir):
        shutil.copytree(trained, run_dir, ignore=shutil.ignore_patterns(RESULTS_FILE, "run.lock"))
    if (run_dir / RESULTS_FILE).is_file():
        log(f"reusing the finished run in {run_dir}")
    else:
        train(config, dataclasses.replace(run_settings(data, output_dir, f"{name}-head"), resume=True), log=log)
    return {"head": json.loads((run_dir / RESULTS_FILE).read_text())["metrics"]["served"]}


def run_settings(data, output_dir, name):
    """The settings of one network's run; the run scores itself with K-means only, the table scores it fully."""
    return dataclasses.replace(data.settings, run_dir=str(output_dir / "runs" / name), clusterers=("kmeans",))


def score(features, data, seed):
    """The scores of a representation under each of the table's clusterers."""
    return evaluate_representation(features, data.eval_labels, data.settings.clusterers, seed=seed)


def trained_model(train, config, settings, log=print):
    """A network trained by `train` (train_ddnmf or train_autoencoder) through runner.run.

    Re-invoking a command finishes it: a run directory holding a finished run
    (results.json) is reused, one holding only checkpoints is resumed.
    """
    run_dir = Path(settings.run_dir)
    resume = is_run_dir(run_dir)
    # AE2's saved config differs from the table's in its noise level only (it trains on clean images).
    if resume and dataclasses.replace(load_config(run_dir), noise_level=config.noise_level) != config:
        raise RunDirError(f"{run_dir} holds a run of another config (see its config.json): choose another --output-dir")
    if (run_dir / RESULTS_FILE).is_file():
        log(f"reusing the finished run in {run_dir}")
        return load_run_model(run_dir)
    return train(config, dataclasses.replace(settings, resume=resume), log=log)[0]


def method_rows(prefix, scores, started, paper):
    """One table row per clusterer: ours, the paper's, and the seconds since `started`."""
    seconds = round(time.perf_counter() - started, 1)
    rows = []
    for clusterer, metrics in scores.items():
        method = prefix + CLUSTERER_NAMES[clusterer]
        paper_scores = dict(zip(("paper_acc", "paper_nmi", "paper_ari"), paper.get(method, (None,) * 3)))
        rows.append({"method": method, **metrics, **paper_scores, "seconds": seconds})
    return rows


def comparison_table(data, config, output_dir, log=print):
    """Rows of Table 1 or 2 (plus AE1, and DDNMF+head with `config.head_epochs`, beyond the paper); draws Fig 2 and
    the NMF parts of the same runs."""
    paper, seed, rank = PAPER_TABLES[data.name], config.seed, config.rank
    headed, config = config, dataclasses.replace(config, head_epochs=0)
    started = time.perf_counter()
    rows = method_rows("", score(data.eval_images, data, seed), started, paper)
    started = time.perf_counter()
    pixels_nmf = nmf_representation(data.train_images, data.eval_images, rank, seed)
    rows += method_rows("NMF+", score(pixels_nmf, data, seed), started, paper)
    started = time.perf_counter()
    ae2 = trained_model(functools.partial(train_autoencoder, "ae2"), config, run_settings(data, output_dir, "ae2"), log)
    rows += method_rows("AE2+", score(encode(ae2, data.eval_images), data, seed), started, paper)
    codes_nmf = nmf_representation(encode(ae2, data.train_images), encode(ae2, data.eval_images), rank, seed)
    rows += method_rows("AE2+NMF+", score(codes_nmf, data, seed), started, paper)
    started = time.perf_counter()
    ddnmf = trained_model(train_ddnmf, config, run_settings(data, output_dir, "ddnmf"), log)
    rows += method_rows("DDNMF+", score(encode(ddnmf, data.eval_images), data, seed), started, paper)
    if headed.head_epochs:
        started = time.perf_counter()
        rows += method_rows("DDNMF+", headed_scores(train_ddnmf, headed, data, output_dir, "ddnmf", log), started,
                            paper)
    started = time.perf_counter()
    ae1 = trained_model(functools.partial(train_autoencoder, "ae1"), config, run_settings(data, output_dir, "ae1"), log)
    rows += method_rows("AE1+", score(encode(ae1, data.eval_images), data, seed), started, paper)

    panels = [(f"{title}, {data.name}", *figures.tsne_embedding(encode(model, data.eval_images), data.eval_labels,
                                                                  seed))
              for title, model in (("DDNMF H", ddnmf), ("AE1 code", ae1))]
    figures.save_tsne(panels, output_dir / f"fig2_{data.name}.png")
    figures.save_parts(ddnmf.student, output_dir / f"parts_{data.name}.png", title=f"DDNMF parts, {data.name}")
    return rows


def noise_sweep(data, config, levels, output_dir, log=print):
    """Records of Table 3 and Fig 3: DDNMF and AE1 trained under masking noise at each level, every clusterer
    (and, with `config.head_epochs`, the clustering head trained on from each network)."""
    trainers = {"DDNMF": train_ddnmf, "AE1": functools.partial(train_autoencoder, "ae1")}
    records = []
    for level in levels:
        headed = dataclasses.replace(config, noise_type="masking", noise_level=level)
        noisy_config = dataclasses.replace(headed, head_epochs=0)
        for model, train in trainers.items():
            started = time.perf_counter()
            name = f"{data.name}-{model.lower()}-noise{level:g}"
            settings = run_settings(data, output_dir, name)
            scores = score(encode(trained_model(train, noisy_config, settings, log), data.eval_images), data,
                           config.seed)
            if headed.head_epochs:
                scores.update(headed_scores(train, headed, data, output_dir, name, log))
            seconds = round(time.perf_counter() - started, 1)
            paper_acc = PAPER_NOISE_ACC[data.name, model].get(level)
            for clusterer, metrics in scores.items():
                records.append({"dataset": data.name, "model": model, "level": level, "clusterer": clusterer,
                                **metrics, "paper_acc": paper_acc, "seconds": seconds})
    return records


def score_text(value):
    """A score with 4 decimals; a missing one (the paper's NMI of Table 3) as an empty cell."""
    return "" if value is None else f"{value:.4f}"


def _cell(row, name):
    return score_text(row[name]) if name in SCORE_COLUMNS else str(row[name])


def write_csv(path, columns, rows):
    tables.write_csv(path, columns, ({name: _cell(row, name) for name in columns} for row in rows))


def markdown_table(columns, rows):
    return tables.markdown_lines(columns, [[_cell(row, name) for name in columns] for row in rows])


def sweep_markdown(records):
    """Table 3 laid out as the paper's: one table per dataset and metric, noise levels across."""
    lines = []
    levels = sorted({record["level"] for record in records})
    for dataset in dict.fromkeys(record["dataset"] for record in records):
        for metric in METRICS:
            rows = []
            for model in ("DDNMF", "AE1"):
                if metric == "acc":
                    paper = PAPER_NOISE_ACC[dataset, model]
                    rows.append({"row": f"{model} (paper)",
                                 **{f"{level:g}": score_text(paper.get(level)) for level in levels}})
                for clusterer in dict.fromkeys(record["clusterer"] for record in records):
                    name = CLUSTERER_NAMES[clusterer]
                    rows.append({"row": f"{model}+{name}", **{
                        f"{record['level']:g}": score_text(record[metric]) for record in records
                        if (record["dataset"], record["model"], record["clusterer"]) == (dataset, model, clusterer)}})
            lines += ["", f"{dataset}, {metric.upper()}:", ""]
            lines += markdown_table(["row"] + [f"{level:g}" for level in levels], rows)
    return lines


def write_report(output_dir, table, header, body_lines, columns, rows):
    """table<N>.md (header, then the table) and table<N>.csv."""
    write_csv(output_dir / f"table{table}.csv", columns, rows)
    text = [f"# Table {table}, reproduced (paper: {PAPER})", ""] + [f"- {line}" for line in header] + body_lines
    (output_dir / f"table{table}.md").write_text("\n".join(text) + "\n")
