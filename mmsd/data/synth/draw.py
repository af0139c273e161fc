"""Raster helpers of the synthetic renderers: Catmull-Rom curves, OpenCV fixed-point polygons,
anti-aliased masks, boxes, alpha painting and smooth noise. Pixel coordinates are (x, y); images (H, W).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


@functools.lru_cache(maxsize=64)
def _catmull_basis(k: int, closed: bool, n: int) -> np.ndarray:
    """Matrix B with curve = B @ points for a Catmull-Rom spline through k points."""
    segs = k if closed else k - 1
    t = np.linspace(0, 1, n, endpoint=False)
    w = 0.5 * np.stack([-t + 2 * t ** 2 - t ** 3, 2 - 5 * t ** 2 + 3 * t ** 3,
                        t + 4 * t ** 2 - 3 * t ** 3, -t ** 2 + t ** 3], 1)  # (n, 4) for p0..p3
    rows = segs * n + (0 if closed else 1)
    basis = np.zeros((rows, k))
    for i in range(segs):
        for j, wj in enumerate(w.T):
            idx = i - 1 + j
            if closed:
                basis[i * n:(i + 1) * n, idx % k] += wj
            elif idx < 0:  # phantom end points: 2 p0 - p1 and 2 p[k-1] - p[k-2]
                basis[i * n:(i + 1) * n, 0] += 2 * wj
                basis[i * n:(i + 1) * n, 1] -= wj
            elif idx >= k:
                basis[i * n:(i + 1) * n, k - 1] += 2 * wj
                basis[i * n:(i + 1) * n, k - 2] -= wj
            else:
                basis[i * n:(i + 1) * n, idx] += wj
    if not closed:
        basis[-1, k - 1] = 1.0
    return basis


def catmull(points: np.ndarray, closed: bool, n: int = 6) -> np.ndarray:
    """A Catmull-Rom curve through `points` (K, 2), n samples per segment."""
    pts = np.asarray(points, np.float64)
    return _catmull_basis(len(pts), closed, n) @ pts


def fix(pts: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> OpenCV fixed point with 4 fractional bits."""
    return np.round(np.asarray(pts) * 16).astype(np.int32).reshape(-1, 1, 2)


def poly_mask(shape_hw: tuple[int, int], pts: np.ndarray, box=None) -> np.ndarray:
    """Anti-aliased filled polygon as float32 0..1 of size shape_hw (of the box if given)."""
    mask = np.zeros(shape_hw, np.uint8)
    off = np.array([box[0], box[1]]) if box is not None else np.zeros(2)
    cv2.fillPoly(mask, [fix(pts - off)], 255, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) * (1.0 / 255.0)


def box(pts: np.ndarray, margin: float, limit_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(pts.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + margin).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, limit_hw[1]), min(y1, limit_hw[0])


def paint(img: np.ndarray, box, mask: np.ndarray, colour) -> None:
    """img[box] <- lerp(img, colour, mask); colour is (3,) or an image of the box."""
    x0, y0, x1, y1 = box
    roi = img[y0:y1, x0:x1]
    m = mask[..., None]
    roi *= 1.0 - m
    roi += m * colour


def noise(rng: np.random.Generator, hw: tuple[int, int], sigma: float) -> np.ndarray:
    n = rng.standard_normal(hw).astype(np.float32)
    if sigma > 0:
        n = cv2.GaussianBlur(n, (0, 0), sigma)
        n /= max(float(n.std()), 1e-6)
    return n
