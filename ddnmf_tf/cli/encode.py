"""Encode new data: `python -m train.encode --run-dir RUN --input PATH --output OUT.npz`.

Writes the representation H (`representation`, float32 [n, rank]) and the
cluster id (`cluster`, int64 [n], the cluster the run serves: its clustering
head's, else the nearest of its K-means centres) of every example of PATH, which takes the forms of train.run's --dataset (a .npz or
.npy file, a folder of IDX files or images, tfds:NAME, a dataset name).
The model is a run directory (the weights and head or centres of its
outputs' step, ddnmf_tf.run.outputs, and its preprocessing, through the code
the SavedModel runs) or an exported SavedModel (`--model models/ddnmf/1`, through its
signatures: uint8 images go to serving_uint8 where the model has it).
OUT is `.npz` (both arrays), `.npy` (a structured array with both fields) or
`.csv` (a header, then `cluster,h_0,...,h_{r-1}` per example). `--gallery
OUT.png` also draws, for each cluster, how many of the examples it took and
its most confident ones (ddnmf_tf.reporting.pictures).
"""

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ddnmf_tf.cli.common import CLIParser, run_cli
from ddnmf_tf.data import SPLITS, load_examples
from ddnmf_tf.data.preprocessing import (PREPROCESSING_FILE, Preprocessing, default_preprocessing, input_note,
                                         load_preprocessing)
from ddnmf_tf.files import write_atomic
from ddnmf_tf.inference import PREDICT_BATCH, load_served
from ddnmf_tf.reporting.pictures import confidence, save_gallery, served_of
from ddnmf_tf.reporting.summaries import is_drawable
from ddnmf_tf.run.directory import load_config
from ddnmf_tf.serving import CONFIG_ASSET, OUTPUTS_ASSET, SERVING_DEFAULT, SERVING_UINT8

OUTPUT_SUFFIXES = (".npz", ".npy", ".csv")


