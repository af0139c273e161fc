from __future__ import annotations

import math

import pytest

from mmsd.evaluation.bdrate import Curve, bd_rate

ANCHOR = Curve.of([100.0, 200.0, 400.0, 800.0], [30.0, 32.5, 34.0, 36.5])


def test_constant_rate_factor_gives_that_bd_rate():
    # the same quality at 80 % of the bits everywhere: BD-rate is exactly -20 %
    test = Curve.of([0.8 * r for r in ANCHOR.kbps], ANCHOR.psnr)
    result = bd_rate(ANCHOR, test)
    assert result.bd_rate == pytest.approx(-20.0, abs=1e-9)
    assert result.overlap == pytest.approx(1.0)
    assert result.note == ""


def test_psnr_shift_on_a_log_linear_curve():
    # log10(kbps) = (psnr - 30) / 10 + 2: +1 dB at equal rate is 10 ** -0.1 of the rate at equal PSNR
    anchor = Curve.of([10 ** ((p - 30) / 10 + 2) for p in (30, 33, 36, 39)], [30, 33, 36, 39])
    test = Curve.of(anchor.kbps, [p + 1.0 for p in anchor.psnr])
    result = bd_rate(anchor, test)
    assert result.bd_psnr == pytest.approx(1.0, abs=1e-9)
    assert result.bd_rate == pytest.approx((10 ** -0.1 - 1) * 100, abs=1e-9)
    assert result.overlap == pytest.approx(8 / 10)


def test_point_order_does_not_matter():
    shuffled = Curve.of([ANCHOR.kbps[i] for i in (2, 0, 3, 1)], [ANCHOR.psnr[i] for i in (2, 0, 3, 1)])
    test = Curve.of([1.25 * r for r in ANCHOR.kbps], ANCHOR.psnr)
    assert bd_rate(shuffled, test).bd_rate == pytest.approx(25.0, abs=1e-9)


def test_undefined_cases_give_nan_and_say_why():
    flat = Curve.of([100, 200, 400], [30.0, 29.0, 31.0])
    result = bd_rate(ANCHOR, flat)
    assert math.isnan(result.bd_rate) and "does not rise" in result.note
    apart = Curve.of([100, 200, 400], [50.0, 51.0, 52.0])
    result = bd_rate(ANCHOR, apart)
    assert math.isnan(result.bd_rate) and "share no PSNR" in result.note


def test_bad_curve_is_refused():
    with pytest.raises(ValueError, match="positive"):
        Curve.of([0.0, 10.0], [30.0, 31.0])
    with pytest.raises(ValueError, match="as many"):
        Curve.of([1.0, 10.0], [30.0])
