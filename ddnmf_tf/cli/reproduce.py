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
import sys
import time
from pathlib import Path

from ddnmf_tf.cli.common import CLIParser, add_clusterers_flag, comma_separated, run_cli
from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.reporting import figures
from ddnmf_tf.reporting.machine import describe_machine
from ddnmf_tf.reporting.paper import NOISE_LEVELS, PAPER_NOISE_ACC
from ddnmf_tf.reproduction import (DEFAULT_EPOCHS, QUICK_IMAGES, QUICK_LAYERS, SWEEP_COLUMNS, TABLE_COLUMNS,
                                   TABLE_DATASETS, comparison_table, load_data, markdown_table, noise_sweep,
                                   sweep_markdown, write_report)

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
                        help="seed of the networks, noise, NMF, clusterers, subsets and t-SNE (default: 0)")
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
