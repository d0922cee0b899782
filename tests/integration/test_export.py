import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from ddnmf_tf import DDNMF, DDNMFConfig
from ddnmf_tf.cli import export as export_cli
from ddnmf_tf.data.preprocessing import default_preprocessing
from ddnmf_tf.inference import Served
from ddnmf_tf.model.head import ClusteringHead
from ddnmf_tf.run import checkpoints, directory, outputs
from ddnmf_tf.serving import ExportError, export_model, export_run, next_version
from tests.helpers import ROOT

UINT8_IMAGES = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
FLOAT_IMAGES = UINT8_IMAGES.reshape(6, 784).astype(np.float32) / 255
CENTERS = np.random.default_rng(1).random((4, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory of a tiny 784-16-8 | 3 model with a checkpoint and 4 cluster centres."""
    run_dir = tmp_path_factory.mktemp("run")
    model = DDNMF(DDNMFConfig(input_dim=784, layer_sizes=(16, 8), rank=3, jit_compile=False))
    model.build((None, 784))
    directory.save_config(run_dir, model.config)
    checkpoints.checkpoint_manager(run_dir, checkpoints.training_checkpoint(model, keras.optimizers.Adam())).save()
    directory.save_cluster_centers(run_dir, CENTERS)
    outputs.record(run_dir, 1, "kmeans")  # the centres are the outputs of the checkpoint ckpt-1
    return run_dir


@pytest.fixture(scope="module")
def model(run_dir):
    return checkpoints.load_model(run_dir)


@pytest.fixture(scope="module")
def version_dir(run_dir, tmp_path_factory):
    """The export of `run_dir` every read-only test looks at."""
    return export_run(run_dir, tmp_path_factory.mktemp("models") / "ddnmf")


@pytest.fixture(scope="module")
def signatures(version_dir):
    return tf.saved_model.load(str(version_dir)).signatures


def _serve_like_tf_serving(version_dir, signature_name, images):
    """Run a signature the way TF Serving does: the TF1 loader in a Session, feeding the signature's tensors."""
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        signature = tf.compat.v1.saved_model.load(session, ["serve"], str(version_dir)).signature_def[signature_name]
        fetches = {name: info.name for name, info in signature.outputs.items()}
        return session.run(fetches, {signature.inputs["images"].name: images})


def _listing(folder):
    """Every path under `folder` with its size and modification time."""
    return {path: (path.stat().st_size, path.stat().st_mtime_ns) for path in Path(folder).rglob("*")}


def _scratch_dirs(export_dir):
    return [path.name for path in Path(export_dir).iterdir() if path.name.startswith(".tmp-")]


def test_saved_model_cli_shows_the_documented_signatures(version_dir):
    shown = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir", str(version_dir), "--all"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    default = shown.split("signature_def['serving_default']:")[1].split("signature_def[")[0]
    uint8 = shown.split("signature_def['serving_uint8']:")[1].split("The MetaGraph")[0]
    assert "inputs['images'] tensor_info:\n        dtype: DT_FLOAT\n        shape: unknown_rank" in default
    assert "inputs['images'] tensor_info:\n        dtype: DT_UINT8\n        shape: unknown_rank" in uint8
    for signature in (default, uint8):
        assert "outputs['representation'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 3)" in signature
        assert "outputs['cluster'] tensor_info:\n        dtype: DT_INT64\n        shape: (-1)" in signature
        assert "outputs['cluster_distances'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 4)" in signature
        assert "Method name is: tensorflow/serving/predict" in signature


def test_a_process_without_ddnmf_tf_serves_h_and_the_nearest_centre(version_dir, model, tmp_path):
    np.save(tmp_path / "images.npy", FLOAT_IMAGES)
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import tensorflow as tf

        version_dir, images, outputs = sys.argv[1:]
        served = tf.saved_model.load(version_dir).signatures["serving_default"](images=np.load(images))
        assert "ddnmf_tf" not in sys.modules
        np.savez(outputs, **{name: value.numpy() for name, value in served.items()})
        """)
    completed = subprocess.run(
        [sys.executable, "-c", script, str(version_dir), str(tmp_path / "images.npy"), str(tmp_path / "outputs.npz")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    served = np.load(tmp_path / "outputs.npz")
    representation = model.student.representation(FLOAT_IMAGES).numpy()
    np.testing.assert_allclose(served["representation"], representation, rtol=0, atol=1e-5)
    distances = ((served["representation"][:, None, :] - CENTERS[None]) ** 2).sum(-1)
    np.testing.assert_allclose(served["cluster_distances"], distances, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(served["cluster"], distances.argmin(1))
    assert served["cluster"].dtype == np.int64
    # DEC's Student's t soft assignment on the same centres: sums to 1, largest at the nearest centre.
    kernel = 1 / (1 + distances)
    np.testing.assert_allclose(served["cluster_probabilities"], kernel / kernel.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(served["cluster_probabilities"].sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(served["cluster_probabilities"].argmax(1), served["cluster"])


def test_a_head_is_served_as_tf_serving_loads_it_with_the_library_s_own_clusters(model, tmp_path):
    head = ClusteringHead(5, hidden=(8,), seed=3)
    head.build((None, 3))
    labels = np.array([4, 3, 2, 1, 0])
    version_dir = export_model(model, tmp_path / "ddnmf", head=head, cluster_labels=labels)
    expected = Served(model, default_preprocessing(784), head=head, cluster_labels=labels).predict(UINT8_IMAGES)
    for name, images in (("serving_default", FLOAT_IMAGES), ("serving_uint8", UINT8_IMAGES)):
        served = _serve_like_tf_serving(version_dir, name, images)
        assert served.keys() == {"representation", "cluster", "cluster_probabilities", "label"}
        np.testing.assert_allclose(served["cluster_probabilities"].sum(1), 1, rtol=1e-6)
        np.testing.assert_array_equal(served["cluster"], served["cluster_probabilities"].argmax(1))
        np.testing.assert_array_equal(served["label"], labels[served["cluster"]])
        np.testing.assert_array_equal(served["cluster"], expected["cluster"])
        np.testing.assert_allclose(served["cluster_probabilities"], expected["cluster_probabilities"], atol=1e-6)


@pytest.mark.parametrize(("signature_name", "images"), [("serving_default", FLOAT_IMAGES),
                                                       ("serving_uint8", UINT8_IMAGES)])
def test_tf_serving_style_loading_gives_the_same_outputs(version_dir, signatures, signature_name, images):
    served = _serve_like_tf_serving(version_dir, signature_name, images)
    loaded = signatures[signature_name](images=images)
    assert served.keys() == {"representation", "cluster", "cluster_distances", "cluster_probabilities"}
    for name, value in served.items():
        np.testing.assert_array_equal(value, loaded[name].numpy(), err_msg=name)


@pytest.mark.parametrize("image_shape", [(28, 28), (28, 28, 1)])
def test_uint8_signature_equals_the_float_one(signatures, image_shape):
    from_uint8 = signatures["serving_uint8"](images=UINT8_IMAGES.reshape(-1, *image_shape))
    from_float = signatures["serving_default"](images=FLOAT_IMAGES)
    np.testing.assert_allclose(from_uint8["representation"], from_float["representation"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(from_uint8["cluster"], from_float["cluster"])


@pytest.mark.parametrize(("signature_name", "shape", "message"), [
    ("serving_default", (2, 5), "[2,5] is not compatible with expected shape [?,784]"),
    ("serving_default", (784,), "[784] is not compatible with expected shape [?,784]"),
    ("serving_default", (2, 784, 1), "[2,784,1] is not compatible with expected shape [?,784]"),
    ("serving_uint8", (2, 784), "[2,784] is not compatible with expected shape [?,28,28,1]"),
    ("serving_uint8", (28, 28), "[28,28] is not compatible with expected shape [?,28,28,1]"),
    ("serving_uint8", (2, 28, 27), "[2,28,27,1] is not compatible with expected shape [?,28,28,1]"),
    ("serving_uint8", (2, 28, 28, 3), "[2,28,28,3] is not compatible with expected shape [?,28,28,1]"),
])
def test_a_wrong_shape_is_a_clear_error_in_python_and_when_served(version_dir, signatures, signature_name, shape,
                                                                 message):
    images = np.zeros(shape, np.float32 if signature_name == "serving_default" else np.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        signatures[signature_name](images=images)
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        _serve_like_tf_serving(version_dir, signature_name, images)


@pytest.mark.parametrize("pixel", [np.nan, np.inf, -np.inf])
def test_a_non_finite_pixel_is_a_clear_error_in_python_and_when_served(version_dir, signatures, pixel):
    # Answered before, with H = 0.5 in every unit for a NaN row: an answer that looks valid.
    images = np.random.default_rng(4).uniform(0, 1, (3, 784)).astype(np.float32)
    images[1, 100] = pixel
    with pytest.raises(tf.errors.InvalidArgumentError, match="images must be finite: a pixel is NaN or infinite"):
        signatures["serving_default"](images=images)
    with pytest.raises(tf.errors.InvalidArgumentError, match="images must be finite: a pixel is NaN or infinite"):
        _serve_like_tf_serving(version_dir, "serving_default", images)


def test_a_tensor_of_another_dtype_is_refused_by_the_signature(signatures):
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor but is a uint8 tensor"):
        signatures["serving_default"](images=tf.zeros((2, 784), tf.uint8))


@pytest.mark.parametrize(("signature_name", "images"), [
    ("serving_default", np.zeros((0, 784), np.float32)),
    ("serving_uint8", np.zeros((0, 28, 28), np.uint8)),
    ("serving_uint8", np.zeros((0, 28, 28, 1), np.uint8)),
])
def test_an_empty_batch_gives_empty_outputs(signatures, signature_name, images):
    served = signatures[signature_name](images=images)
    assert {name: tuple(value.shape) for name, value in served.items()} == {
        "representation": (0, 3), "cluster": (0,), "cluster_distances": (0, 4), "cluster_probabilities": (0, 4)
    }


def test_a_run_without_centres_serves_h_alone(model, tmp_path):
    version_dir = export_model(model, tmp_path / "ddnmf")
    outputs = tf.saved_model.load(str(version_dir)).signatures["serving_default"].structured_outputs
    assert set(outputs) == {"representation"}


def test_versions_count_up_from_the_highest_numeric_directory(model, tmp_path):
    export_dir = tmp_path / "ddnmf"
    assert export_model(model, export_dir) == export_dir / "1"
    for name in ("7", "latest", ".tmp-new-9-stale"):
        (export_dir / name).mkdir()
    assert next_version(export_dir) == 8
    assert export_model(model, export_dir) == export_dir / "8"
    assert _scratch_dirs(export_dir) == [".tmp-new-9-stale"]


def test_the_export_dir_gets_a_models_config_for_the_docker_image(version_dir):
    assert (version_dir.parent / "models.config").read_text() == textwrap.dedent("""\
        model_config_list {
          config {
            name: "ddnmf"
            base_path: "/models/ddnmf"
            model_platform: "tensorflow"
          }
        }
        """)
    assert '"rank": 3' in (version_dir / "assets.extra" / "ddnmf_config.json").read_text()


def test_an_edited_models_config_is_kept(model, tmp_path):
    export_dir = tmp_path / "ddnmf"
    export_dir.mkdir()
    (export_dir / "models.config").write_text("edited\n")
    export_model(model, export_dir)
    assert (export_dir / "models.config").read_text() == "edited\n"


def test_an_existing_version_is_kept_without_overwrite(model, tmp_path):
    export_dir = tmp_path / "ddnmf"
    export_model(model, export_dir, CENTERS)
    before = _listing(export_dir)
    with pytest.raises(ExportError, match=f"{export_dir / '1'} already exists"):
        export_model(model, export_dir, version=1)
    assert _listing(export_dir) == before


def test_overwrite_replaces_the_version(model, tmp_path):
    export_dir = tmp_path / "ddnmf"
    export_model(model, export_dir, CENTERS)
    assert export_model(model, export_dir, version=1, overwrite=True) == export_dir / "1"
    outputs = tf.saved_model.load(str(export_dir / "1")).signatures["serving_default"].structured_outputs
    assert set(outputs) == {"representation"}
    assert sorted(path.name for path in export_dir.iterdir()) == ["1", "models.config"]


@pytest.mark.parametrize("existing_version", [False, True])
def test_a_failed_export_changes_nothing(model, tmp_path, monkeypatch, existing_version):
    export_dir = tmp_path / "ddnmf"
    export_dir.mkdir()
    if existing_version:
        export_model(model, export_dir, CENTERS)
    before = _listing(export_dir)

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(model, export_dir, version=1, overwrite=True)
    assert _listing(export_dir) == before


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"version": 0}, "version must be a whole number >= 1, got 0"),
    ({"version": "2"}, "version must be a whole number >= 1, got '2'"),
    ({"cluster_centers": np.zeros((4, 2))}, r"cluster centres must have shape \[k >= 1, rank=3\], got \[4, 2\]"),
    ({"cluster_centers": np.zeros((0, 3))}, r"got \[0, 3\]"),
])
def test_bad_arguments_are_export_errors(model, tmp_path, kwargs, message):
    with pytest.raises(ExportError, match=message):
        export_model(model, tmp_path / "ddnmf", **kwargs)
    assert not (tmp_path / "ddnmf").exists()


def test_an_unbuilt_model_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="not built"):
        export_model(DDNMF(DDNMFConfig(layer_sizes=(16, 8), rank=3)), tmp_path / "ddnmf")


def test_cli_prints_the_version_dir_and_a_keras_file_that_gives_identical_outputs(run_dir, model, tmp_path, capsys):
    export_dir, keras_path = tmp_path / "models" / "ddnmf", tmp_path / "ddnmf.keras"
    argv = ["--run-dir", str(run_dir), "--export-dir", str(export_dir), "--keras", str(keras_path)]
    assert export_cli.run_cli(export_cli.main, argv) == 0
    assert capsys.readouterr().out.splitlines() == [f"exporting the outputs of step 1 of {run_dir}",
                                                    str(export_dir / "1"), str(keras_path)]
    loaded = keras.models.load_model(keras_path)
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded(FLOAT_IMAGES), model(FLOAT_IMAGES))
    np.testing.assert_array_equal(loaded.supervisor(FLOAT_IMAGES)[-1], model.supervisor(FLOAT_IMAGES)[-1])


@pytest.mark.parametrize(("keras_name", "message"), [
    ("ddnmf.h5", "--keras path must end in .keras, got"),
    ("existing.keras", "existing.keras already exists: pass --overwrite"),
])
def test_cli_refuses_a_bad_keras_path_before_exporting(run_dir, tmp_path, capsys, keras_name, message):
    (tmp_path / "existing.keras").write_text("kept")
    argv = ["--run-dir", str(run_dir), "--export-dir", str(tmp_path / "ddnmf"), "--keras", str(tmp_path / keras_name)]
    assert export_cli.run_cli(export_cli.main, argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ddnmf").exists()
    assert (tmp_path / "existing.keras").read_text() == "kept"


def test_cli_on_a_run_without_checkpoint_fails_in_one_line(tmp_path):
    directory.save_config(tmp_path / "run", DDNMFConfig(layer_sizes=(16, 8), rank=3))
    argv = ["--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "ddnmf")]
    completed = subprocess.run([sys.executable, "-m", "export.run", *argv],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    # The other lines on stderr are TensorFlow's own start-up logs, printed before Python can silence them.
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: no checkpoint in {tmp_path / 'run' / 'checkpoints'}: train the run first"]
    assert completed.stderr.splitlines()[-1] == errors[0]
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
    assert not (tmp_path / "ddnmf").exists()


def test_cli_debug_lets_the_error_through(tmp_path):
    argv = ["--run-dir", str(tmp_path), "--export-dir", str(tmp_path / "ddnmf"), "--debug"]
    with pytest.raises(directory.RunDirError, match="config.json is missing"):
        export_cli.run_cli(export_cli.main, argv)
