"""PNG figures drawn with OpenCV: Fig. 6/7-style comparison grids and a rate-quality plot.

Images are (H, W, 3) uint8 RGB. Every file is written atomically (a temp file in the
same folder, renamed into place), so a killed run never leaves a half-written PNG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mmsd.media.fileio import atomic_path

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, BLACK, GREY, LIGHT = (255, 255, 255), (0, 0, 0), (110, 110, 110), (225, 225, 225)
MOUTH_COLOUR = (255, 210, 0)
# distinct, colour-blind friendly (Okabe-Ito), RGB
PALETTE = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233),
           (0, 0, 0), (240, 228, 66))
MARKERS = ("circle", "square", "triangle", "diamond")


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG through a temp file in the same folder."""
    path = Path(path)
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} {image.dtype} image as PNG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, colour=BLACK,
          thickness: int = 1) -> None:
    cv2.putText(image, text, org, FONT, scale, colour, thickness, cv2.LINE_AA)


def _fit_scale(text: str, width: int, scale: float = 0.45, minimum: float = 0.3) -> float:
    """The largest font scale <= `scale` at which `text` fits in `width` pixels."""
    while scale > minimum and cv2.getTextSize(text, FONT, scale, 1)[0][0] > width:
        scale -= 0.02
    return scale


