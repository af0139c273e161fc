"""Tiled restoration: cover a frame with overlapping tiles, restore each, blend the outputs.

Sizes are input (LR) pixels unless said otherwise; the output is `scale` times larger.
The `Restorer` (mmsd.restore.restorer) uses this so that memory follows the tile, not the frame.

* Context. A restored pixel depends on the input pixels within `receptive_radius` of it
  (the network's receptive field, counted layer by layer below). A tile's output is what the
  whole frame gives wherever the pixel lies at least that far from an edge the tile shares
  with another tile; nearer, it sees the tile's zero padding instead of the frame. Edges on
  the frame's border are the frame's own, so nothing changes there.
* Plan. Along each axis the tiles are as few as fit in `tile` pixels, of equal size (the last
  up to 3 more), start at multiples of 4 (EDVR's pyramid halves twice: a tile aligned to 4
  sees the pyramid of the frame) and overlap their neighbours by at least 2 * context + BLEND.
* Blending. A tile's weight is 0 within `context` of a shared edge, rises linearly over the
  next BLEND pixels and is 1 beyond; the weights are normalised per axis, so they sum to 1 at
  every output pixel (the tiles form a grid: the 2-D weight is the product of the two 1-D
  weights). Every output pixel is then a blend of tile outputs that equal the whole frame's;
  the ramp hides what a deformable offset reaching past the context could change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

BLEND = 8  # input pixels over which a tile's weight ramps from 0 to 1
ALIGN = 4  # tile starts are multiples of this (EDVR's pyramid: 2 halvings)
# Deformable offsets are unbounded in principle. Measured on 20 frames of the bench's synthesized clip,
# the shipped MMSD-Nets' |offset| stays under 0.36 LR pixels (mmsd; 0.11 mmsd-lowlatency), EDVR's under
# 2.9 pixels of its pyramid level; the slack covers a sample's reach past the 3x3 taps counted below.
OFFSET_SLACK = 2  # MMSD-Net, in LR pixels
EDVR_OFFSET_SLACK = 3 * 4  # EDVR: 3 pixels at its pyramid's quarter size
UNKNOWN_RADIUS = 64  # for a network this module cannot count


def receptive_radius(arch: str, config: dict) -> int:
    """Input pixels on each side of a pixel that its restored output depends on, for network `arch`
    with `config` (the dict of its config dataclass). Counted per layer, in input pixels (a 3x3 conv
    at the input's size adds 1, at 2x the size 1/2, at half the size 2), and checked against the
    support of the output's gradient (tests/test_tiling.py)."""
    if arch == "bicubic":
        return 2  # the bicubic kernel's reach
    if arch == "mmsd":
        extract = 1 + 2 * config.get("extract_blocks", 2)  # conv + residual blocks
        align = 3 + OFFSET_SLACK  # two offset-feature convs and the offset conv (the DCN's taps reach 1 + offset)
        trunk = 2 * config.get("trunk_blocks", 4) + 2 * config.get("recon_blocks", 10)
        return extract + align + trunk + 2  # + the x4 upsampler (1 + 1/2 + 1/4) or the bicubic skip (2)
    if arch == "edvr":
        # features 1 + 2 * blocks; the 3-level PCD pyramid with its cascade (34 + slack at the
        # pyramid's quarter size) and TSA's two-level spatial attention (21); the upsampler 2
        blocks = config.get("extract_blocks", 5) + config.get("reconstruct_blocks", 10)
        return 1 + 2 * blocks + 57 + EDVR_OFFSET_SLACK
    if arch == "dbpn":
        return 1 + 3 * config.get("stages", 7)  # head conv; each up/down unit reaches about 3 pixels
    return UNKNOWN_RADIUS


def overlap(context: int) -> int:
    """Least overlap of neighbouring tiles for a context: both contexts and the blending ramp."""
    return 2 * context + BLEND


def min_tile(context: int) -> int:
    """The smallest tile side that leaves room to advance past the overlap (the alignment aside)."""
    return overlap(context) + 2 * ALIGN


@dataclass(frozen=True)
class Span:
    """Input pixels [start, stop) of a tile along one axis."""

    start: int
    stop: int


def spans(length: int, tile: int, context: int) -> list[Span]:
    """Tiles along an axis of `length` input pixels: one span if the axis fits `tile` (or tile is 0),
    else the fewest equal spans of at most `tile` pixels (the last up to ALIGN - 1 more), starting at
    multiples of ALIGN, neighbours overlapping by at least `overlap(context)`."""
    if tile <= 0 or length <= tile:
        return [Span(0, length)]
    least = overlap(context) + ALIGN - 1  # the alignment moves a start down by up to ALIGN - 1
    if tile - least < 1:
        raise ValueError(f"tile {tile} is too small for context {context}: at least {min_tile(context)}")
    count = 1 + math.ceil((length - tile) / (tile - least))
    size = min(tile, math.ceil((length + (count - 1) * least) / count))
    starts = sorted({(i * (length - size)) // (count - 1) // ALIGN * ALIGN for i in range(count)})
    return [Span(s, length if s == starts[-1] else min(s + size, length)) for s in starts]


def weights(axis: list[Span], length: int, context: int, scale: int) -> list[torch.Tensor]:
    """The blending weights of each span along an axis at `scale` (output pixels per input pixel):
    Tensor[scale * (stop - start)] per span, summing to 1 over the spans at every output pixel."""
    raw = []
    for span in axis:
        centre = span.start + (torch.arange(scale * (span.stop - span.start), dtype=torch.float64) + 0.5) / scale
        weight = torch.ones_like(centre)
        if span.start > 0:
            weight *= ((centre - span.start - context) / BLEND).clamp(0.0, 1.0)
        if span.stop < length:
            weight *= ((span.stop - context - centre) / BLEND).clamp(0.0, 1.0)
        raw.append(weight)
    total = torch.zeros(scale * length, dtype=torch.float64)
    for span, weight in zip(axis, raw):
        total[scale * span.start: scale * span.stop] += weight
    if total.min() <= 0:
        raise ValueError(f"tiles {axis} leave output pixels of an axis of {length} without weight")
    return [(weight / total[scale * span.start: scale * span.stop]).float() for span, weight in zip(axis, raw)]


@dataclass(frozen=True)
class Tile:
    """One tile of a frame: input rows and columns, its blending weights at the output's scale and at
    the input's, and its box as fractions of the frame (x0, y0, x1, y1), how MMSD-Net cuts its audio maps."""

    rows: Span
    cols: Span
    row_weight: torch.Tensor  # (scale * height,)
    col_weight: torch.Tensor  # (scale * width,)
    row_input: torch.Tensor  # (height,): the weights at input pixels, for a mean over the frame
    col_input: torch.Tensor  # (width,)
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Plan:
    """How a frame of (height, width) input pixels is tiled: the tiles row by row."""

    height: int
    width: int
    scale: int
    row_spans: list[Span]
    tiles: list[Tile]

    @property
    def pixels(self) -> int:
        """Input pixels restored per frame, overlaps counted each time."""
        return sum((t.rows.stop - t.rows.start) * (t.cols.stop - t.cols.start) for t in self.tiles)


def plan(height: int, width: int, *, tile: int, context: int, scale: int) -> Plan:
    """Tile a frame of height x width input pixels into tiles of at most `tile` pixels a side (0: one tile)."""
    rows, cols = spans(height, tile, context), spans(width, tile, context)
    if len(rows) == 1 and len(cols) == 1:
        whole = Tile(rows[0], cols[0], torch.ones(scale * height), torch.ones(scale * width), torch.ones(height),
                     torch.ones(width), (0.0, 0.0, 1.0, 1.0))
        return Plan(height, width, scale, rows, [whole])
    row_weights, col_weights = weights(rows, height, context, scale), weights(cols, width, context, scale)
    row_input, col_input = weights(rows, height, context, 1), weights(cols, width, context, 1)
    tiles = [
        Tile(r, c, rw, cw, ri, ci, (c.start / width, r.start / height, c.stop / width, r.stop / height))
        for r, rw, ri in zip(rows, row_weights, row_input)
        for c, cw, ci in zip(cols, col_weights, col_input)
    ]
    return Plan(height, width, scale, rows, tiles)
