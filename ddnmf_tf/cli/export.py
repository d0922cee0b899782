"""Export a trained run for TensorFlow Serving: `python -m export.run --run-dir RUN --export-dir models/ddnmf`.

Writes the SavedModel of the run's outputs (the weights and clusters of the
step they belong to: ddnmf_tf.run.outputs) as `<export-dir>/<N>/` (N: one more
than the highest version present, 1 when none), says which step, and prints
its path; docs/serving.md says how to serve it.
"""

import sys
from pathlib import Path

from ddnmf_tf.cli.common import CLIParser, run_cli
from ddnmf_tf.run.checkpoints import load_model
from ddnmf_tf.run.outputs import served_set
from ddnmf_tf.serving import ExportError, export_run


def build_parser():
    """The command line of `python -m export.run`."""
    parser = CLIParser(prog="python -m export.run", description=__doc__)
    parser.add_argument("--run-dir", required=True, type=Path, help="run directory written by train.run")
    parser.add_argument("--export-dir", required=True, type=Path,
                        help="TF Serving model base path: each version goes in a numbered subdirectory")
    parser.add_argument("--version", type=int, help="version number (default: one more than the highest present)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version and --keras file")
    parser.add_argument("--keras", type=Path, metavar="PATH",
                        help="also save the whole DDNMF model (both networks) as this .keras file")
    return parser


def check_keras_path(path, overwrite):
    """Refuse, before anything is written, a --keras path Keras cannot write or one that exists without --overwrite."""
    if path.suffix != ".keras":
        raise ExportError(f"--keras path must end in .keras, got {path}")
    if path.exists() and not overwrite:
        raise ExportError(f"{path} already exists: pass --overwrite to replace it")


def main(argv=None):
    """Export the run (and its .keras file when asked), printing each path written."""
    args = build_parser().parse_args(argv)
    if args.keras is not None:
        check_keras_path(args.keras, args.overwrite)
    chosen = served_set(args.run_dir)
    print(export_run(args.run_dir, args.export_dir, args.version, args.overwrite, chosen=chosen))
    if args.keras is not None:
        load_model(args.run_dir, path=chosen.path).save(args.keras)  # the weights of the step exported
        print(args.keras)


def cli():
    """The `ddnmf-export` console script: main() on sys.argv, returning the exit status."""
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
