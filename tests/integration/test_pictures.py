"""What a run's clusters hold: TensorBoard's Embedding Projector, clusters.png, confusion.png, encode --gallery.

Real data: scikit-learn's 8x8 digits written as PNG files (RGB, one subfolder
per digit; grayscale in a flat folder: unlabeled) and as 64 plain features.
Tiny one-epoch runs: the pictures are checked for what they hold (which
examples, rows, sizes, columns), not for how well the model clusters.
"""

import io
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image
from sklearn.datasets import load_digits
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins import projector as tb_projector

from ddnmf_tf.cli import encode as train_encode
from ddnmf_tf.cli import evaluate as train_evaluate
from ddnmf_tf.cli import run as train_run
from ddnmf_tf.data import load_examples
from ddnmf_tf.data.preprocessing import load_preprocessing
from ddnmf_tf.inference import encode
from ddnmf_tf.reporting import pictures, projector
from ddnmf_tf.run import checkpoints
from ddnmf_tf.run.checkpoints import load_model
from ddnmf_tf.run.settings import RunSettings
from tests.helpers import TINY_FLAGS

SMALL = TINY_FLAGS + ["--clusterers", "kmeans", "--epochs", "1", "--head-epochs", "1", "--head-layers", "16"]
LABELED, UNLABELED, SHOWN = 300, 120, 150


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DDNMF_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The digits as RGB PNGs in one subfolder per digit (each digit in its own colour), and grayscale PNGs in a
    flat folder, and as a .npz of 64 features."""
    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)
    for number, (image, label) in enumerate(zip(images[:LABELED], digits.target[:LABELED])):
        (root / "rgb" / str(label)).mkdir(parents=True, exist_ok=True)
        colour = np.zeros((8, 8, 3), np.uint8)
        colour[..., label % 3] = image
        Image.fromarray(colour).save(root / "rgb" / str(label) / f"{number:04d}.png")
    (root / "flat").mkdir()
    for number, image in enumerate(images[LABELED:LABELED + UNLABELED]):
        Image.fromarray(image).save(root / "flat" / f"digit {number:04d}.png")
    np.savez(root / "digits.npz", x=digits.data, y=digits.target)
    return root


def _train(dataset, run_dir, *flags):
    train_run.main(SMALL + ["--dataset", str(dataset), "--run-dir", str(run_dir), *flags])
    return run_dir


@pytest.fixture(scope="module")
def labeled_run(folders, tmp_path_factory):
    return _train(folders / "rgb", tmp_path_factory.mktemp("labeled") / "run", "--projector-examples", str(SHOWN))


def _config(run_dir):
    return text_format.Parse((run_dir / projector.CONFIG_FILE).read_text(), tb_projector.ProjectorConfig())


def _vectors(run_dir):
    """H as the projector reads it: the variable of the run directory's newest checkpoint."""
    return tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir))).get_tensor(projector.TENSOR_NAME)


def _table(path):
    return [line.split("\t") for line in path.read_text().splitlines()]


def _image_tags(run_dir):
    accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
    return set(accumulator.Reload().Tags()["tensors"])


def test_most_confident_members_come_first_and_stay_in_their_cluster():
    clusters = np.array([0, 1, 0, 0, 1, 0])
    probabilities = np.array([0.2, 0.9, 0.7, 0.2, 0.4, 0.5])
    chosen = pictures.most_confident(clusters, probabilities, 3, members=3)
    assert [numbers.tolist() for numbers in chosen] == [[2, 5, 0], [1, 4], []]


def test_pictures_of_a_run_that_serves_no_clusters_are_refused_naming_the_flag(labeled_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "settings.json", "preprocessing.json"):
        (unfinished / name).write_bytes((labeled_run / name).read_bytes())
    model = load_model(labeled_run)
    checkpoints.checkpoint_manager(unfinished, checkpoints.training_checkpoint(model, keras.optimizers.Adam())).save()
    with pytest.raises(ValueError, match="--gallery: .* serves no clusters yet"):
        pictures.served_of(unfinished, "--gallery")
    assert pictures.served_of(labeled_run, "--gallery").clusters == 10


