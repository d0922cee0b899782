"""A user's own data: .npz, .npy (memory-mapped), PNG folders, scikit-learn's digits, unlabeled data, train.encode.

Real data: MNIST's test split (the `mnist_dir` fixture) rewritten by the tests
in each form, and scikit-learn's 8x8 digits (64 features, some constant).
Each trains through the command line and must cluster well above chance
(10 classes: chance is about 0.1-0.2 ACC). The floors sit below what these
runs scored on 2-core x86-64 CPUs (K-means ACC about 0.45-0.55 on the MNIST
forms, about 0.55-0.75 on the digits) and above what an untrained network
scores.
"""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from ddnmf_tf.cli import encode as train_encode
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.data import DataError, load_examples
from ddnmf_tf.data.preprocessing import Preprocessing
from ddnmf_tf.run import directory
from ddnmf_tf.training.step import training_batches

IMAGES = 2000
SMALL = ["--layers", "256,64", "--rank", "10", "--batch-size", "50", "--no-jit", "--quiet", "--clusterers", "kmeans",
         "--head-epochs", "0"]
ACC_FLOOR = 0.35


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    examples = load_examples("mnist", "test", data_dir=mnist_dir)
    return np.asarray(examples.values[:IMAGES]).reshape(-1, 28, 28), examples.labels[:IMAGES]


