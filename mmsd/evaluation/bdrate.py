"""Bjontegaard delta rate and PSNR between two rate-quality curves (pchip, as the JVET CTC sheet).

A curve is a few (kbps, PSNR dB) points, one per CRF. BD-rate is the mean relative rate
difference of `test` against `anchor` at equal quality, over the PSNR interval both curves
cover: log10(rate) is interpolated as a function of PSNR with a piecewise cubic Hermite
(pchip) interpolant, integrated over the overlap and turned into percent,
(10 ** mean_log_diff - 1) * 100. Negative means the test method needs fewer bits.
BD-PSNR is the mean PSNR difference (dB) at equal log-rate. The interpolation itself is
the `bjontegaard` package's (imported on first use: it pulls in matplotlib).

A curve must be strictly monotone (more bits, more dB) for an interpolant to exist; a
curve that is not, or two curves that do not overlap, give NaN with the reason in `note`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """Rate-quality points of one method: rates in kbps, PSNR in dB, one per coding point."""

    kbps: tuple[float, ...]
    psnr: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.kbps) != len(self.psnr):
            raise ValueError(f"a curve needs as many rates as PSNRs, got {len(self.kbps)} and {len(self.psnr)}")
        if any(not r > 0 for r in self.kbps):
            raise ValueError(f"rates must be positive kbps, got {list(self.kbps)}")

    @classmethod
    def of(cls, kbps: Sequence[float], psnr: Sequence[float]) -> Curve:
        return cls(tuple(float(r) for r in kbps), tuple(float(p) for p in psnr))

    def sorted(self) -> Curve:
        """The points in increasing rate."""
        order = np.argsort(self.kbps, kind="stable")
        return Curve(tuple(self.kbps[i] for i in order), tuple(self.psnr[i] for i in order))

    def problem(self) -> str | None:
        """Why no interpolant exists (too few points, not monotone), or None."""
        if len(self.kbps) < 2:
            return f"needs at least 2 points, has {len(self.kbps)}"
        curve = self.sorted()
        if len(set(curve.kbps)) != len(curve.kbps):
            return "two points have the same rate"
        if any(not b > a for a, b in zip(curve.psnr, curve.psnr[1:])):
            return "PSNR does not rise strictly with rate"
        return None


@dataclass(frozen=True)
class BDResult:
    """BD-rate (%) and BD-PSNR (dB) of test vs anchor; NaN with a note when undefined."""

    bd_rate: float
    bd_psnr: float
    overlap: float  # share of the joint PSNR range that both curves cover (0..1); BD-rate integrates over it
    note: str = ""


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    low, high = max(min(a), min(b)), min(max(a), max(b))
    span = max(max(a), max(b)) - min(min(a), min(b))
    return max(high - low, 0.0) / span if span > 0 else 0.0


def bd_rate(anchor: Curve, test: Curve) -> BDResult:
    """BD-rate and BD-PSNR of `test` against `anchor` (pchip); see the module docstring."""
    import bjontegaard

    for name, curve in (("anchor", anchor), ("test", test)):
        problem = curve.problem()
        if problem:
            return BDResult(math.nan, math.nan, 0.0, f"{name} curve {problem}")
    anchor, test = anchor.sorted(), test.sorted()
    overlap = _overlap(anchor.psnr, test.psnr)
    if overlap == 0.0:
        return BDResult(math.nan, math.nan, 0.0, "the curves share no PSNR range")
    kwargs = dict(method="pchip", require_matching_points=False, min_overlap=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rate = float(bjontegaard.bd_rate(anchor.kbps, anchor.psnr, test.kbps, test.psnr, **kwargs))
        log_overlap = _overlap(np.log10(anchor.kbps), np.log10(test.kbps))
        psnr = (float(bjontegaard.bd_psnr(anchor.kbps, anchor.psnr, test.kbps, test.psnr, **kwargs))
                if log_overlap > 0 else math.nan)
    note = "" if overlap >= 0.75 else f"curves overlap on {overlap:.0%} of their PSNR range only"
    return BDResult(rate, psnr, overlap, note)