def test_the_sprite_keeps_the_colours_and_fits_the_projectors_limit():
    images = np.random.default_rng(0).integers(0, 256, (10, 100 * 80 * 3), dtype=np.uint8)
    png, (width, height) = projector.sprite_png(images, np.arange(10), (100, 80, 3), lambda rows: rows / 255.0)
    sprite = Image.open(io.BytesIO(png))
    assert (width, height) == (51, 64)  # at most 64 px a side, the aspect kept
    assert sprite.mode == "RGB" and sprite.size == (4 * 51, 3 * 64)  # ceil(sqrt(10)) = 4 to a row, 3 rows
    for count in (1, 5000, 20000, 200000):
        side = projector.thumbnail_side(count)
        assert side <= projector.THUMBNAIL_LIMIT and side * math.ceil(math.sqrt(count)) <= projector.SPRITE_LIMIT
    assert projector.thumbnail_side(20000) == 57


def test_metadata_has_a_header_and_one_row_per_example():
    text = projector.metadata_tsv([2, 0], [0.75, 0.5], np.array([3, -1]), ["a\tb.png", "7"])
    assert text.splitlines() == ["cluster\tprobability\tlabel\tname", "2\t0.7500\t3\ta b.png", "0\t0.5000\t\t7"]
    assert projector.metadata_tsv([1], [0.25], None, ["0"]).splitlines()[0] == "cluster\tprobability\tname"


def test_a_labeled_image_run_shows_its_clusters_in_the_projector_a_gallery_and_a_confusion_matrix(labeled_run, folders):
    config = _config(labeled_run)
    (embedding,) = config.embeddings
    assert (embedding.tensor_name, embedding.metadata_path) == (projector.TENSOR_NAME, projector.METADATA_FILE)
    assert embedding.sprite.image_path == projector.SPRITE_FILE and list(embedding.sprite.single_image_dim) == [8, 8]
    metadata = _table(labeled_run / projector.METADATA_FILE)
    assert _vectors(labeled_run).shape == (SHOWN, 4)
    assert metadata[0] == ["cluster", "probability", "label", "name"] and len(metadata) == SHOWN + 1
    sprite = Image.open(labeled_run / projector.SPRITE_FILE)
    assert sprite.mode == "RGB" and sprite.size == (13 * 8, 12 * 8)  # ceil(sqrt(150)) = 13 to a row
    # Each row names its file, the sample in the folder's order; its label is its subfolder, its cluster the served
    # one (assignments.npy: the scored examples are the training ones).
    names = list(load_examples(folders / "rgb").names)
    numbers = [names.index(row[3]) for row in metadata[1:]]
    assert numbers == sorted(set(numbers))
    assert [int(row[2]) for row in metadata[1:]] == [int(row[3].split("/")[0]) for row in metadata[1:]]
    assert [int(row[0]) for row in metadata[1:]] == np.load(labeled_run / "assignments.npy")[numbers].tolist()
    assert all(0 < float(row[1]) <= 1 for row in metadata[1:])
    for name in (pictures.GALLERY_FILE, pictures.CONFUSION_FILE):
        assert Image.open(labeled_run / name).format == "PNG"
    assert {"clusters", "confusion"} <= _image_tags(labeled_run)
    assert len(list(labeled_run.glob("events.out.tfevents.*"))) == 1  # beside the losses, in the run's one file


def test_projector_rows_hold_the_h_of_the_file_they_name(labeled_run, folders):
    examples = load_examples(folders / "rgb")
    index = {name: number for number, name in enumerate(examples.names)}
    metadata = _table(labeled_run / projector.METADATA_FILE)[1:]
    for row in metadata[:5]:  # a name is the file whose pixels the example holds
        pixels = np.asarray(Image.open(folders / "rgb" / row[3])).reshape(-1)
        np.testing.assert_array_equal(examples.values[index[row[3]]], pixels)
    h = encode(load_model(labeled_run), examples.values, load_preprocessing(labeled_run))
    np.testing.assert_allclose(_vectors(labeled_run), h[[index[row[3]] for row in metadata]], rtol=1e-5, atol=1e-6)


