"""When each video frame is shown: constant or variable frame rate, in exact ticks.

Phone recordings, screen captures and call recordings are often variable frame rate
(VFR): frames come when the scene changes or the link allows. For a talking head the
frame times are the lip sync, so every stage keeps them: `mmsd.media.codec.frame_timing` reads
them from a file, the writers write them back, and `mmsd.media.audio` cuts each frame's MFCC
at its own time.

A constant-rate video is stored as its exact rate (30000/1001, not 29.97); frame t is
at t / fps. A variable-rate video is stored as the presentation timestamps of its
frames in the stream's own time base, from frame 0. A stream whose timestamps all lie
within one tick of t / fps for its declared rate is constant rate (a 1 ms Matroska
time base rounds 30000/1001 fps to 33 and 34 ms steps; that is not a variable rate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property


@dataclass(frozen=True)
class FrameTiming:
    """Frame t is shown ``ticks(t) * time_base`` seconds after frame 0.

    Constant rate (``pts`` empty): ticks(t) = t, time_base = 1 / fps, for every t.
    Variable rate: ``pts`` holds the ticks of frames 0..T-1 (pts[0] == 0, increasing);
    frames past T (a decoder that gives more frames than the timestamps read) follow at
    the last interval. ``fps`` is the exact rate, or for a variable rate the mean rate.
    """

    fps: Fraction
    time_base: Fraction
    pts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.time_base <= 0:
            raise ValueError(f"fps and time base must be positive, got {self.fps} and {self.time_base}")
        if self.pts and (self.pts[0] != 0 or any(b <= a for a, b in zip(self.pts, self.pts[1:]))):
            raise ValueError("frame timestamps must start at 0 and increase")

    @classmethod
    def constant(cls, fps: Fraction | int) -> FrameTiming:
        """Frame t at t / fps."""
        fps = Fraction(fps)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        return cls(fps=fps, time_base=1 / fps)

    @classmethod
    def from_pts(cls, pts: Iterable[int], time_base: Fraction, *, rates: Sequence[Fraction] = ()) -> FrameTiming:
        """The timing of frames with presentation timestamps ``pts`` (ticks of ``time_base``, any order).

        Constant rate at the first of ``rates`` (the container's declared rates) that puts every
        frame within one tick of t / rate; else variable rate, the timestamps kept in the coarsest
        base that holds them exactly (ticks of 512/15360 s become ticks of 1/30 s). Fewer than
        2 frames: constant at ``rates[0]``.
        """
        time_base = Fraction(time_base)
        ticks = sorted(set(pts))
        ticks = tuple(p - ticks[0] for p in ticks) if ticks else ()
        for rate in rates:
            rate = Fraction(rate)
            if rate > 0 and all(abs(p * time_base - t / rate) <= time_base for t, p in enumerate(ticks)):
                return cls.constant(rate)
        if len(ticks) < 2:
            if not rates:
                raise ValueError("a single frame needs a declared rate")
            return cls.constant(rates[0])
        step = math.gcd(*ticks)  # the coarsest exact base: equal times compare equal whatever the container's
        mean = Fraction(len(ticks) - 1) / (ticks[-1] * time_base)
        return cls(fps=mean, time_base=time_base * step, pts=tuple(p // step for p in ticks))

    @property
    def variable(self) -> bool:
        return bool(self.pts)

    def ticks(self, t: int) -> int:
        """Timestamp of frame t in ``time_base`` ticks."""
        if t < 0:
            raise ValueError(f"frame index must be >= 0, got {t}")
        if not self.pts:
            return t
        if t < len(self.pts):
            return self.pts[t]
        last = self.pts[-1] - self.pts[-2] if len(self.pts) > 1 else round(1 / (self.fps * self.time_base))
        return self.pts[-1] + (t - len(self.pts) + 1) * last

    def seconds(self, t: int) -> Fraction:
        """Time of frame t after frame 0, exact."""
        return self.ticks(t) * self.time_base

    @property
    def period(self) -> Fraction:
        """The frame's nominal duration, the span its K MFCC vectors cover (`mmsd.media.audio`): 1 / fps,
        or for a variable rate the shortest interval (the rate the camera runs at when it does)."""
        return self.intervals[0]

    @cached_property
    def intervals(self) -> tuple[Fraction, Fraction]:
        """(shortest, longest) interval between consecutive frames, in seconds."""
        if len(self.pts) < 2:
            return 1 / self.fps, 1 / self.fps
        steps = [b - a for a, b in zip(self.pts, self.pts[1:])]
        return min(steps) * self.time_base, max(steps) * self.time_base

    def describe(self) -> str:
        """``29.970 fps`` or ``variable frame rate (15.000 fps mean, frame interval 33.3-100.0 ms)``."""
        if not self.variable:
            return f"{float(self.fps):.3f} fps"
        shortest, longest = self.intervals
        return (f"variable frame rate ({float(self.fps):.3f} fps mean, frame interval "
                f"{1000 * float(shortest):.1f}-{1000 * float(longest):.1f} ms)")
