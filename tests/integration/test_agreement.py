"""One scaling path: train -> export -> serve -> encode give the same H and clusters for an input in every dtype.

Three tiny runs, one per scaling rule (uint8 data: x/255; float data in [0, 1]: as it is; other numbers:
min-max), each on a random small dataset (its shape, labels or none, K drawn with a fixed seed; the uint8 run
with a clustering head, the others with K-means's centres), are trained once. Each of the property cases
then draws inputs (how many, their dtype: uint8, float32 or float64; their range: raw or [0, 1]; flat or in
the example's shape) and checks that ddnmf_tf.inference.Served (train.encode --run-dir), the SavedModel's
signatures (TF Serving), train.encode --model and the NumPy preprocessing (train.evaluate) agree, and that
the same values in every dtype give the same answer.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from ddnmf_tf import inference
from ddnmf_tf.cli import encode as encode_cli
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.data.preprocessing import Preprocessing, input_note, load_preprocessing
from ddnmf_tf.run import directory

RULES = ("divide_255", "none", "min_max")
CASES = 36
EXAMPLES = 40
SHAPES = [(6, 6), (5, 4), (4, 4, 3), (12,)]
ATOL = 1e-5  # float64 inputs are rounded to float32 before the graph, as every SavedModel client sends them


def _dataset(rule, rng):
    """(x, y or None, K) of a random small dataset that `rule` scales: uint8, floats in [0, 1], or 0-255 floats."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    raw = rng.integers(0, 256, (EXAMPLES, *shape))
    x = {"divide_255": raw.astype(np.uint8), "none": (raw / 255).astype(np.float32),
         "min_max": raw.astype(np.float64)}[rule]
    clusters = int(rng.integers(2, 5))
    labels = rng.integers(0, clusters, EXAMPLES) if rule != "none" else None
    return x, labels, clusters


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{rule: (run dir, version dir, x)} of one tiny trained and exported run per scaling rule."""
    rng = np.random.default_rng(20)
    made = {}
    for rule in RULES:
        folder = tmp_path_factory.mktemp(rule)
        x, labels, clusters = _dataset(rule, rng)
        np.savez(folder / "data.npz", x=x, **({} if labels is None else {"y": labels}))
        head = ["--head-epochs", "1", "--head-layers", "8", "--head-init-sample", "0", "--head-umap-neighbors", "5"]
        argv = ["--dataset", folder / "data.npz", "--run-dir", folder / "run", "--export-dir", folder / "models",
                "--layers", "8", "--rank", "3", "--epochs", "1", "--batch-size", "20", "--clusters", clusters,
                "--clusterers", "kmeans", "--projector-examples", "0", "--no-jit", "--quiet",
                *(head if rule == "divide_255" else ["--head-epochs", "0"])]
        train_run.main([str(arg) for arg in argv])
        assert load_preprocessing(folder / "run").scaling == rule
        made[rule] = (folder / "run", folder / "models" / "1", x)
    return made


@pytest.fixture(scope="module")
def loaded(runs):
    """{rule: (Served of the run directory, its SavedModel's signatures, train.encode's SavedModelEncoder)}."""
    return {rule: (inference.load_served(run_dir, log=lambda line: None),
                   tf.saved_model.load(str(version)).signatures, encode_cli.SavedModelEncoder(version))
            for rule, (run_dir, version, _) in runs.items()}


def _forms(raw, rule):
    """The same stored values in every dtype (raw), and for the rules whose inputs are in [0, 1], the same
    examples scaled to [0, 1]: {name: rows}."""
    forms = {"uint8": raw.astype(np.uint8), "float32": raw.astype(np.float32), "float64": raw.astype(np.float64)}
    unit = {"float32 [0, 1]": (raw / 255).astype(np.float32), "float64 [0, 1]": raw / 255}
    return forms, unit


def _answers(rule, loaded, rows, shape, rng):
    """{path: {representation, cluster}} of stored `rows` [n, features] through every code path."""
    served, signatures, encoder = loaded[rule]
    by_run_dir = served.predict(rows)
    if rows.dtype == np.uint8:
        images = rows.reshape(len(rows), *shape)
        if len(shape) == 2 and rng.integers(2):
            images = images[..., np.newaxis]  # a grayscale image with its channel axis
        by_signature = signatures["serving_uint8"](images=tf.constant(images))
    else:
        by_signature = signatures["serving_default"](images=tf.constant(rows.astype(np.float32)))
    by_model = encoder(rows)
    h = inference.encode(served.model, rows, served.preprocessing)  # train.evaluate's clusterers see this H
    pick = ("representation", "cluster")
    return {"run dir": {name: by_run_dir[name] for name in pick},
            "signature": {name: by_signature[name].numpy() for name in pick},
            "--model": {name: by_model[name] for name in pick},
            "numpy": {"representation": h}}


def _assert_agree(answers, reference, context):
    for path, answer in answers.items():
        np.testing.assert_allclose(answer["representation"], reference["representation"], rtol=0, atol=ATOL,
                                   err_msg=f"{context}: {path}")
        if "cluster" in answer:
            np.testing.assert_array_equal(answer["cluster"], reference["cluster"], err_msg=f"{context}: {path}")


@pytest.mark.parametrize("case", range(CASES))
def test_every_path_and_dtype_gives_one_answer(runs, loaded, case):
    rng = np.random.default_rng(case)
    rule = RULES[case % len(RULES)]
    shape = runs[rule][2].shape[1:]
    raw = rng.integers(0, 256, (int(rng.integers(1, 9)), math.prod(shape)))
    raw[:, 0] = np.maximum(raw[:, 0], 2)  # raw values: an example reads as 0-255 values when one is above 1
    forms, unit = _forms(raw, rule)
    reference = _answers(rule, loaded, forms["uint8"], shape, rng)["run dir"]
    for name, rows in forms.items():  # the same values in every dtype: one answer
        _assert_agree(_answers(rule, loaded, rows, shape, rng), reference, f"case {case}, {rule}, {name}")
    for name, rows in unit.items():
        answers = _answers(rule, loaded, rows, shape, rng)
        if rule != "min_max":  # x/255 is the same input to a run whose inputs are in [0, 1]
            _assert_agree(answers, reference, f"case {case}, {rule}, {name}")
        else:  # min-max scales the values as stored: other values, one answer over the paths
            _assert_agree(answers, answers["run dir"], f"case {case}, {rule}, {name}")


@pytest.mark.parametrize("rule", RULES)
def test_train_export_serve_and_encode_agree_on_the_training_set(runs, loaded, rule, tmp_path, capsys):
    run_dir, version, x = runs[rule]
    assignments = np.load(run_dir / directory.ASSIGNMENTS_FILE)
    np.save(tmp_path / "x.npy", x)
    encoded = {}
    for flag, model in (("--run-dir", run_dir), ("--model", version)):
        output = tmp_path / f"{flag.strip('-')}.npz"
        argv = [flag, str(model), "--input", str(tmp_path / "x.npy"), "--output", str(output), "--quiet"]
        assert encode_cli.run_cli(encode_cli.main, argv) == 0
        encoded[flag] = np.load(output)
        np.testing.assert_array_equal(encoded[flag]["cluster"], assignments, err_msg=flag)
    np.testing.assert_allclose(encoded["--model"]["representation"], encoded["--run-dir"]["representation"],
                               rtol=0, atol=ATOL)
    _, signatures, _ = loaded[rule]
    name, images = ("serving_uint8", x) if x.dtype == np.uint8 else ("serving_default", x.reshape(len(x), -1))
    served = signatures[name](images=tf.constant(images if x.dtype == np.uint8 else images.astype(np.float32)))
    np.testing.assert_array_equal(served["cluster"].numpy(), assignments)
    assert "error" not in capsys.readouterr().err


def test_the_readings_no_rule_can_tell_apart_are_the_documented_ones():
    # An example of 0s and 1s to a run whose inputs are in [0, 1]: read as [0, 1] values, in NumPy and in the graph.
    rows = np.array([[0, 1, 1, 0], [0, 2, 255, 0]], np.float32)
    scaled = Preprocessing("divide_255", (2, 2)).apply(rows)
    np.testing.assert_array_equal(scaled, np.array([[0, 1, 1, 0], [0, 2 / 255, 1, 0]], np.float32))
    np.testing.assert_array_equal(Preprocessing("divide_255", (2, 2)).apply_tf(tf.constant(rows)).numpy(), scaled)
    # Values within [0, 1] to a min-max run trained on 0-255 values: read as stored, with a note from train.encode.
    min_max = Preprocessing("min_max", (4,), (0.0,) * 4, (255.0,) * 4)
    np.testing.assert_allclose(min_max.apply(rows[:1] / 255), rows[:1] / 255 / 255, rtol=1e-6)
    assert input_note(min_max, rows[:1] / 255, "new.npy") == (
        "note: new.npy: every value is within [0, 1], but the run min-max scales values as stored (its training "
        "values reach 255): pass them unscaled")
    assert input_note(min_max, rows, "new.npy") is None
    assert input_note(Preprocessing("divide_255", (2, 2)), rows.astype(np.uint8), "new.npy") is None