def test_an_unlabeled_run_draws_the_gallery_but_no_confusion_matrix(folders, tmp_path):
    run_dir = _train(folders / "flat", tmp_path / "run", "--clusters", "4")
    assert (run_dir / pictures.GALLERY_FILE).is_file() and not (run_dir / pictures.CONFUSION_FILE).exists()
    metadata = _table(run_dir / projector.METADATA_FILE)
    assert metadata[0] == ["cluster", "probability", "name"] and len(metadata) == UNLABELED + 1
    assert metadata[1][2] == "digit 0000.png"
    assert Image.open(run_dir / projector.SPRITE_FILE).mode == "L"
    tags = _image_tags(run_dir)
    assert "clusters" in tags and "confusion" not in tags


def test_features_that_are_not_images_skip_the_pictures_with_one_line(folders, tmp_path, capsys):
    run_dir = _train(folders / "digits.npz", tmp_path / "run")
    assert "no cluster gallery and no projector sprite: examples of shape [64] are not images" in (
        capsys.readouterr().out.splitlines())
    assert not (run_dir / pictures.GALLERY_FILE).exists() and not (run_dir / projector.SPRITE_FILE).exists()
    assert not _config(run_dir).embeddings[0].HasField("sprite")
    assert _vectors(run_dir).shape == (1797, 4)
    assert (run_dir / pictures.CONFUSION_FILE).is_file()  # a chart of counts, not of the examples
    code = train_encode.run_cli(train_encode.main, ["--run-dir", str(run_dir), "--input", str(folders / "digits.npz"),
                                                    "--output", str(tmp_path / "codes.npz"), "--gallery",
                                                    str(tmp_path / "gallery.png")])
    assert code == 2 and not (tmp_path / "codes.npz").exists()
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --gallery draws images: the model {run_dir} takes examples of shape [64]"]


def test_evaluate_writes_the_projector_of_the_examples_it_scores(labeled_run, capsys):
    flags = ["--run-dir", str(labeled_run), "--clusterers", "kmeans", "--projector", "--projector-examples", "40"]
    assert train_evaluate.run_cli(train_evaluate.main, flags) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"the Embedding Projector of 40 examples ({projector.CONFIG_FILE}) in {labeled_run}")
    metadata = _table(labeled_run / projector.METADATA_FILE)
    assert len(metadata) == 41 and _vectors(labeled_run).shape == (40, 4)
    assert sorted(path.name for path in (labeled_run / "projector").glob("h-*.index")) == ["h-2.index"]
    assert Image.open(labeled_run / projector.SPRITE_FILE).size == (7 * 8, 6 * 8)
    assert train_evaluate.run_cli(train_evaluate.main, flags[:-1] + ["0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --projector-examples must be a whole number >= 1, got 0"


def _coloured_pixels(path):
    """How many pixels of a PNG are clearly red, green and blue."""
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return [int(np.sum((pixels[..., channel] > 100) & (np.delete(pixels, channel, axis=-1) < 40).all(axis=-1)))
            for channel in range(3)]


def test_encode_draws_the_gallery_of_new_files_in_their_own_colours(labeled_run, folders, tmp_path, capsys):
    galleries = {}
    for name, folder in (("threes", folders / "rgb" / "3"), ("gray", folders / "flat")):
        galleries[name] = tmp_path / f"{name}.png"
        flags = ["--run-dir", str(labeled_run), "--input", str(folder), "--output", str(tmp_path / f"{name}.npz"),
                 "--gallery", str(galleries[name]), "--quiet"]
        assert train_encode.run_cli(train_encode.main, flags) == 0
        assert f"gallery of the 10 clusters: {galleries[name]}" in capsys.readouterr().out
    # The threes are red (3 % 3 = 0: the red channel), the flat folder gray; the run's own gallery has all three.
    red, green, blue = _coloured_pixels(galleries["threes"])
    assert red > 100 and green == blue == 0
    assert _coloured_pixels(galleries["gray"]) == [0, 0, 0]
    assert min(_coloured_pixels(labeled_run / pictures.GALLERY_FILE)) > 100
    assert Image.open(galleries["threes"]).size == Image.open(galleries["gray"]).size  # a row per served cluster


def test_projector_examples_is_a_whole_number_of_at_least_zero():
    with pytest.raises(ValueError, match="projector_examples must be a whole number >= 0, got -1"):
        RunSettings(projector_examples=-1)
