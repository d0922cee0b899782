"""Reproduce the paper's Tables 1-3 and Figures 2-3: `python -m train.reproduce --table 1|2|3`.

Table 1, MNIST: K-means and GMM on pixels, on NMF, on AE2's code, on NMF of
AE2's code and on DDNMF's H (plus AE1, and UMAP before each clusterer,
beyond the paper; see --clusterers), trained and scored
on the 10k test split, the only MNIST split available offline. Table 2, the
same on Fashion-MNIST, trained on the 60k train split and scored on the 10k
test split. Table 3: DDNMF against AE1 under masking noise at levels 10%-80%,
on both datasets. Every network trains through `ddnmf_tf.run.runner.run`.

Writes into --output-dir (default runs/reproduce/table<N>): table<N>.md and
table<N>.csv (our numbers beside the paper's, with the command, seed, epochs
and wall times), fig2_<dataset>.png (t-SNE of DDNMF's H and of AE1's code)
and parts_<dataset>.png (tables 1-2), fig3.png (table 3), data/ (the subsets,
when --train-images or --eval-images is given) and runs/<name>/, the run
directory of every network (checkpoints, TensorBoard, results.json).
--quick: 300 images, 1 epoch, layers 32,16: a smoke test of the whole table.
"""

import argparse
import csv
import dataclasses
import functools
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ddnmf_tf.baselines import load_run_model, nmf_representation, train_autoencoder
from ddnmf_tf.cli.common import CLIParser, add_clusterers_flag, comma_separated, run_cli
from ddnmf_tf.config import DDNMFConfig, derive_seed
from ddnmf_tf.data import load_arrays
from ddnmf_tf.data.idx import write_idx_split
from ddnmf_tf.evaluation import CLUSTERERS, evaluate_representation
from ddnmf_tf.inference import encode
from ddnmf_tf.reporting import figures
from ddnmf_tf.reporting.machine import describe_machine
from ddnmf_tf.run.directory import RESULTS_FILE, RunDirError, is_run_dir, load_config
from ddnmf_tf.run.runner import run
from ddnmf_tf.run.settings import RunSettings
from ddnmf_tf.training.step import DDNMFTrainer

PAPER = "Chen, Jin, Liu and Zhang (2021), Front. Neurorobot. 15:701194"
# Tables 1 and 2 of the paper: (ACC, NMI, ARI) on 10,000 images each.
PAPER_TABLES = {
    "mnist": {
        "K-means": (0.5548, 0.5189, 0.3878), "GMM": (0.5604, 0.5357, 0.4097),
        "NMF+K-means": (0.5156, 0.4273, 0.3053), "NMF+GMM": (0.5518, 0.4396, 0.3277),
        "AE2+K-means": (0.5885, 0.5252, 0.4067), "AE2+GMM": (0.6303, 0.5553, 0.4439),
        "AE2+NMF+K-means": (0.5325, 0.4935, 0.3749), "AE2+NMF+GMM": (0.5732, 0.4928, 0.3863),
        "DDNMF+K-means": (0.8115, 0.7015, 0.6489), "DDNMF+GMM": (0.7484, 0.6567, 0.5742),
    },
    "fashion_mnist": {
        "K-means": (0.4873, 0.5160, 0.3517), "GMM": (0.5226, 0.5138, 0.3538),
        "NMF+K-means": (0.5299, 0.5331, 0.3665), "NMF+GMM": (0.5422, 0.5063, 0.3340),
        "AE2+K-means": (0.5386, 0.5359, 0.3822), "AE2+GMM": (0.5854, 0.4986, 0.3644),
        "AE2+NMF+K-means": (0.5538, 0.5515, 0.3874), "AE2+NMF+GMM": (0.5637, 0.5225, 0.3637),
        "DDNMF+K-means": (0.6312, 0.5967, 0.4676), "DDNMF+GMM": (0.6547, 0.6065, 0.4740),
    },
}
NOISE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
# Table 3 of the paper: ACC at each masking level (its NMI and ARI rows are not restated in DESIGN.md).
PAPER_NOISE_ACC = {
    ("mnist", "DDNMF"): dict(zip(NOISE_LEVELS, (0.7381, 0.6653, 0.6927, 0.7840, 0.5831, 0.6528, 0.7406, 0.6726))),
    ("mnist", "AE1"): dict(zip(NOISE_LEVELS, (0.7622, 0.7138, 0.7026, 0.7223, 0.6967, 0.6790, 0.7059, 0.5704))),
    ("fashion_mnist", "DDNMF"): dict(zip(NOISE_LEVELS, (0.6036, 0.5913, 0.5712, 0.6312, 0.5769, 0.5260, 0.4848, 0.4959))),
    ("fashion_mnist", "AE1"): dict(zip(NOISE_LEVELS, (0.4727, 0.4655, 0.4689, 0.4838, 0.4705, 0.4709, 0.4580, 0.4797))),
}
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
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, columns)
        writer.writeheader()
        writer.writerows({name: _cell(row, name) for name in columns} for row in rows)


def markdown_table(columns, rows):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_cell(row, name) for name in columns) + " |" for row in rows]


def sweep_markdown(records):
    """Table 3 laid out as the paper's: one table per dataset and metric, noise levels across."""
    lines = []
    levels = sorted({record["level"] for record in records})
    for dataset in dict.fromkeys(record["dataset"] for record in records):
        for metric in ("acc", "nmi", "ari"):
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