@pytest.fixture(scope="module")
def forms(mnist, tmp_path_factory):
    """The same 2,000 MNIST images as .npz, .npy and a PNG folder with one subfolder per class."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("forms")
    x, y = mnist
    np.savez(folder / "mnist.npz", x=x, y=y)
    np.save(folder / "mnist.npy", x)
    for label in range(10):
        (folder / "png" / str(label)).mkdir(parents=True)
    for number, (image, label) in enumerate(zip(x, y)):
        Image.fromarray(image).save(folder / "png" / str(label) / f"{number:05d}.png")
    return folder


def _train(dataset, run_dir, *flags, epochs=25):
    train_run.main(SMALL + ["--dataset", str(dataset), "--epochs", str(epochs), "--run-dir", str(run_dir), *flags])
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("form", ["mnist.npz", "png"])
def test_own_data_trains_through_the_cli_and_clusters_above_chance(forms, form, tmp_path, monkeypatch):
    monkeypatch.setenv("DDNMF_CACHE_DIR", str(tmp_path / "cache"))
    results = _train(forms / form, tmp_path / "run")
    assert results["train_examples"] == IMAGES and results["clusters"] == 10
    assert results["metrics"]["kmeans"]["acc"] > ACC_FLOOR, results["metrics"]
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert settings["dataset"] == str((forms / form).resolve())
    preprocessing = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert (preprocessing["scaling"], preprocessing["shape"]) == ("divide_255", [28, 28])
    assert len(np.load(tmp_path / "run" / "assignments.npy")) == IMAGES


def test_the_npz_npy_and_png_forms_read_the_same_examples(forms, mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("DDNMF_CACHE_DIR", str(tmp_path / "cache"))
    x, y = mnist
    from_npz, from_npy = load_examples(forms / "mnist.npz"), load_examples(forms / "mnist.npy")
    from_png = load_examples(forms / "png")
    assert isinstance(from_npy.values, np.memmap) and not from_npy.labeled
    assert isinstance(load_examples(forms / "png").values, np.memmap)  # read back from the decoded cache
    order = np.argsort(y, kind="stable")  # the folder lists images class by class
    np.testing.assert_array_equal(from_png.values, x.reshape(IMAGES, -1)[order])
    np.testing.assert_array_equal(from_png.labels, y[order])
    np.testing.assert_array_equal(from_npz.values, from_npy.values)
    assert from_png.shape == from_npz.shape == (28, 28)


def test_sklearn_digits_are_min_max_scaled_with_constant_features_at_zero(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=digits.data, y=digits.target)  # float64 values 0-16
    results = _train(tmp_path / "digits.npz", tmp_path / "run", "--batch-size", "64", epochs=30)
    assert results["metrics"]["kmeans"]["acc"] > 0.45, results["metrics"]
    preprocessing = Preprocessing.from_dict(json.loads((tmp_path / "run" / "preprocessing.json").read_text()))
    assert preprocessing.scaling == "min_max" and preprocessing.shape == (64,)
    scaled = preprocessing.apply(digits.data)
    constant = digits.data.min(axis=0) == digits.data.max(axis=0)
    assert constant.any() and (scaled[:, constant] == 0).all()
    assert scaled.min() == 0 and scaled.max() == 1


def test_unlabeled_data_trains_into_k_clusters_without_scores(forms, tmp_path, capsys):
    results = _train(forms / "mnist.npy", tmp_path / "run", "--clusters", "7", epochs=1)
    assert results["metrics"] is None and results["clusters"] == 7
    assignments = np.load(tmp_path / "run" / "assignments.npy")
    assert len(assignments) == IMAGES and set(assignments.tolist()) <= set(range(7))
    assert directory.load_cluster_centers(tmp_path / "run").shape == (7, 10)
    assert "no scores: the examples scored have no labels" in capsys.readouterr().out


def test_a_memory_mapped_npy_gives_the_in_memory_batches_bit_for_bit(forms, mnist):
    from ddnmf_tf import DDNMFConfig

    config = DDNMFConfig(batch_size=128, seed=3)
    mapped = load_examples(forms / "mnist.npy")
    in_memory = np.ascontiguousarray(mnist[0].reshape(IMAGES, -1))
    preprocessing = Preprocessing.fit(in_memory, (28, 28))
    for fixed in (False, True):
        config = DDNMFConfig(batch_size=128, seed=3, noise_fixed=fixed)
        for epoch in (0, 1):
            pairs = zip(training_batches(mapped.values, config, epoch, preprocessing),
                        training_batches(in_memory, config, epoch, preprocessing))
            for (clean, noisy), (clean_ref, noisy_ref) in pairs:
                np.testing.assert_array_equal(clean.numpy(), clean_ref.numpy())
                np.testing.assert_array_equal(noisy.numpy(), noisy_ref.numpy())


def test_encode_new_data_from_a_run_and_from_its_saved_model(forms, mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("DDNMF_CACHE_DIR", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    _train(forms / "mnist.npz", run_dir, "--export-dir", str(tmp_path / "models"), epochs=1)
    outputs = {}
    for source, flags in {"run": ["--run-dir", str(run_dir)], "model": ["--model", str(tmp_path / "models" / "1")]}.items():
        for suffix in (".npz", ".npy", ".csv"):
            out = tmp_path / f"{source}{suffix}"
            assert train_encode.run_cli(train_encode.main, flags + ["--input", str(forms / "png"), "--output",
                                                                   str(out), "--quiet"]) == 0
            outputs[source, suffix] = out
    encoded = np.load(outputs["run", ".npz"])
    assert encoded["representation"].shape == (IMAGES, 10) and encoded["cluster"].shape == (IMAGES,)
    served = np.load(outputs["model", ".npz"])
    np.testing.assert_allclose(served["representation"], encoded["representation"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(served["cluster"], encoded["cluster"])
    # The run's clusters carry the training labels (Hungarian matching), and the SavedModel serves them.
    cluster_labels = np.load(run_dir / "cluster_labels.npy")
    model = tf.saved_model.load(str(tmp_path / "models" / "1"))
    answer = model.signatures["serving_default"](images=tf.constant(mnist[0][:50].reshape(50, -1) / 255, tf.float32))
    np.testing.assert_array_equal(answer["label"].numpy(), cluster_labels[answer["cluster"].numpy()])
    assert sorted(cluster_labels.tolist()) == list(range(10))
    table = np.load(outputs["run", ".npy"])
    np.testing.assert_array_equal(table["cluster"], encoded["cluster"])
    with open(outputs["model", ".csv"], newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["cluster"] + [f"h_{unit}" for unit in range(10)] and len(rows) == IMAGES + 1
    # The SavedModel's uint8 signature takes images of the trained shape.
    model = tf.saved_model.load(str(tmp_path / "models" / "1"))
    from_uint8 = model.signatures["serving_uint8"](images=tf.constant(mnist[0][:5]))
    from_floats = model.signatures["serving_default"](images=tf.constant(mnist[0][:5].reshape(5, -1) / 255, tf.float32))
    np.testing.assert_allclose(from_uint8["representation"].numpy(), from_floats["representation"].numpy(), atol=1e-6)
    first = np.argsort(np.argsort(mnist[1], kind="stable"))[:5]  # where the first five images sit in the folder's order
    np.testing.assert_array_equal(from_uint8["cluster"].numpy(), encoded["cluster"][first])


def test_data_of_the_wrong_width_is_one_line(forms, tmp_path, capsys):
    run_dir = tmp_path / "run"
    _train(forms / "mnist.npz", run_dir, epochs=1)
    np.save(tmp_path / "narrow.npy", np.zeros((5, 10, 10), np.uint8))
    code = train_encode.run_cli(train_encode.main, ["--run-dir", str(run_dir), "--input", str(tmp_path / "narrow.npy"),
                                                    "--output", str(tmp_path / "out.npz")])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'narrow.npy'}: examples of 100 features (shape [10, 10]), the model {run_dir} takes 784")


@pytest.mark.parametrize("case, message", [
    ("nan", "{path}: example 1 holds a NaN or infinite value"),
    ("inf", "{path}: example 1 holds a NaN or infinite value"),
    ("labels", "{path}: 3 examples but labels y of shape [2]"),
    ("strings", "{path}: values of type <U1 are not numbers"),
    ("empty folder", "{path}: no PNG or JPEG images in it or in its subfolders"),
    ("missing", "{path}: no such file or folder"),
    ("no x", "{path}: no array x (arrays: images)"),
    ("sizes", "{path}: images of different sizes (4x4 in a.png, 5x6 in b.png): pass --image-size HxW to resize them"),
])
def test_bad_own_data_is_one_line_naming_the_file(case, message, tmp_path, capsys):
    from PIL import Image

    path = tmp_path / ("data.npz" if case not in ("empty folder", "sizes") else "images")
    x = np.ones((3, 4), np.float32)
    if case in ("nan", "inf"):
        x[1, 2] = np.nan if case == "nan" else np.inf
        np.savez(path, x=x)
    elif case == "labels":
        np.savez(path, x=x, y=np.array([0, 1]))
    elif case == "strings":
        np.savez(path, x=np.array([["a", "b"], ["c", "d"], ["e", "f"]]))
    elif case == "no x":
        np.savez(path, images=x)
    elif case in ("empty folder", "sizes"):
        path.mkdir()
        if case == "sizes":
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(path / "a.png")
            Image.fromarray(np.zeros((5, 6), np.uint8)).save(path / "b.png")
    code = train_run.run_cli(train_run.main, SMALL + ["--dataset", str(path), "--run-dir", str(tmp_path / "run")])
    assert (code, capsys.readouterr().err.strip().splitlines()) == (2, ["error: " + message.format(path=path)])
    assert not (tmp_path / "run").exists()


def test_different_image_sizes_are_resized_with_image_size(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("DDNMF_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.full((5, 6, 3), 100, np.uint8)).save(tmp_path / "images" / "b.jpg")
    examples = load_examples(tmp_path / "images", image_size=(6, 8))
    assert examples.shape == (6, 8, 3) and examples.values.shape == (2, 144) and not examples.labeled
    assert load_examples(tmp_path / "images", image_size=(6, 8), color_mode="grayscale").shape == (6, 8)


def test_tfds_datasets_fail_fast_offline_with_a_hint(tmp_path, monkeypatch):
    import time

    from ddnmf_tf import data

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data.tfds, "_reachable", lambda host, port: False)
    started = time.monotonic()
    with pytest.raises(DataError, match=r"^no data for tfds:kmnist: it is not prepared in the tfds data dir and "
                                        r"storage.googleapis.com is unreachable\. Prepare it on a networked machine "
                                        r"\(tfds build kmnist\)"):
        load_examples("tfds:kmnist")
    assert time.monotonic() - started < 30
    with pytest.raises(DataError, match="^tfds:no_such_dataset_here: "):
        load_examples("tfds:no_such_dataset_here")


def test_tfds_catalogue_datasets_train_through_the_cli(tmp_path, monkeypatch):
    """tfds's own mock_data stands in for prepared data (no download here): the generic tfds reader and cache."""
    import tensorflow_datasets as tfds

    from ddnmf_tf import data

    monkeypatch.setenv("DDNMF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(data.tfds, "tfds_prepared", lambda builder: True)
    with tfds.testing.mock_data(num_examples=60):
        results = _train("tfds:cifar10", tmp_path / "run", "--clusters", "4", epochs=1)
        digits = load_examples("tfds:emnist/digits", "test", color_mode="rgb", image_size=(14, 14))
    assert (results["train_examples"], results["eval_examples"], results["clusters"]) == (60, 60, 4)
    preprocessing = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert (preprocessing["scaling"], preprocessing["shape"]) == ("divide_255", [32, 32, 3])
    assert digits.shape == (14, 14, 3) and isinstance(digits.values, np.memmap)


def test_pictures_take_the_datas_shape_and_colours_and_fig_2_more_than_10_classes(tmp_path):
    from ddnmf_tf.reporting import figures, summaries

    rgb = np.random.default_rng(0).random((5, 6 * 8 * 3)).astype(np.float32)
    assert summaries.image_grid(rgb, 3, (6, 8, 3)).shape == (1, 12, 24, 3)
    assert summaries.image_grid(rgb[:, :48], 2, (6, 8)).shape == (1, 18, 16, 1)
    assert not summaries.is_drawable((64,)) and summaries.is_drawable((28, 28))
    labels = np.arange(300) % 15
    embedding = np.random.default_rng(1).random((300, 2))
    figures.save_tsne([("fifteen classes", embedding, labels)], tmp_path / "fig2.png")
    assert (tmp_path / "fig2.png").read_bytes()[:4] == b"\x89PNG"
