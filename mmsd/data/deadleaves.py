"""Dead-leaves images: procedural content with the statistics of natural photographs.

Occluding disks ("leaves") dropped one over another in random order until the plane is
covered, radii drawn from a power law p(r) ~ r^-3 between `r_min` and `r_max`: the result is scale invariant with the edge and
occlusion statistics of natural images, and restoration networks trained on such images
transfer to real photographs (Achddou et al. 2021; VibrantLeaves 2025). Our choices, where
those papers leave freedom: colours are pixels sampled from the shipped natural photographs
(`mmsd.data.stills.NATURAL`), so the palette is a natural one; a third of the large leaves carry
a texture (a patch of a natural photograph, or a linear gradient) instead of a flat colour;
edges are anti-aliased by drawing at 2x and downsampling; leaves are painted front to back
(each one only where nothing covers it yet), which gives the same image as dropping them
back to front and stops as soon as the plane is covered.

`leaves_clip` moves it: the camera of `mmsd.data.stills.animate` pans over a larger canvas, and a
few foreground leaves cross the frame on their own straight paths, so neighbouring frames
carry both global and local motion for the alignment to learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mmsd.data.stills import Motion, animate


@dataclass(frozen=True)
class LeavesConfig:
    """Sizes in pixels of the canvas being drawn (before the camera's resampling)."""

    r_min: float = 3.0
    r_max: float = 150.0
    max_leaves: int = 40_000
    coverage: float = 0.995  # stop when this share of the plane is covered
    textured_share: float = 0.35  # of the leaves with r >= 12
    movers: int = 6  # foreground leaves with their own motion
    mover_speed: float = 3.0  # pixels per frame, at most


def _radii(rng: np.random.Generator, n: int, r_min: float, r_max: float) -> np.ndarray:
    """n radii with density ~ r^-3 on [r_min, r_max] (inverse CDF)."""
    u = rng.random(n)
    return 1.0 / np.sqrt(u / r_max**2 + (1 - u) / r_min**2)


def _fill(rng: np.random.Generator, size: int, palette: np.ndarray, textures: list[np.ndarray], textured: bool) -> np.ndarray:
    """A (size, size, 3) float32 patch to cut a leaf from: flat, a gradient, or a photo texture."""
    colour = palette[rng.integers(len(palette))].astype(np.float32)
    if not textured:
        return np.broadcast_to(colour, (size, size, 3))
    if textures and rng.random() < 0.7:
        tex = textures[rng.integers(len(textures))]
        h, w = tex.shape[:2]
        side = min(h, w, max(8, int(size * rng.uniform(0.5, 2.0))))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patch = cv2.resize(tex[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        return patch * (colour + 40) / (patch.mean(axis=(0, 1)) + 40)  # keep the texture, take the leaf's colour
    other = palette[rng.integers(len(palette))].astype(np.float32)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    a = rng.uniform(0, 2 * np.pi)
    g = np.cos(a) * ramp[None, :, None] + np.sin(a) * ramp[:, None, None]
    g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
    return colour * (1 - g) + other * g


def _stamp(canvas: np.ndarray, fill: np.ndarray, cx: float, cy: float, r: float,
           cover: np.ndarray | None = None) -> None:
    """Paint one anti-aliased disk of `fill` (a square patch 2r+2 wide) at (cx, cy) onto canvas (float32).

    cover: None paints over (back to front); else the (H, W, 1) covered share so far, and the
    disk goes only where it is uncovered (front to back), updating `cover`."""
    size = fill.shape[0]
    x0, y0 = int(np.floor(cx - size / 2)), int(np.floor(cy - size / 2))
    h, w = canvas.shape[:2]
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
    if ax0 >= ax1 or ay0 >= ay1:
        return
    mask = np.zeros((2 * size, 2 * size), np.uint8)
    cv2.circle(mask, (int(round(2 * (cx - x0) * 16)), int(round(2 * (cy - y0) * 16))), int(round(2 * r * 16)),
               255, -1, cv2.LINE_AA, shift=4)
    alpha = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255
    sub = (slice(ay0 - y0, ay1 - y0), slice(ax0 - x0, ax1 - x0))
    region = canvas[ay0:ay1, ax0:ax1]
    if cover is None:
        region += alpha[sub] * (fill[sub] - region)
        return
    free = alpha[sub] * (1 - cover[ay0:ay1, ax0:ax1])
    region += free * fill[sub]
    cover[ay0:ay1, ax0:ax1] += free


def dead_leaves(rng: np.random.Generator, width: int, height: int, palette: np.ndarray,
                textures: list[np.ndarray], cfg: LeavesConfig = LeavesConfig()) -> np.ndarray:
    """One dead-leaves image (height, width, 3) uint8, painted front to back until covered."""
    canvas = np.zeros((height, width, 3), np.float32)
    cover = np.zeros((height, width, 1), np.float32)
    for i, r in enumerate(_radii(rng, cfg.max_leaves, cfg.r_min, cfg.r_max)):
        if i % 500 == 0 and cover.mean() >= cfg.coverage:
            break
        size = int(np.ceil(2 * r)) + 2
        textured = r >= 12 and rng.random() < cfg.textured_share
        fill = _fill(rng, size, palette, textures, textured)
        _stamp(canvas, fill, rng.uniform(-r, width + r), rng.uniform(-r, height + r), r, cover)
    canvas += (1 - cover) * palette[rng.integers(len(palette))].astype(np.float32)  # what no leaf reached
    return np.clip(canvas, 0, 255).round().astype(np.uint8)


def leaves_clip(rng: np.random.Generator, *, num_frames: int, palette: np.ndarray, textures: list[np.ndarray],
                width: int = 480, height: int = 288, fps: float = 30.0, cfg: LeavesConfig = LeavesConfig()) -> np.ndarray:
    """A moving dead-leaves clip (num_frames, height, width, 3) uint8: camera motion + moving leaves."""
    zoom = rng.uniform(1.0, 2.0)  # canvas pixels per output pixel: leaves at several scales
    canvas_w, canvas_h = int(width * zoom * 1.3), int(height * zoom * 1.3)
    canvas = dead_leaves(rng, canvas_w, canvas_h, palette, textures, cfg)
    frames, _ = animate(canvas, centre=(canvas_w / 2, canvas_h / 2), crop_height=height * zoom,
                        num_frames=num_frames, rng=rng, width=width, height=height, fps=fps,
                        motion=Motion(pan=0.08, zoom=0.06, roll=3.0, gain=0.04, tint=0.03, hz=0.3))
    out = frames.astype(np.float32)
    for _ in range(cfg.movers):
        r = float(_radii(rng, 1, 8.0, 60.0)[0])
        size = int(np.ceil(2 * r)) + 2
        fill = _fill(rng, size, palette, textures, rng.random() < 0.5)
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        vx, vy = rng.uniform(-cfg.mover_speed, cfg.mover_speed, 2)
        for t in range(num_frames):
            _stamp(out[t], fill, x + vx * t, y + vy * t, r)
    return np.clip(out, 0, 255).round().astype(np.uint8)
