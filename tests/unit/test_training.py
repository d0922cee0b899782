import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from ddnmf_tf import DDNMFConfig
from ddnmf_tf.training.step import DDNMFTrainer, training_batches

CLEAN = np.random.default_rng(0).random((8, 64)).astype(np.float32)
NOISY = np.clip(CLEAN + 0.1, 0, 1)


def _gradients(trainer, term):
    model = trainer.model
    with tf.GradientTape(persistent=True) as tape:
        value = trainer.compute_losses(CLEAN, NOISY)[term]
    zero = tf.UnconnectedGradients.ZERO
    supervisor = tape.gradient(value, [v.value for v in model.supervisor.trainable_variables], unconnected_gradients=zero)
    student = tape.gradient(value, [v.value for v in model.student.trainable_variables], unconnected_gradients=zero)
    return [float(tf.reduce_sum(tf.abs(g))) for g in supervisor], [float(tf.reduce_sum(tf.abs(g))) for g in student]


@pytest.mark.parametrize("term", ["ap", "nc", "rec"])
def test_student_terms_give_the_supervisor_no_gradient(small_config, term):
    supervisor, student = _gradients(DDNMFTrainer(small_config), term)
    assert all(g == 0 for g in supervisor)
    assert sum(student) > 0


def test_symmetric_loss_gives_the_student_no_gradient(small_config):
    supervisor, student = _gradients(DDNMFTrainer(small_config), "sym")
    assert all(g == 0 for g in student)
    assert all(g > 0 for g in supervisor)


def test_authors_option_lets_apposition_train_the_supervisor(small_config):
    config = DDNMFConfig(**{**small_config.to_dict(), "apposition_trains_supervisor": True})
    supervisor, _ = _gradients(DDNMFTrainer(config), "ap")
    assert all(g > 0 for g in supervisor)


def test_losses_report_every_term_and_apposition_pair(small_config):
    config = DDNMFConfig(**{**small_config.to_dict(), "alpha": 0.5, "beta": 0.01, "gamma": 2.0,
                            "reconstruction_weight": 0.25})
    terms = DDNMFTrainer(config).compute_losses(CLEAN, NOISY)
    assert set(terms) == {"sym", "ap", "nc", "rec", "total",
                          "ap/encoder_1", "ap/encoder_2", "ap/decoder_1", "ap/decoder_2"}
    pairs = sum(float(terms[f"ap/{name}"]) for name in ("encoder_1", "encoder_2", "decoder_1", "decoder_2"))
    np.testing.assert_allclose(float(terms["ap"]), pairs, rtol=1e-5)
    expected = (0.5 * float(terms["sym"]) + 0.01 * float(terms["ap"]) + 2.0 * float(terms["nc"])
                + 0.25 * float(terms["rec"]))
    np.testing.assert_allclose(float(terms["total"]), expected, rtol=1e-5)


def test_the_sum_reduction_reaches_every_term(small_config):
    means = DDNMFTrainer(small_config).compute_losses(CLEAN, NOISY)
    summed = DDNMFConfig(**{**small_config.to_dict(), "loss_reduction": "sum"})
    sums = DDNMFTrainer(summed).compute_losses(CLEAN, NOISY)  # same seed, same weights
    widths = {"sym": small_config.input_dim, "rec": small_config.input_dim, "nc": small_config.layer_sizes[-1],
              "ap/encoder_1": small_config.layer_sizes[0], "ap/decoder_2": small_config.input_dim}
    for term, width in widths.items():
        np.testing.assert_allclose(float(sums[term]), width * float(means[term]), rtol=1e-5)


def _digits():
    return load_digits().data.astype(np.float32) / 16.0


def _train_digits(steps, jit_compile):
    config = DDNMFConfig(input_dim=64, layer_sizes=(64, 64, 128), rank=10, batch_size=64,
                         seed=3, jit_compile=jit_compile)
    trainer = DDNMFTrainer(config)
    totals, epoch = [], 0
    while len(totals) < steps:
        for clean, noisy in training_batches(_digits(), config, epoch):
            totals.append(float(trainer.train_step(clean, noisy)["total"]))
            if len(totals) == steps:
                break
        epoch += 1
    return totals, trainer


def test_200_steps_on_digits_halve_the_loss_and_repeat_exactly():
    totals, trainer = _train_digits(200, jit_compile=True)
    assert int(trainer.step) == 200
    assert np.mean(totals[-10:]) < 0.5 * np.mean(totals[:3])
    again, _ = _train_digits(200, jit_compile=True)
    assert totals == again


def test_fresh_noise_changes_every_epoch_fixed_noise_does_not():
    images = _digits()[:10]
    for fixed in (False, True):
        config = DDNMFConfig(input_dim=64, layer_sizes=(8,), rank=2, batch_size=10, noise_level=0.3,
                             noise_fixed=fixed)
        (clean0, noisy0), = training_batches(images, config, 0)
        (clean1, noisy1), = training_batches(images, config, 1)
        order0, order1 = np.argsort(clean0.numpy().sum(1)), np.argsort(clean1.numpy().sum(1))
        same_noise = np.array_equal(noisy0.numpy()[order0], noisy1.numpy()[order1])
        assert same_noise == fixed
        assert not np.array_equal(clean0, clean1)  # reshuffled per epoch


def test_learning_rate_is_constant_or_a_cosine_over_the_epochs():
    from ddnmf_tf.training.step import learning_rate_at

    constant = DDNMFConfig(learning_rate=0.01, epochs=10)
    assert [learning_rate_at(constant, epoch) for epoch in (0, 5, 9)] == [0.01, 0.01, 0.01]
    cosine = DDNMFConfig(learning_rate=0.01, epochs=10, lr_schedule="cosine")
    rates = [learning_rate_at(cosine, epoch) for epoch in range(10)]
    assert rates[0] == pytest.approx(0.01) and rates[5] == pytest.approx(0.005)
    assert rates[9] == pytest.approx(0.01 * (1 + np.cos(np.pi * 0.9)) / 2, rel=1e-5)
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))


def test_step_warmup_and_restart_schedules_over_100_epochs():
    from ddnmf_tf.training.step import learning_rate_at

    def rates(schedule):
        config = DDNMFConfig(learning_rate=0.01, epochs=100, lr_schedule=schedule)
        return np.array([learning_rate_at(config, epoch) for epoch in range(100)])

    step = rates("step")  # 50 epochs at the rate, 25 at a tenth, 25 at a hundredth
    np.testing.assert_allclose(step, [0.01] * 50 + [0.001] * 25 + [0.0001] * 25, rtol=1e-6)
    warmup = rates("warmup")  # 0.001, 0.002, ..., 0.01 over the first 10 epochs, then flat
    np.testing.assert_allclose(warmup, [0.001 * (epoch + 1) for epoch in range(10)] + [0.01] * 90, rtol=1e-5)
    restarts = rates("restarts")  # four identical cosine cycles of 25 epochs, each from the full rate
    np.testing.assert_allclose(restarts.reshape(4, 25), np.tile(restarts[:25], (4, 1)), rtol=1e-5)
    np.testing.assert_allclose(restarts[:25], 0.01 * (1 + np.cos(np.pi * np.arange(25) / 25)) / 2, rtol=1e-5)
