"""Score a trained run: `python -m train.evaluate --run-dir RUN`.

Loads the run's latest checkpoint (DDNMF, or AE1/AE2 from ddnmf_tf.baselines),
computes the representation of every image of a split (H for DDNMF, the code
for an autoencoder), clusters it and prints ACC (Hungarian matching), NMI and
ARI, as the paper's Tables 1-2. Clusterers, all seeded: on H, K-means
(n_init=10) and a spherical GMM, as the authors' script; on a UMAP
embedding of H (N2D's manifold step), K-means and the best of 5
full-covariance GMMs (ddnmf_tf.evaluation). The number of clusters defaults
to the number of classes. "served" scores the clusters the run serves (its
clustering head's, else the nearest of its K-means centres: the SavedModel's
`cluster`), without refitting anything. --parts also draws the NMF parts of
a DDNMF run: every unit of H decoded alone, as a PNG. --projector writes H
of a seeded sample of the scored examples, with the clusters the run
serves, their labels and images, for TensorBoard's Embedding Projector
(ddnmf_tf.reporting.projector) into the run directory.
"""

import argparse
import json
import sys
from pathlib import Path

from ddnmf_tf.baselines import load_run_model
from ddnmf_tf.cli.common import CLIParser, add_clusterers_flag, run_cli, whole_number
from ddnmf_tf.data import DATASETS, SOURCES, SPLITS, load_examples
from ddnmf_tf.data.preprocessing import load_preprocessing
from ddnmf_tf.evaluation import UMAP_NEIGHBORS, check_clusterable, check_umap_neighbors, scoring_note
from ddnmf_tf.inference import encode, load_served, score_features, score_served
from ddnmf_tf.model.networks import DDNMF
from ddnmf_tf.reporting.figures import save_parts
from ddnmf_tf.reporting.pictures import served_of, write_projector_of
from ddnmf_tf.reporting.projector import PROJECTOR_EXAMPLES
from ddnmf_tf.run.directory import load_config, load_settings
from ddnmf_tf.run.outputs import served_set


