import keras
import numpy as np
import pytest

from ddnmf_tf import DDNMF, DDNMFConfig, NMFLayer, StudentNet, SupervisorNet

X = np.random.default_rng(1).random((6, 64)).astype(np.float32)


def test_nmf_layer_outputs_are_non_negative_and_shaped():
    # Seeded, and inputs of moderate size: float32 sigmoid rounds logits beyond about +-17 to exactly 0 or 1.
    layer = NMFLayer(rank=4, kernel_initializer=keras.initializers.GlorotUniform(seed=4))
    h, x_hat = layer(np.random.default_rng(2).normal(size=(5, 16)).astype(np.float32) * 3)
    assert h.shape == (5, 4) and x_hat.shape == (5, 16)
    assert np.all((h.numpy() > 0) & (h.numpy() < 1))
    assert np.all(x_hat.numpy() >= 0)
    assert layer.encoding_kernel.shape == (16, 4) and layer.decoding_kernel.shape == (4, 16)
    assert len(layer.trainable_variables) == 2  # W' and W, no bias (the paper)


def test_nmf_layer_bias_option_and_config_round_trip():
    layer = NMFLayer(rank=3, use_bias=True, name="nmf")
    layer.build((None, 8))
    assert len(layer.trainable_variables) == 3
    clone = NMFLayer.from_config(layer.get_config())
    assert (clone.rank, clone.use_bias, clone.name) == (3, True, "nmf")
    clone.build((None, 8))
    clone.set_weights(layer.get_weights())
    x = np.random.default_rng(3).random((2, 8)).astype(np.float32)
    np.testing.assert_array_equal(clone(x)[0], layer(x)[0])


def test_networks_for_non_default_sizes(small_config):
    model = DDNMF(small_config)
    supervisor_features = model.supervisor(X)
    student_features = model.student(X)
    assert [f.shape[-1] for f in supervisor_features] == [32, 16, 32, 64]
    assert [f.shape[-1] for f in student_features] == [32, 16, 4, 16, 32, 64]
    h = model.student.representation(X).numpy()
    np.testing.assert_array_equal(h, student_features[2].numpy())
    np.testing.assert_array_equal(model(X), h)
    assert np.all((h > 0) & (h < 1)) and np.all(student_features[3].numpy() >= 0)
    assert model.supervisor.feature_names == ["encoder_1", "encoder_2", "decoder_1", "decoder_2"]


def test_default_model_has_about_3_3_million_parameters_per_network():
    model = DDNMF()
    model.build((None, 784))
    assert model.supervisor.count_params() == 3_288_784
    assert model.student.count_params() == 3_288_784 + 2 * 2000 * 10


def test_same_seed_same_weights_other_seed_other_weights(small_config):
    first, again = DDNMF(small_config), DDNMF(small_config)
    other = DDNMF(DDNMFConfig(**{**small_config.to_dict(), "seed": 1}))
    for model in (first, again, other):
        model.build((None, 64))
    for a, b in zip(first.weights, again.weights):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.student.nmf.encoding_kernel, other.student.nmf.encoding_kernel)
    assert not np.array_equal(first.supervisor.encoder_layers[0].kernel, first.student.encoder_layers[0].kernel)


@pytest.mark.parametrize("network", [SupervisorNet, StudentNet])
def test_network_config_round_trip(network):
    net = network(input_dim=64, layer_sizes=(32, 16), seed=5)
    clone = network.from_config(net.get_config())
    assert (clone.input_dim, clone.layer_sizes, clone.seed) == (64, (32, 16), 5)


def test_keras_file_round_trip_gives_identical_outputs(small_config, tmp_path):
    model = DDNMF(small_config)
    model.build((None, 64))
    path = tmp_path / "ddnmf.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.config == small_config
    np.testing.assert_array_equal(loaded(X), model(X))
    np.testing.assert_array_equal(loaded.supervisor(X)[-1], model.supervisor(X)[-1])
