"""Image quality metrics: pure functions on numpy arrays with explicit layout and range.

Images are (H, W, 3) RGB arrays on [0, data_range] (uint8 or float). The paper
measures PSNR and SSIM on the face region only (Sec. 4.2); `region` cuts a box out
of a frame so every metric can be taken on the face, the mouth or the whole frame.
SSIM is Wang et al.'s with an 11x11 Gaussian window (sigma 1.5), per channel and
averaged, matching scikit-image's `structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False)`.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

# BT.601 luma on [0, 255], as BasicSR's rgb2ycbcr(y_only=True)
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5: the 11x11 window


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("cannot measure an empty image")
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; inf for identical images."""
    a, b = _pair(a, b)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma (H, W) on [16, 235] from RGB (H, W, 3) on [0, 255]."""
    return image.astype(np.float64) @ _Y_WEIGHTS + 16.0


def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR on the BT.601 Y channel of RGB images on [0, 255], as BasicSR reports it."""
    return psnr(rgb_to_y(a), rgb_to_y(b), data_range=255.0)


def _ssim_channel(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    def blur(x: np.ndarray) -> np.ndarray:
        return gaussian_filter(x, sigma=_SSIM_SIGMA, truncate=_SSIM_TRUNCATE)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    pad = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)
    # the border, where the window leaves the image, is excluded as scikit-image does
    return float(ssim_map[pad:-pad, pad:-pad].mean())


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean structural similarity of (H, W) or (H, W, C) images; needs H, W >= 11."""
    a, b = _pair(a, b)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11, got {a.shape[1]}x{a.shape[0]}")
    if a.ndim == 2:
        return _ssim_channel(a, b, data_range)
    return float(np.mean([_ssim_channel(a[..., c], b[..., c], data_range) for c in range(a.shape[2])]))


def region(image: np.ndarray, box) -> np.ndarray:
    """The pixels inside box = (x0, y0, x1, y1) (exclusive end), clipped to the image."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, x1 = max(0, x0), min(width, x1)
    y0, y1 = max(0, y0), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {tuple(box)} has no pixels inside a {width}x{height} image")
    return image[y0:y1, x0:x1]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image on [0, 1] -> uint8 on [0, 255], rounded (what a viewer would see)."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