def build_parser():
    parser = CLIParser(prog="python -m train.evaluate", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="run directory written by train.run or a baseline")
    parser.add_argument("--dataset", metavar="DATASET",
                        help=f"examples to score: {', '.join(DATASETS)}, tfds:NAME[/CONFIG], a .npz/.npy file or a "
                             "folder of IDX files or images (default: what the run scored, from settings.json)")
    parser.add_argument("--eval-split", "--split", dest="eval_split", choices=SPLITS,
                        help="split to score on (default: the run's eval split)")
    parser.add_argument("--source", choices=SOURCES, help="where the data comes from (default: the run's)")
    parser.add_argument("--data-dir", help="folder of IDX .gz files (default: the run's, from settings.json; "
                                           "else $DDNMF_DATA_DIR, else Debian's folder)")
    add_clusterers_flag(parser)
    parser.add_argument("--eval-limit", type=whole_number("--eval-limit", 1), metavar="N",
                        help="score a seeded sample of N examples")
    parser.add_argument("--clusters", type=whole_number("--clusters", 1),
                        help="number of clusters (default: the run's)")
    parser.add_argument("--cluster-seed", "--seed", dest="seed", type=int,
                        help="seed of the clusterers (default: the run's --cluster-seed, else its seed)")
    parser.add_argument("--umap-neighbors", type=int, default=UMAP_NEIGHBORS,
                        help=f"neighbours of the UMAP clusterers' embedding (default: {UMAP_NEIGHBORS})")
    parser.add_argument("--json", help="also write the scores to this JSON file")
    parser.add_argument("--parts", help="also draw the decoded NMF parts of a DDNMF run into this PNG")
    parser.add_argument("--projector", action="store_true",
                        help="also write the scored examples' H, served clusters, labels and images for "
                             "TensorBoard's Embedding Projector into the run directory")
    parser.add_argument("--projector-examples", type=int, default=PROJECTOR_EXAMPLES, metavar="N",
                        help=f"the projector shows a seeded sample of N examples (default: {PROJECTOR_EXAMPLES})")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_umap_neighbors(args.umap_neighbors)
    if args.projector_examples < 1:
        raise ValueError(f"--projector-examples must be a whole number >= 1, got {args.projector_examples}")
    config = load_config(args.run_dir)
    chosen = served_set(args.run_dir)
    model = load_run_model(args.run_dir, chosen.path)
    recorded = load_settings(args.run_dir)
    dataset = args.dataset or recorded.get("eval_dataset") or recorded.get("dataset")
    if dataset is None:
        raise ValueError(f"{args.run_dir} records no dataset (no settings.json nor results.json): pass --dataset")
    split = args.eval_split or recorded.get("eval_split", "test")
    recorded_seed = recorded.get("cluster_seed")
    seed = args.seed if args.seed is not None else config.seed if recorded_seed is None else recorded_seed
    same_data = args.dataset in (None, recorded.get("dataset"))
    data_dir = args.data_dir or (recorded.get("data_dir") if same_data else None)
    source = args.source or (recorded.get("source", "auto") if same_data else "auto")
    examples = load_examples(dataset, split, source=source, data_dir=data_dir, seed=config.seed,
                             color_mode=recorded.get("color_mode"), image_size=recorded.get("image_size"))
    examples = examples.sample(args.eval_limit, seed)
    preprocessing = load_preprocessing(args.run_dir, config.input_dim)
    if examples.values.shape[1] != config.input_dim:
        raise ValueError(f"{examples.origin}: examples of {examples.values.shape[1]} features, the run's model takes "
                         f"{config.input_dim}")
    if not examples.labeled:
        raise ValueError(f"{examples.origin} has no labels to score against: train.encode gives its clusters")
    clusters = args.clusters or recorded.get("clusters")
    check_clusterable(len(examples), clusters or examples.num_classes, args.clusterers)  # before any encoding
    served = load_served(args.run_dir, model, chosen=chosen)
    if args.projector:
        served_of(args.run_dir, "--projector", served)
    features = encode(model, examples.values, preprocessing)
    metrics = score_features(features, examples.labels, seed, args.clusterers, args.umap_neighbors, clusters)
    outputs = served.predict(examples.values) if served.clusters is not None else None
    if outputs is not None:
        metrics = {"served": score_served(outputs["cluster"], examples), **metrics}
    images = examples.values
    labels = examples.labels
    report = {"run_dir": str(args.run_dir), "step": chosen.step, "dataset": dataset, "split": split,
              "images": len(images),
              "representation_width": int(features.shape[1]), "seed": seed, "umap_neighbors": args.umap_neighbors,
              "clusters": clusters or len(set(labels[labels >= 0].tolist())), "metrics": metrics}
    print(f"{dataset}/{split}: {len(images)} images, {report['clusters']} clusters, seed {seed}, run {args.run_dir} "
          f"at step {chosen.step}" + ("" if chosen.complete else " (no outputs yet: nothing served to score)"))
    note = scoring_note(len(images), report["clusters"])
    if note:
        print(note)
    for method, scores in metrics.items():
        print(f"{method:12s}" + "  ".join(f"{name.upper()} {value:.4f}" for name, value in scores.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.parts:
        draw_parts(model, args.parts, preprocessing.shape)
    if args.projector:
        write_projector_of(args.run_dir, examples, outputs, preprocessing, args.projector_examples, config.seed)


def draw_parts(model, path, shape):
    if not isinstance(model, DDNMF):
        raise ValueError("--parts needs a DDNMF run: an autoencoder has no NMF parts")
    save_parts(model.student, path, shape)
    print(f"parts figure: {path}")


def cli():
    """The `ddnmf-evaluate` console script: main() on sys.argv, returning the exit status."""
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
