"""FrameTiming: constant rates stay exact fractions, variable rates keep every timestamp."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mmsd.media.timing import FrameTiming

NTSC = Fraction(30000, 1001)


def test_constant_rate_is_exact_for_every_frame():
    timing = FrameTiming.constant(NTSC)
    assert not timing.variable and timing.time_base == 1 / NTSC
    assert timing.seconds(30000) == 1001 and timing.period == 1 / NTSC
    assert timing.describe() == "29.970 fps"


@pytest.mark.parametrize("base, ticks", [
    (Fraction(1, 30000), lambda t: 1001 * t),  # mp4 timescale 30000: exact
    (Fraction(1, 1000), lambda t: round(t * 1001 / 30)),  # Matroska's 1 ms: 33 and 34 ms steps
])
def test_timestamps_within_a_tick_of_the_declared_rate_are_constant_rate(base, ticks):
    timing = FrameTiming.from_pts([5 + ticks(t) for t in range(300)], base, rates=[NTSC])
    assert timing == FrameTiming.constant(NTSC)


def test_variable_rate_keeps_its_timestamps_and_says_so():
    pts = [*range(30), *range(30, 120, 3)]  # 1 s at 30 fps, then 3 s at 10 fps, in 1/30 s ticks
    timing = FrameTiming.from_pts(reversed(pts), Fraction(1, 30), rates=[Fraction(30), Fraction(15)])
    assert timing.variable and timing.pts == tuple(pts)
    assert timing.seconds(30) == 1 and timing.seconds(59) == Fraction(39, 10)
    assert timing.fps == Fraction(59, 1) / Fraction(39, 10)  # the mean rate
    assert timing.intervals == (Fraction(1, 30), Fraction(1, 10)) and timing.period == Fraction(1, 30)
    assert timing.ticks(61) == 117 + 2 * 3  # past the timestamps: on at the last interval
    assert timing.describe() == "variable frame rate (15.128 fps mean, frame interval 33.3-100.0 ms)"


def test_bad_timings_are_rejected():
    with pytest.raises(ValueError, match="must be positive"):
        FrameTiming.constant(0)
    with pytest.raises(ValueError, match="start at 0 and increase"):
        FrameTiming(fps=Fraction(30), time_base=Fraction(1, 30), pts=(0, 2, 1))
    with pytest.raises(ValueError, match="needs a declared rate"):
        FrameTiming.from_pts([7], Fraction(1, 30))
    assert FrameTiming.from_pts([7], Fraction(1, 30), rates=[Fraction(25)]) == FrameTiming.constant(25)
