import numpy as np
import pytest

from ddnmf_tf.model.noise import corrupt

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
