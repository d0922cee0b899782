"""Tabulate finished runs: `python -m train.collect RUN... [--mean]`.

Prints a markdown table with one row per run directory (its results.json):
the dataset, the model when it is not DDNMF (AE1/AE2 of
ddnmf_tf.baselines), the config fields that differ from today's DDNMFConfig
defaults, the seed, epochs, wall seconds and the ACC / NMI / ARI of every
clusterer the run was scored with. A RUN may also be the JSON report of
`python -m train.evaluate --run-dir DIR --json REPORT`: the row is DIR's,
with the report's scores (a run rescored, e.g. with other clusterer
settings). --mean puts runs that differ only in
their seed on one row: the mean and the standard deviation over the seeds.
docs/scores.csv holds the scores of such tables.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from ddnmf_tf.cli.common import CLIParser, run_cli
from ddnmf_tf.config import DDNMFConfig
from ddnmf_tf.evaluation import METRICS, UMAP_NEIGHBORS
from ddnmf_tf.reporting.tables import markdown_lines
from ddnmf_tf.run.directory import RESULTS_FILE, read_json, run_kind

# Fields every run sets for itself: shown in their own columns, never as a difference from the defaults.
OWN_COLUMNS = ("seed", "epochs")
# What the table reads of a results.json.
RESULTS_KEYS = ("dataset", "config", "epochs", "wall_seconds", "metrics", "train_split")


def build_parser():
    parser = CLIParser(prog="python -m train.collect", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directories holding a results.json, or train.evaluate --json reports")
    parser.add_argument("--mean", action="store_true", help="one row per setting: mean ± std over its seeds")
    return parser


def load_results(run):
    """RUN/results.json; for a train.evaluate report, its run's results.json with the report's scores."""
    path = Path(run)
    if path.is_file():
        try:
            report = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            report = None
        if not isinstance(report, dict) or not {"run_dir", "metrics"} <= report.keys():
            raise ValueError(f"{run} is not a train.evaluate --json report (a JSON object with run_dir and metrics)")
        return {**load_results(report["run_dir"]), "metrics": report["metrics"],
                "umap_neighbors": report.get("umap_neighbors", UMAP_NEIGHBORS), "rescored": True}
    if not (path / RESULTS_FILE).is_file():
        raise ValueError(f"{run} has no {RESULTS_FILE}: the run has not finished")
    results = read_json(path / RESULTS_FILE)
    missing = [key for key in RESULTS_KEYS if not isinstance(results, dict) or key not in results]
    if missing:
        raise ValueError(f"{path / RESULTS_FILE} is not the results of a train.run run (no {', '.join(missing)})")
    kind = run_kind(path)
    if kind:
        results["model"] = kind.upper()
    return results


def changed_settings(results):
    """A baseline's model, 'field=value' for each config field off its default, other UMAP neighbours, the training split."""
    defaults = DDNMFConfig().to_dict()
    changed = [f"model={results['model']}"] if "model" in results else []
    changed += [f"{name}={value}" for name, value in sorted(results["config"].items())
               if name not in OWN_COLUMNS and defaults.get(name) != value]
    if results.get("umap_neighbors", UMAP_NEIGHBORS) != UMAP_NEIGHBORS:
        scored = "rescored" if results.get("rescored") else "scored"
        changed.append(f"{scored} with umap_neighbors={results['umap_neighbors']}")
    return ", ".join(changed + [f"train on {results['train_split']}"])


def _cell(values, decimals=4):
    if len(values) == 1:
        return f"{values[0]:.{decimals}f}"
    return f"{statistics.mean(values):.{decimals}f} ± {statistics.stdev(values):.{decimals}f}"


def table(runs, mean):
    """Markdown lines: one row per run, or per setting (mean ± std over seeds) when `mean`."""
    clusterers = list(dict.fromkeys(name for results in runs for name in results["metrics"] or {}))
    groups = {}
    for results in runs:
        key = (results["dataset"], changed_settings(results), results["epochs"])
        groups.setdefault(key if mean else len(groups), []).append(results)
    header = ["dataset", "settings (besides the defaults)", "seeds", "epochs", "wall s"]
    header += [f"{clusterer} {metric.upper()}" for clusterer in clusterers for metric in METRICS]
    rows = []
    for group in groups.values():
        first = group[0]
        cells = [first["dataset"], changed_settings(first), ",".join(str(r["config"]["seed"]) for r in group),
                 str(first["epochs"]), _cell([r["wall_seconds"] for r in group], decimals=0)]
        for clusterer in clusterers:
            for metric in METRICS:
                values = [r["metrics"][clusterer][metric] for r in group if clusterer in (r["metrics"] or {})]
                cells.append(_cell(values) if len(values) == len(group) else "")
        rows.append(cells)
    return markdown_lines(header, rows)


def main(argv=None):
    args = build_parser().parse_args(argv)
    print("\n".join(table([load_results(run) for run in args.runs], args.mean)))


def cli():
    """main() on sys.argv, returning the exit status."""
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
