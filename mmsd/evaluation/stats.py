"""Intervals for differences between methods, resampling test clips (issue 36).

Frames of one clip are not independent draws (same speaker, sentence, light), so the unit resampled is
the clip: each clip contributes its mean over its evaluated frames, and a bootstrap draws clips with
replacement. Seeds are not resampled: with several seeds per method, the statistic is the mean over
seeds of the per-clip difference, which averages out the run-to-run spread the interval then leaves out
(the seeds' own spread is reported beside it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    clips: int
    seeds: int

    def __str__(self) -> str:
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def clip_bootstrap(differences: np.ndarray, *, draws: int = 10_000, level: float = 0.95,
                   seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean difference.

    differences (ndarray[S, N]): per seed pair s and test clip n, method A's clip mean minus method B's
    (the same clips in every row). Statistic: the mean over clips of the mean over seeds."""
    differences = np.asarray(differences, dtype=np.float64)
    if differences.ndim == 1:
        differences = differences[None]
    if differences.ndim != 2 or differences.shape[1] < 2:
        raise ValueError(f"need (seeds, clips) differences with at least 2 clips, got shape {differences.shape}")
    per_clip = differences.mean(axis=0)  # (N,)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, per_clip.size, size=(draws, per_clip.size))
    means = per_clip[picks].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(per_clip.mean()), float(low), float(high), per_clip.size, differences.shape[0])