def _centred(image: np.ndarray, text: str, x0: int, width: int, baseline_y: int) -> None:
    scale = _fit_scale(text, width - 4)
    text_w = cv2.getTextSize(text, FONT, scale, 1)[0][0]
    _text(image, text, (x0 + max(2, (width - text_w) // 2), baseline_y), scale)


# --------------------------------------------------------------------------- comparison grid


@dataclass(frozen=True)
class GridRow:
    """One row of a grid: the same frame as each column shows it (all HR size), and its mouth box."""

    label: str
    images: Sequence[np.ndarray]  # (H, W, 3) uint8 each, one per column
    mouth_box: tuple[int, int, int, int]  # x0, y0, x1, y1 in HR pixels (x1, y1 exclusive)


def _close_up(image: np.ndarray, box: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """The box, enlarged with nearest-neighbour (the pixels as they are) and centred on white."""
    img_h, img_w = image.shape[:2]
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(img_w, box[2]), min(img_h, box[3])
    panel = np.full((height, width, 3), 255, np.uint8)
    if x1 <= x0 or y1 <= y0:
        return panel
    crop = image[y0:y1, x0:x1]
    zoom = min(width / crop.shape[1], height / crop.shape[0])
    new_w, new_h = max(1, int(crop.shape[1] * zoom)), max(1, int(crop.shape[0] * zoom))
    resized = cv2.resize(crop, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    panel[top:top + new_h, left:left + new_w] = resized
    return panel


def comparison_grid(rows: Sequence[GridRow], columns: Sequence[str], *, cell_width: int = 240,
                    mouth_height: int = 120, gap: int = 4, header: int = 30, row_label: int = 22) -> np.ndarray:
    """Fig. 6/7-style grid: a header of column labels, then per row a label strip, the frames
    (downscaled to cell_width, the mouth box outlined) and beneath each its mouth close-up.

    Returns RGB uint8 of width len(columns) * (cell_width + gap) + gap.
    """
    if not rows:
        raise ValueError("a comparison grid needs at least one row")
    for row in rows:
        if len(row.images) != len(columns):
            raise ValueError(f"row {row.label!r} has {len(row.images)} images for {len(columns)} columns")
    hr_h, hr_w = rows[0].images[0].shape[:2]
    frame_h = round(cell_width * hr_h / hr_w)
    row_h = row_label + frame_h + gap + mouth_height + gap
    width = len(columns) * (cell_width + gap) + gap
    canvas = np.full((header + len(rows) * row_h + gap, width, 3), 255, np.uint8)
    for c, name in enumerate(columns):
        _centred(canvas, name, gap + c * (cell_width + gap), cell_width, header - 10)
    sx = cell_width / hr_w
    for r, row in enumerate(rows):
        top = header + r * row_h
        _text(canvas, row.label, (gap + 2, top + row_label - 7), _fit_scale(row.label, width - 8))
        for c, image in enumerate(row.images):
            if image.shape[:2] != (hr_h, hr_w):
                raise ValueError(f"row {row.label!r}, column {columns[c]!r}: image {image.shape[1]}x{image.shape[0]}"
                                 f" is not {hr_w}x{hr_h}")
            x = gap + c * (cell_width + gap)
            y = top + row_label
            frame = cv2.resize(image, (cell_width, frame_h), interpolation=cv2.INTER_AREA)
            x0, y0, x1, y1 = row.mouth_box
            cv2.rectangle(frame, (round(x0 * sx), round(y0 * sx)), (round(x1 * sx) - 1, round(y1 * sx) - 1),
                          MOUTH_COLOUR, 1)
            canvas[y:y + frame_h, x:x + cell_width] = frame
            y += frame_h + gap
            canvas[y:y + mouth_height, x:x + cell_width] = _close_up(image, row.mouth_box, cell_width, mouth_height)
    return canvas


# --------------------------------------------------------------------------- rate-quality plot


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks between 10**low and 10**high (log10 bounds); 1..9 when the range is narrow."""
    for multiples in ((1, 2, 5), range(1, 10)):
        ticks = [m * 10**k for k in range(math.floor(low), math.ceil(high) + 1) for m in multiples]
        inside = [t for t in ticks if low <= math.log10(t) <= high]
        if len(inside) >= 4:
            return inside
    return inside if len(inside) >= 2 else [10**low, 10**high]


def _marker(image: np.ndarray, kind: str, centre: tuple[int, int], colour, size: int = 5) -> None:
    x, y = centre
    if kind == "circle":
        cv2.circle(image, centre, size, colour, -1, cv2.LINE_AA)
    elif kind == "square":
        cv2.rectangle(image, (x - size + 1, y - size + 1), (x + size - 1, y + size - 1), colour, -1)
    else:
        points = ([(x, y - size - 1), (x - size, y + size - 1), (x + size, y + size - 1)] if kind == "triangle"
                  else [(x, y - size - 1), (x - size - 1, y), (x, y + size + 1), (x + size + 1, y)])
        cv2.fillPoly(image, [np.array(points, np.int32)], colour, cv2.LINE_AA)


def _label(value: float) -> str:
    return f"{value:g}" if value >= 1 else f"{value:.2g}"


def rate_quality_plot(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str = "",
                      x_label: str = "kbps (log scale)", y_label: str = "PSNR (dB)",
                      size: tuple[int, int] = (900, 560)) -> np.ndarray:
    """PSNR vs rate, one polyline with markers per method, log rate axis, grid, ticks and legend.

    curves: label -> (kbps, psnr) points (in any order; drawn by increasing rate). size is W x H.
    """
    points = {k: sorted(zip(map(float, r), map(float, q))) for k, (r, q) in curves.items() if len(r)}
    if not points:
        raise ValueError("a rate-quality plot needs at least one point")
    if any(r <= 0 for pts in points.values() for r, _ in pts):
        raise ValueError("rates must be positive for a log axis")
    width, height = size
    left, right, top, bottom = 70, 190, 40, 60
    canvas = np.full((height, width, 3), 255, np.uint8)
    rates = [math.log10(r) for pts in points.values() for r, _ in pts]
    quality = [q for pts in points.values() for _, q in pts]
    x_lo, x_hi = min(rates), max(rates)
    pad = max(0.05 * (x_hi - x_lo), 0.05)
    x_lo, x_hi = x_lo - pad, x_hi + pad
    y_step = _nice_step(max(max(quality) - min(quality), 0.5))
    y_lo = math.floor(min(quality) / y_step) * y_step
    y_hi = math.ceil(max(quality) / y_step) * y_step
    y_hi += y_step if y_hi == y_lo else 0
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(rate: float, psnr: float) -> tuple[int, int]:
        x = left + (math.log10(rate) - x_lo) / (x_hi - x_lo) * plot_w
        y = top + (y_hi - psnr) / (y_hi - y_lo) * plot_h
        return round(x), round(y)

    for tick in _log_ticks(x_lo, x_hi):
        x, _ = px(tick, y_lo)
        cv2.line(canvas, (x, top), (x, top + plot_h), LIGHT, 1)
        text = _label(tick)
        text_w = cv2.getTextSize(text, FONT, 0.4, 1)[0][0]
        _text(canvas, text, (x - text_w // 2, top + plot_h + 18), 0.4, GREY)
    y_ticks = np.arange(y_lo, y_hi + y_step / 2, y_step)
    for tick in y_ticks:
        _, y = px(10**x_lo, float(tick))
        cv2.line(canvas, (left, y), (left + plot_w, y), LIGHT, 1)
        text = f"{tick:g}"
        text_w = cv2.getTextSize(text, FONT, 0.4, 1)[0][0]
        _text(canvas, text, (left - 8 - text_w, y + 4), 0.4, GREY)
    cv2.rectangle(canvas, (left, top), (left + plot_w, top + plot_h), BLACK, 1)
    _centred(canvas, x_label, left, plot_w, height - 18)
    y_text = np.full((24, plot_h, 3), 255, np.uint8)
    _centred(y_text, y_label, 0, plot_h, 17)
    canvas[top:top + plot_h, 8:32] = np.rot90(y_text)
    if title:
        _centred(canvas, title, left, plot_w, 26)
    for i, (name, pts) in enumerate(points.items()):
        colour, marker = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
        xy = [px(r, q) for r, q in pts]
        if len(xy) > 1:
            cv2.polylines(canvas, [np.array(xy, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in xy:
            _marker(canvas, marker, p, colour)
        ly = top + 14 + 24 * i
        lx = left + plot_w + 14
        cv2.line(canvas, (lx, ly), (lx + 28, ly), colour, 2, cv2.LINE_AA)
        _marker(canvas, marker, (lx + 14, ly), colour)
        _text(canvas, name, (lx + 36, ly + 5), _fit_scale(name, right - 54))
    return canvas
