import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mmsd.evaluation import metrics


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
    return clean, noisy


def test_psnr_matches_scikit_image_and_the_definition(pair):
    clean, noisy = pair
    assert metrics.psnr(clean, noisy) == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=255))
    flat = np.zeros((4, 4, 3))
    assert metrics.psnr(flat, flat + 1.0) == pytest.approx(20 * np.log10(255.0))
    assert metrics.psnr(clean, clean) == float("inf")


def test_ssim_matches_scikit_image_gaussian_reference(pair):
    clean, noisy = pair
    reference = structural_similarity(
        clean, noisy, channel_axis=2, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255,
    )
    assert metrics.ssim(clean, noisy) == pytest.approx(reference, abs=1e-6)
    assert metrics.ssim(clean, clean) == pytest.approx(1.0)


def test_y_channel_psnr_uses_bt601_luma():
    white = np.full((2, 2, 3), 255, np.uint8)
    assert metrics.rgb_to_y(white) == pytest.approx(np.full((2, 2), 235.0))
    assert metrics.rgb_to_y(np.zeros((2, 2, 3))) == pytest.approx(np.full((2, 2), 16.0))
    # a pure chroma change with equal luma leaves Y-PSNR infinite but RGB PSNR finite
    a = np.zeros((2, 2, 3))
    b = a.copy()
    b[..., 0], b[..., 2] = 24.966, -65.481
    assert metrics.psnr_y(a, b) == float("inf")
    assert np.isfinite(metrics.psnr(a, b))


def test_region_cuts_and_clips_the_box():
    image = np.arange(10 * 20).reshape(10, 20)
    np.testing.assert_array_equal(metrics.region(image, (2, 3, 5, 7)), image[3:7, 2:5])
    assert metrics.region(image, (-4, -4, 100, 100)).shape == (10, 20)
    with pytest.raises(ValueError, match="no pixels"):
        metrics.region(image, (25, 0, 30, 5))


def test_bad_inputs_are_rejected(pair):
    clean, _ = pair
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(clean, clean[:10])
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(clean[:8, :8], clean[:8, :8])


def test_to_uint8_rounds_and_clips():
    np.testing.assert_array_equal(metrics.to_uint8(np.array([-0.1, 0.0, 0.5, 1.2])), [0, 0, 128, 255])
