import numpy as np
import pytest

from ddnmf_tf.model import losses

RNG = np.random.default_rng(0)


def _mse(a, b):
    return np.mean(np.mean((a - b) ** 2, axis=-1))


def _features(widths, batch=5):
    return [RNG.random((batch, width)).astype(np.float32) for width in widths]


def test_symmetric_loss_is_the_mean_squared_reconstruction_error():
    x, y = _features([64, 64])
    np.testing.assert_allclose(losses.symmetric_loss(x, y), _mse(x, y), rtol=1e-5)


def test_apposition_loss_pairs_layers_with_the_plus_two_shift():
    # L = 6 supervisor layers (64-32-16 | 16-32-64 widths: 32,16,8,16,32,64), student L+2 with H (4) and X_hat (8).
    supervisor = _features([32, 16, 8, 16, 32, 64])
    student = _features([32, 16, 8, 4, 8, 16, 32, 64])
    total, per_pair = losses.apposition_loss(supervisor, student)
    expected_pairs = [_mse(supervisor[l], student[l if l < 3 else l + 2]) for l in range(6)]
    np.testing.assert_allclose([float(v) for v in per_pair], expected_pairs, rtol=1e-5)
    np.testing.assert_allclose(total, sum(expected_pairs), rtol=1e-5)


def test_apposition_pairs_skip_the_nmf_layers():
    supervisor = ["e1", "e2", "e3", "d1", "d2", "out"]
    student = ["e1", "e2", "e3", "H", "X_hat", "d1", "d2", "out"]
    assert losses.apposition_pairs(supervisor, student) == [(name, name) for name in supervisor]


@pytest.mark.parametrize("supervisor_depth, student_depth", [(5, 7), (6, 6), (4, 8)])
def test_apposition_pairs_refuse_mismatched_depths(supervisor_depth, student_depth):
    with pytest.raises(ValueError, match="eq 5 needs an even number L"):
        losses.apposition_pairs([0] * supervisor_depth, [0] * student_depth)


def test_non_negative_constraint_and_reconstruction_losses():
    x, x_hat, clean, out = _features([16, 16, 64, 64])
    np.testing.assert_allclose(losses.non_negative_constraint_loss(x, x_hat), _mse(x, x_hat), rtol=1e-5)
    np.testing.assert_allclose(losses.reconstruction_loss(clean, out), _mse(clean, out), rtol=1e-5)


def test_interpretability_loss_weights_each_term():
    total = losses.interpretability_loss(2.0, 3.0, 5.0, alpha=1.0, beta=0.01, gamma=0.5,
                                         reconstruction=7.0, reconstruction_weight=0.25)
    np.testing.assert_allclose(total, 2.0 + 0.03 + 2.5 + 1.75, rtol=1e-6)


def test_global_batch_size_divides_the_per_example_sum():
    x, y = _features([64, 64], batch=4)
    per_example_sum = np.sum(np.mean((x - y) ** 2, axis=-1))
    np.testing.assert_allclose(losses.symmetric_loss(x, y, global_batch_size=8), per_example_sum / 8, rtol=1e-5)


def test_the_sum_reduction_weighs_each_term_by_its_width():
    """The paper's squared norms: each term is its width times the mean's, so wide layers weigh more."""
    supervisor = _features([32, 16, 8, 16, 32, 64])
    student = _features([32, 16, 8, 4, 8, 16, 32, 64])
    _, means = losses.apposition_loss(supervisor, student)
    total, sums = losses.apposition_loss(supervisor, student, reduction="sum")
    widths = [32, 16, 8, 16, 32, 64]
    np.testing.assert_allclose([float(v) for v in sums], [w * float(m) for w, m in zip(widths, means)], rtol=1e-5)
    np.testing.assert_allclose(total, sum(w * float(m) for w, m in zip(widths, means)), rtol=1e-5)
    x, y = _features([64, 64], batch=4)
    for term in (losses.symmetric_loss, losses.non_negative_constraint_loss, losses.reconstruction_loss):
        np.testing.assert_allclose(term(x, y, reduction="sum"), 64 * _mse(x, y), rtol=1e-5)
    per_example_sum = np.sum(np.sum((x - y) ** 2, axis=-1))
    np.testing.assert_allclose(losses.symmetric_loss(x, y, global_batch_size=8, reduction="sum"),
                               per_example_sum / 8, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown reduction 'max'; choose one of mean, sum"):
        losses.symmetric_loss(x, y, reduction="max")