def build_parser():
    parser = CLIParser(prog="python -m train.encode", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--run-dir", type=Path, help="run directory written by train.run")
    model.add_argument("--model", type=Path, metavar="SAVED_MODEL_DIR", help="a SavedModel written by export.run")
    parser.add_argument("--input", required=True, metavar="PATH", help="the examples to encode")
    parser.add_argument("--split", choices=SPLITS, default="test", help="split of an input that has splits")
    parser.add_argument("--output", required=True, type=Path, metavar="OUT", help="OUT.npz, OUT.npy or OUT.csv")
    parser.add_argument("--gallery", type=Path, metavar="OUT.png",
                        help="also draw each cluster's size and most confident examples into this PNG (images only)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


class SavedModelEncoder:
    """An exported SavedModel's representation and cluster, batch by batch, through its signatures."""

    def __init__(self, path):
        self.model = tf.saved_model.load(str(path))
        self.preprocessing = saved_model_preprocessing(path)
        recorded = Path(path) / "assets.extra" / OUTPUTS_ASSET
        self.step = json.loads(recorded.read_text())["step"] if recorded.is_file() else None

    def __call__(self, rows):
        """{representation, cluster?} of stored rows [k, input_dim]: uint8 to serving_uint8, any other dtype as
        float32 to serving_default (the SavedModel scales both as the run does)."""
        signatures = self.model.signatures
        if rows.dtype == np.uint8 and SERVING_UINT8 in signatures:
            images = rows.reshape(len(rows), *self.preprocessing.shape)
            outputs = signatures[SERVING_UINT8](images=tf.constant(images))
        else:  # a SavedModel without serving_uint8 (an older export's vectors) divides nothing itself
            scaled = rows.dtype == np.uint8 and self.preprocessing.scaling != "min_max"
            floats = rows.astype(np.float32) / 255.0 if scaled else rows.astype(np.float32)
            outputs = signatures[SERVING_DEFAULT](images=tf.constant(floats))
        return {name: value.numpy() for name, value in outputs.items()}


def encode_examples(args, examples, progress, preprocessing):
    """(representation [n, rank], cluster [n] or None, the probability of every cluster [n, K] or None, the
    training step of the weights and clusters or None) of the examples, from a run directory or a SavedModel."""
    if args.run_dir is not None:
        _check_width(examples, preprocessing.input_dim, args.run_dir)
        served = load_served(args.run_dir)
        outputs = served.predict(examples.values, progress)
        return outputs["representation"], outputs.get("cluster"), outputs.get("cluster_probabilities"), served.step
    model = SavedModelEncoder(args.model)
    _check_width(examples, preprocessing.input_dim, args.model)
    parts = []
    for start in range(0, len(examples), PREDICT_BATCH):
        rows = np.asarray(examples.values[start:start + PREDICT_BATCH])
        parts.append(model(rows))
        progress.add(len(rows))
    representation = np.concatenate([part["representation"] for part in parts])
    if "cluster" not in parts[0]:
        return representation, None, None, model.step
    return (representation, *(np.concatenate([part[name] for part in parts])
                               for name in ("cluster", "cluster_probabilities")), model.step)


def saved_model_preprocessing(path):
    """The preprocessing a SavedModel serves with (assets.extra/), or the default for its input width."""
    extra = Path(path) / "assets.extra"
    if (extra / PREPROCESSING_FILE).is_file():
        return Preprocessing.from_dict(json.loads((extra / PREPROCESSING_FILE).read_text()))
    return default_preprocessing(int(json.loads((extra / CONFIG_ASSET).read_text())["input_dim"]))


def _versions_hint(path):
    """What to pass as --model instead of `path`: one of its numbered versions (an export directory), or an
    export."""
    versions = sorted((int(child.name) for child in path.iterdir() if child.name.isdigit()
                       and (child / "saved_model.pb").is_file()), reverse=True) if path.is_dir() else []
    if not versions:
        return "export a run with export.run"
    return (f"it is an export directory: pass one of its versions, --model {path / str(versions[0])} (versions: "
            + ", ".join(map(str, sorted(versions))) + ")")


def _image_options(preprocessing):
    """How to read image inputs so that they take the model's shape and colours."""
    if len(preprocessing.shape) not in (2, 3):
        return {}
    rgb = len(preprocessing.shape) == 3 and preprocessing.shape[2] == 3
    return {"color_mode": "rgb" if rgb else "grayscale", "image_size": preprocessing.shape[:2]}


def _check_gallery(args, preprocessing):
    """ValueError, before any encoding, unless the model takes images and (a run directory) serves clusters."""
    if not is_drawable(preprocessing.shape):
        raise ValueError(f"--gallery draws images: the model {args.run_dir or args.model} takes examples of shape "
                         f"{list(preprocessing.shape)}")
    if args.run_dir is not None:  # quietly: encoding loads the run again and says which step
        served_of(args.run_dir, "--gallery", load_served(args.run_dir, log=lambda line: None))


def _draw_gallery(args, examples, clusters, probabilities, preprocessing):
    if clusters is None:
        raise ValueError(f"--gallery: the model {args.model} serves no clusters (it was exported without centres)")
    save_gallery(args.gallery, examples.values, preprocessing.shape, clusters, confidence(clusters, probabilities),
                 probabilities.shape[1], preprocessing.apply, examples.labels if examples.labeled else None)
    print(f"gallery of the {probabilities.shape[1]} clusters: {args.gallery}")


def _check_width(examples, input_dim, model):
    if examples.values.shape[1] != input_dim:
        raise ValueError(f"{examples.origin}: examples of {examples.values.shape[1]} features (shape "
                         f"{list(examples.shape)}), the model {model} takes {input_dim}")


def write_output(path, representation, clusters):
    """Write the encodings as .npz, .npy or .csv, atomically."""
    buffer = io.BytesIO()
    if path.suffix == ".npz":
        np.savez(buffer, representation=representation, **({"cluster": clusters} if clusters is not None else {}))
    elif path.suffix == ".npy":
        fields = [("representation", np.float32, (representation.shape[1],))]
        fields += [("cluster", np.int64)] if clusters is not None else []
        table = np.zeros(len(representation), fields)
        table["representation"] = representation
        if clusters is not None:
            table["cluster"] = clusters
        np.save(buffer, table)
    else:
        text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow((["cluster"] if clusters is not None else [])
                        + [f"h_{unit}" for unit in range(representation.shape[1])])
        for number, row in enumerate(representation):
            writer.writerow(([int(clusters[number])] if clusters is not None else []) + [f"{value:.7g}" for value in row])
        text.flush()
    write_atomic(path, buffer.getvalue())


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.output.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output must end in {', '.join(OUTPUT_SUFFIXES)}, got {args.output}")
    if args.run_dir is not None:
        preprocessing = load_preprocessing(args.run_dir, load_config(args.run_dir).input_dim)
    else:
        if not (args.model / "saved_model.pb").is_file():
            raise ValueError(f"{args.model} is not a SavedModel (no saved_model.pb): "
                             + _versions_hint(args.model))
        preprocessing = saved_model_preprocessing(args.model)
    if args.gallery is not None:
        _check_gallery(args, preprocessing)
    examples = load_examples(args.input, args.split, labels=args.gallery is not None,  # labels: the gallery's only
                             **_image_options(preprocessing))
    note = input_note(preprocessing, examples.values, examples.origin)
    if note:
        print(note)
    progress = keras.utils.Progbar(len(examples), verbose=0 if args.quiet else 1, unit_name="example")
    representation, clusters, probabilities, step = encode_examples(args, examples, progress, preprocessing)
    write_output(args.output, representation, clusters)
    if args.gallery is not None:
        _draw_gallery(args, examples, clusters, probabilities, preprocessing)
    print(f"{len(representation)} examples of {examples.origin} encoded into {args.output} "
          f"(representation [{len(representation)}, {representation.shape[1]}]"
          + (", cluster" if clusters is not None else "") + ")"
          + ("" if step is None else f" by the weights and clusters of step {step}" if clusters is not None
             else f" by the weights of step {step} (no clusters: the run has no outputs yet)"))


def cli():
    """The `ddnmf-encode` console script: main() on sys.argv, returning the exit status."""
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
