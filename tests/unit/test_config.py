import pytest

from ddnmf_tf.config import ConfigError, DDNMFConfig, derive_seed


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"layer_sizes": ()}, "layer_sizes is empty"),
        ({"layer_sizes": (500, 0, 2000)}, "layer_sizes must be positive whole numbers"),
        ({"layer_sizes": (500, -3)}, "layer_sizes must be positive whole numbers"),
        ({"layer_sizes": (500, 2.5)}, "layer_sizes must be positive whole numbers"),
        ({"rank": 0}, "rank must be a whole number >= 1"),
        ({"rank": -1}, "rank must be a whole number >= 1"),
        ({"input_dim": 0}, "input_dim must be a whole number >= 1"),
        ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
        ({"epochs": -2}, "epochs must be a whole number >= 1"),
        ({"alpha": -0.1}, "loss weight alpha must be a finite number >= 0"),
        ({"beta": -1}, "loss weight beta must be a finite number >= 0"),
        ({"gamma": float("nan")}, "loss weight gamma must be a finite number >= 0"),
        ({"alpha": float("inf")}, "loss weight alpha must be a finite number >= 0"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0"),
        ({"reconstruction_weight": -1}, "loss weight reconstruction_weight must be a finite number >= 0"),
        ({"noise_level": 1.0}, "noise_level must be in [0, 1)"),
        ({"noise_level": -0.1}, "noise_level must be in [0, 1)"),
        ({"noise_type": "pink"}, "unknown noise_type 'pink'; choose one of masking, gaussian, salt_and_pepper"),
        ({"learning_rate": 0}, "learning_rate must be a finite number > 0"),
        ({"lr_schedule": "linear"}, "unknown lr_schedule 'linear'; choose one of constant, cosine, step, warmup, restarts"),
        ({"loss_reduction": "max"}, "unknown loss_reduction 'max'; choose one of mean, sum"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError) as error:
        DDNMFConfig(**overrides)
    assert message in str(error.value)


def test_defaults_follow_the_design():
    config = DDNMFConfig()
    assert (config.input_dim, config.layer_sizes, config.rank) == (784, (500, 500, 2000), 10)
    assert (config.alpha, config.beta, config.gamma, config.reconstruction_weight) == (1.0, 0.01, 0.1, 1.0)
    assert not config.nmf_bias and not config.apposition_trains_supervisor


def test_dict_round_trip_and_unknown_keys():
    config = DDNMFConfig(layer_sizes=[20, 10], rank=3, noise_type="gaussian")
    assert config.layer_sizes == (20, 10)
    assert DDNMFConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown config keys: colour"):
        DDNMFConfig.from_dict({**config.to_dict(), "colour": "red"})


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, 1) == derive_seed(0, 1)
    assert len({derive_seed(0, 1), derive_seed(0, 2), derive_seed(1, 1), derive_seed(0, "encoder", 1)}) == 4
    assert 0 <= derive_seed(123, 4) < 2**31
