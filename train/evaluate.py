"""Score a trained run: `python -m train.evaluate --run-dir RUN`.

Loads the run's latest checkpoint (DDNMF, or AE1/AE2 from ddnmf_tf.baselines),
computes the representation of every image of a split (H for DDNMF, the code
for an autoencoder), clusters it and prints ACC (Hungarian matching), NMI and
ARI, as the paper's Tables 1-2. Clusterers, all seeded: on H, K-means
(n_init=10) and a spherical GMM, as the authors' script; on a UMAP
embedding of H (N2D's manifold step), K-means and the best of 5
full-covariance GMMs (ddnmf_tf.evaluation). The number of clusters defaults
to the number of classes. --parts also draws the NMF parts of a DDNMF run:
every unit of H decoded alone, as a PNG.
"""

import argparse
import json
import sys
from pathlib import Path

from ddnmf_tf.baselines import load_run_model
from ddnmf_tf.checkpoints import load_config, load_settings
from ddnmf_tf.cli import CLIParser, add_clusterers_flag, run_cli
from ddnmf_tf.data import DATASETS, SOURCES, SPLITS, load_arrays
from ddnmf_tf.evaluation import UMAP_NEIGHBORS, check_umap_neighbors, evaluate_representation
from ddnmf_tf.figures import save_parts
from ddnmf_tf.networks import DDNMF
from ddnmf_tf.runner import encode


def build_parser():
    parser = CLIParser(prog="python -m train.evaluate", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="run directory written by train.run or a baseline")
    parser.add_argument("--dataset", choices=DATASETS, help="dataset to score on (default: the run's, from settings.json)")
    parser.add_argument("--eval-split", "--split", dest="eval_split", choices=SPLITS,
                        help="split to score on (default: the run's eval split)")
    parser.add_argument("--source", choices=SOURCES, help="where the data comes from (default: the run's)")
    parser.add_argument("--data-dir", help="folder of IDX .gz files (default: the run's, from settings.json; "
                                           "else $DDNMF_DATA_DIR, else Debian's folder)")
    add_clusterers_flag(parser)
    parser.add_argument("--clusters", type=int, help="number of clusters (default: the number of classes)")
    parser.add_argument("--seed", type=int, help="seed of the clusterers (default: the run's seed)")
    parser.add_argument("--umap-neighbors", type=int, default=UMAP_NEIGHBORS,
                        help=f"neighbours of the UMAP clusterers' embedding (default: {UMAP_NEIGHBORS})")
    parser.add_argument("--json", help="also write the scores to this JSON file")
    parser.add_argument("--parts", help="also draw the decoded NMF parts of a DDNMF run into this PNG")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_umap_neighbors(args.umap_neighbors)
    config = load_config(args.run_dir)
    model = load_run_model(args.run_dir)
    recorded = load_settings(args.run_dir)
    dataset = args.dataset or recorded.get("dataset")
    if dataset is None:
        raise ValueError(f"{args.run_dir} records no dataset (no settings.json nor results.json): pass --dataset")
    split = args.eval_split or recorded.get("eval_split", "test")
    seed = config.seed if args.seed is None else args.seed
    same_data = args.dataset in (None, recorded.get("dataset"))
    data_dir = args.data_dir or (recorded.get("data_dir") if same_data else None)
    source = args.source or (recorded.get("source", "auto") if same_data else "auto")
    images, labels = load_arrays(dataset, split, source=source, data_dir=data_dir, seed=config.seed)
    features = encode(model, images)
    metrics = evaluate_representation(features, labels, args.clusterers, n_clusters=args.clusters, seed=seed,
                                      umap_neighbors=args.umap_neighbors)
    report = {"run_dir": str(args.run_dir), "dataset": dataset, "split": split, "images": len(images),
              "representation_width": int(features.shape[1]), "seed": seed, "umap_neighbors": args.umap_neighbors,
              "clusters": args.clusters or len(set(labels[labels >= 0].tolist())), "metrics": metrics}
    print(f"{dataset}/{split}: {len(images)} images, {report['clusters']} clusters, seed {seed}, run {args.run_dir}")
    for method, scores in metrics.items():
        print(f"{method:12s}" + "  ".join(f"{name.upper()} {value:.4f}" for name, value in scores.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.parts:
        draw_parts(model, args.parts)


def draw_parts(model, path):
    if not isinstance(model, DDNMF):
        raise ValueError("--parts needs a DDNMF run: an autoencoder has no NMF parts")
    save_parts(model.student, path)
    print(f"parts figure: {path}")


def cli():
    """The `ddnmf-evaluate` console script: main() on sys.argv, returning the exit status."""
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