parse_levels = comma_separated(float, "--levels", "numbers")


def build_parser():
    parser = CLIParser(prog="python -m train.reproduce", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=int, choices=(1, 2, 3), required=True, help="the paper's table to reproduce")
    parser.add_argument("--epochs", type=int,
                        help="epochs of every network (default: table 1: 30, table 2: 10, table 3: 5; --quick: 1)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_IMAGES} images, 1 epoch, layers {QUICK_LAYERS}, no XLA")
    parser.add_argument("--output-dir", help="where tables, figures and runs go (default: runs/reproduce/table<N>)")
    parser.add_argument("--seed", type=int, default=DDNMFConfig.seed,
                        help="seed of the networks, noise, NMF, clusterers, subsets and t-SNE")
    parser.add_argument("--data-dir",
                        help="folder of the IDX files of the table's dataset (tables 1 and 2; table 3 reads two "
                             "datasets: --mnist-dir and --fashion-dir)")
    parser.add_argument("--mnist-dir", help="folder of MNIST's t10k IDX files (default: the data layer's: "
                                            "$DDNMF_DATA_DIR, else prepared tfds data)")
    parser.add_argument("--fashion-dir",
                        help="folder of Fashion-MNIST's IDX files (default: the data layer's: $DDNMF_DATA_DIR, "
                             "else Debian's /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--train-images", type=int, help="train on a seeded random subset of this many images")
    parser.add_argument("--eval-images", type=int, help="score on a seeded random subset of this many images")
    parser.add_argument("--levels", type=parse_levels, default=NOISE_LEVELS,
                        help="table 3: masking noise levels, e.g. 0.1,0.5")
    parser.add_argument("--head-epochs", type=int, default=0,
                        help="also the clustering head (train.run --head-epochs) trained on from DDNMF's network "
                             "(tables 1-3: DDNMF+head) and AE1's (table 3: AE1+head) for this many epochs")
    parser.add_argument("--head-init-sample", type=int, default=DDNMFConfig().head_init_sample,
                        help="the training examples UMAP+GMM's first targets fit at most (train.run --head-init-sample)")
    add_clusterers_flag(parser, "how every representation is scored")
    return parser


def table_data_dirs(args):
    """The IDX folder of each dataset of the table: --data-dir names the one dataset of tables 1 and 2."""
    data_dirs = {"mnist": args.mnist_dir, "fashion_mnist": args.fashion_dir}
    if args.data_dir is not None:
        if args.table == 3:
            raise ValueError("--data-dir: table 3 reads MNIST and Fashion-MNIST; give --mnist-dir and --fashion-dir")
        (name,) = TABLE_DATASETS[args.table]
        if data_dirs[name] is not None and data_dirs[name] != args.data_dir:
            raise ValueError(f"--data-dir {args.data_dir} and --{name.split('_')[0]}-dir {data_dirs[name]} disagree")
        data_dirs[name] = args.data_dir
    return data_dirs


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    epochs = args.epochs or (1 if args.quick else DEFAULT_EPOCHS[args.table])
    small = dict(layer_sizes=QUICK_LAYERS, jit_compile=False) if args.quick else {}
    config = DDNMFConfig(epochs=epochs, seed=args.seed, head_epochs=args.head_epochs,
                         head_init_sample=args.head_init_sample, **small)
    train_limit = args.train_images or (QUICK_IMAGES if args.quick else None)
    eval_limit = args.eval_images or (QUICK_IMAGES if args.quick else None)
    output_dir = Path(args.output_dir or f"runs/reproduce/table{args.table}")
    output_dir.mkdir(parents=True, exist_ok=True)
    data_dirs = table_data_dirs(args)
    datasets = [load_data(name, data_dirs[name], train_limit, eval_limit, args.seed, output_dir, args.clusterers)
                for name in TABLE_DATASETS[args.table]]

    if args.table == 3:
        rows = [record for data in datasets for record in noise_sweep(data, config, args.levels, output_dir)]
        figures.save_noise_sweep(rows, output_dir / "fig3.png", PAPER_NOISE_ACC)
        columns, body = SWEEP_COLUMNS, sweep_markdown(rows) + ["", "Figure 3: fig3.png"]
    else:
        rows = comparison_table(datasets[0], config, output_dir)
        name = datasets[0].name
        columns = TABLE_COLUMNS
        body = ["", *markdown_table(columns, rows), "", f"Figure 2 (t-SNE): fig2_{name}.png; NMF parts: parts_{name}.png"]
    header = [
        f"command: `python -m train.reproduce {' '.join(argv)}`",
        f"seed {config.seed}; epochs of every network: {config.epochs}; layers {list(config.layer_sizes)}, "
        f"rank {config.rank}; the full configs are in runs/*/config.json",
        *[data.describe() for data in datasets],
        f"machine: {describe_machine()}; wall time {time.perf_counter() - started:.0f} s in all",
        "seconds: wall time of each method, from the start of its representation (training included) to its "
        "scores; for a run reused from an earlier invocation, its scoring only (its training time is in its "
        "results.json)",
    ]
    write_report(output_dir, args.table, header, body, columns, rows)
    print(f"table {args.table}: {output_dir / f'table{args.table}.md'}, {output_dir / f'table{args.table}.csv'}")


def cli():
    """main() on sys.argv, returning the exit status."""
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
