import numpy as np
import pytest
import tensorflow as tf

from ddnmf_tf.model.noise import corrupt, shift

IMAGES = np.random.default_rng(0).uniform(0.2, 1.0, size=(200, 784)).astype(np.float32)


def test_masking_zeros_about_level_of_the_pixels():
    noisy = corrupt(IMAGES, "masking", 0.3, [1, 2]).numpy()
    zeroed = noisy == 0
    assert abs(zeroed.mean() - 0.3) < 0.01
    np.testing.assert_array_equal(noisy[~zeroed], IMAGES[~zeroed])


def test_masking_rescale_divides_kept_pixels():
    noisy = corrupt(IMAGES, "masking", 0.25, [1, 2], rescale=True).numpy()
    kept = noisy != 0
    np.testing.assert_allclose(noisy[kept], IMAGES[kept] / 0.75, rtol=1e-6)


def test_gaussian_noise_has_std_level_and_stays_in_range():
    mid = np.full((200, 784), 0.5, np.float32)
    noisy = corrupt(mid, "gaussian", 0.1, [3, 4]).numpy()
    assert abs((noisy - mid).std() - 0.1) < 0.005
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert corrupt(IMAGES, "gaussian", 0.9, [3, 4]).numpy().max() <= 1


def test_salt_and_pepper_sets_half_the_fraction_to_each_extreme():
    noisy = corrupt(IMAGES, "salt_and_pepper", 0.4, [5, 6]).numpy()
    assert abs((noisy == 1).mean() - 0.2) < 0.01
    assert abs((noisy == 0).mean() - 0.2) < 0.01


@pytest.mark.parametrize("noise_type", ["masking", "gaussian", "salt_and_pepper"])
def test_noise_is_a_function_of_the_seed(noise_type):
    first = corrupt(IMAGES, noise_type, 0.2, [7, 8]).numpy()
    np.testing.assert_array_equal(first, corrupt(IMAGES, noise_type, 0.2, [7, 8]).numpy())
    assert not np.array_equal(first, corrupt(IMAGES, noise_type, 0.2, [7, 9]).numpy())
    np.testing.assert_array_equal(corrupt(IMAGES, noise_type, 0.0, [7, 8]).numpy(), IMAGES)


def test_unknown_noise_type_is_refused():
    with pytest.raises(ValueError, match="unknown noise_type 'pink'"):
        corrupt(IMAGES, "pink", 0.1, [0, 0])


@pytest.mark.parametrize("shape", [(9, 9), (9, 9, 3)])
def test_shift_moves_each_image_by_whole_pixels_within_the_bound_and_a_seed_moves_a_pair_alike(shape):
    images = np.zeros((64, *shape), np.float32)
    images[:, 4, 4] = 1.0  # one lit pixel (in every channel) at the centre
    rows = images.reshape(64, -1)
    seed = tf.constant([3, 7], tf.int64)
    moved = shift(tf.constant(rows), shape, 2, seed).numpy().reshape(64, *shape)
    lit = [np.argwhere(image[..., 0] if len(shape) == 3 else image) for image in moved]
    assert all(len(where) == 1 and np.all(np.abs(where[0] - 4) <= 2) for where in lit)  # whole pixels, within 2
    assert len({tuple(where[0]) for where in lit}) > 10  # each image draws its own move
    np.testing.assert_array_equal(moved.sum(axis=(1, 2)), images.sum(axis=(1, 2)))  # nothing blurred or lost
    again = shift(tf.constant(rows * 0.5), shape, 2, seed).numpy().reshape(64, *shape)
    np.testing.assert_array_equal(again, moved * 0.5)  # the same seed: the same move for the other copy
    other = shift(tf.constant(rows), shape, 2, tf.constant([3, 8], tf.int64)).numpy()
    assert not np.array_equal(other, moved.reshape(64, -1))
