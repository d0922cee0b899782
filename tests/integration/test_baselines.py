"""The paper's baselines: AE1/AE2 shapes, training through runner.run, reloading, NMF."""

import json

import numpy as np
import pytest

from ddnmf_tf import DDNMFConfig
from ddnmf_tf.baselines import (Autoencoder, autoencoder_config, build_autoencoder, load_run_model, nmf_representation,
                                train_autoencoder)
from ddnmf_tf.run.checkpoints import load_model
from ddnmf_tf.run.directory import RunDirError
from ddnmf_tf.serving import export_run
from tests.helpers import TINY_CONFIG, tiny_settings

TINY = TINY_CONFIG


def _widths(model):
    return [layer.units for layer in model.network.encoder_layers + model.network.decoder_layers]


def test_ae1_has_ddnmf_layers_with_a_code_of_width_r_and_ae2_one_encoder_layer_less():
    config = DDNMFConfig()
    assert _widths(build_autoencoder("ae1", config)) == [500, 500, 2000, 10, 2000, 500, 500, 784]
    assert _widths(build_autoencoder("ae2", config)) == [500, 500, 10, 500, 500, 784]


def test_ae1_denoises_with_ddnmfs_noise_and_ae2_sees_clean_images():
    config = DDNMFConfig(noise_level=0.3)
    assert autoencoder_config("ae1", config) == config
    assert autoencoder_config("ae2", config).noise_level == 0.0


def test_an_unknown_autoencoder_is_a_value_error():
    with pytest.raises(ValueError, match="unknown autoencoder 'ae3'"):
        build_autoencoder("ae3", TINY)


def test_autoencoder_config_round_trips():
    model = build_autoencoder("ae2", TINY)
    copy = Autoencoder.from_config(model.get_config())
    assert copy.network.layer_sizes == model.network.layer_sizes == (32, 4)


@pytest.mark.parametrize("kind", ["ae1", "ae2"])
def test_each_autoencoder_trains_through_the_runner_and_reloads(kind, data_dir, tmp_path):
    run_dir = tmp_path / kind
    model, results = train_autoencoder(kind, TINY, tiny_settings(data_dir, run_dir), log=lambda line: None)
    assert results["steps"] == 4  # 200 images in batches of 50
    assert set(results["metrics"]) == {"served", "kmeans", "gmm", "umap_kmeans", "umap_gmm"}
    assert json.loads((run_dir / "autoencoder.json").read_text()) == {"kind": kind}
    assert list(run_dir.glob("events.out.tfevents.*")) and (run_dir / "cluster_centers.npy").is_file()
    images = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    codes = model(images).numpy()
    assert codes.shape == (5, 4) and (codes >= 0).all()
    np.testing.assert_allclose(load_run_model(run_dir)(images).numpy(), codes, rtol=1e-6)
    # Exporting serves DDNMF's H: an autoencoder's run is refused, not exported as an untrained DDNMF.
    with pytest.raises(RunDirError, match=f"is a run of the {kind.upper()} baseline"):
        export_run(run_dir, tmp_path / "export")
    (run_dir / "autoencoder.json").unlink()
    with pytest.raises(RunDirError, match="lacks weights of this model"):
        load_model(run_dir)
    assert not (tmp_path / "export").exists()


def test_nmf_representation_is_seeded_non_negative_and_of_rank_r():
    rng = np.random.default_rng(0)
    train, evaluate = rng.random((60, 20)), rng.random((30, 20))
    features = nmf_representation(train, evaluate, rank=3, seed=0)
    assert features.shape == (30, 3) and (features >= 0).all()
    np.testing.assert_array_equal(features, nmf_representation(train, evaluate, rank=3, seed=0))
