"""int8 inference (`mmsd.models.quantize`, `--precision int8`): the quantized network restores what the
float one restores, a calibration fits only its own network, and `auto` picks int8 only where it should."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mmsd.models.precision as precision
from mmsd import cli
from mmsd.errors import MmsdError
from mmsd.evaluation import metrics
from mmsd.models import build_model, load_config, quantize
from mmsd.models.weights import find_model
from mmsd.restore.restorer import Restorer

pytestmark = pytest.mark.skipif(not quantize.available(), reason="this torch has no x86 quantized engine")

TINY = dict(channels=8, radius=1, deform_groups=2, attention_channels=4, audio_hidden=8, audio_layers=1,
            audio_map_channels=4, au_hidden=8, emotion_hidden=8, recon_blocks=2, trunk_blocks=1,
            upsample_channels=8, extract_blocks=1)


def _frames(count: int, size=(24, 32)) -> np.ndarray:
    """Smooth random frames (count, H, W, 3) uint8."""
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.random((count, 3, size[0] // 4, size[1] // 4), dtype=np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
    return (smooth.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def _tiny(**changes) -> tuple[dict, torch.nn.Module]:
    config = dataclasses.asdict(load_config("small", **{**TINY, **changes}))
    torch.manual_seed(0)
    network = build_model("mmsd", config).eval()
    with torch.no_grad():  # trained-looking weights: the zero-initialised output and offset convs made non-zero
        for module in network.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.normal_(0, 0.5 / (module.in_channels * 9) ** 0.5)
    return config, network


def _restore(network, config, frames, mfcc, *, precision_name="fp32", calibration=None) -> np.ndarray:
    restorer = Restorer(network, config=config, precision=precision_name, calibration=calibration, workers=1)
    assert restorer.precision == precision_name
    return np.stack(list(restorer.restore_frames(frames, mfcc=mfcc, emotion="happy-strong")))


def test_calibrated_int8_restores_what_fp32_restores_and_leaves_the_float_network_alone(tmp_path, one_thread):
    config, network = _tiny()
    frames = _frames(4)
    mfcc = np.random.default_rng(1).standard_normal((4, 4, 20)).astype(np.float32)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    float_restorer = Restorer(network, config=config, precision="fp32", workers=1)
    calibration = quantize.calibrate(float_restorer.model, lambda: list(float_restorer.restore_frames(
        frames, mfcc=mfcc, emotion="happy-strong")))
    assert set(calibration) == set(quantize.PARTS)
    assert all(rows.shape[1] == 2 and (rows[:, 0] > 0).all() for rows in calibration.values())
    assert all(type(quantize._get(network, path)) is not quantize.Int8Part for path in quantize.PARTS)
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())

    path = tmp_path / "tiny.int8.json"
    quantize.save_calibration(calibration, path)
    int8 = _restore(network, config, frames, mfcc, precision_name="int8", calibration=path)
    fp32 = _restore(network, config, frames, mfcc)
    assert int8.shape == fp32.shape == (4, 96, 128, 3)
    assert not np.array_equal(int8, fp32)  # the int8 parts did run
    assert metrics.psnr(int8, fp32) >= 35.0  # measured 45-46 dB with the shipped mmsd-fast on real clips


def test_a_calibration_fits_only_its_own_configuration():
    config, network = _tiny()
    calibration = {path: torch.tensor([[0.05, 128.0]]) for path in quantize.PARTS}  # one row: too few
    with pytest.raises(MmsdError, match="made for another configuration"):
        quantize.quantize(network, calibration)
    with pytest.raises(MmsdError, match="lacks reconstruction.up"):
        quantize.quantize(network, {k: v for k, v in calibration.items() if k != "reconstruction.up"})
    edvr = build_model("edvr", dataclasses.asdict(load_config("small", model="edvr")))
    with pytest.raises(MmsdError, match="int8 runs MMSD-Net's convolutions; this EDVR has no video.extract"):
        quantize.quantize(edvr, calibration)


def test_auto_picks_int8_only_without_fast_bf16_and_with_a_calibration(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    assert precision.resolve("auto", "cpu", int8_ready=True) == "int8"
    assert precision.resolve("auto", "cpu", int8_ready=False) == "fp32"
    assert precision.resolve("int8", "cpu", int8_ready=True) == "int8"
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert precision.resolve("auto", "cpu", int8_ready=True) == "bf16"  # measured as fast, and validated longer
    monkeypatch.setattr(quantize, "available", lambda: False)
    with pytest.raises(MmsdError, match="x86 quantized engine"):
        precision.resolve("int8", "cpu", int8_ready=True)


def test_int8_without_a_calibration_is_a_one_line_error(tmp_path, capsys):
    from test_restore import write_clip

    from mmsd.models.weights import save_model

    config, network = _tiny()
    weights = tmp_path / "tiny.safetensors"
    save_model(weights, name="mmsd", config=config, state=network.state_dict())
    src = tmp_path / "low.mp4"
    write_clip(src, frames=3, audio=False)
    assert cli.main(["decode", str(src), "-o", str(tmp_path / "out.mp4"), "--model", str(weights), "--precision",
                     "int8", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "has no int8 calibration" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.mp4").exists()
    assert Restorer("bicubic", precision="int8").precision == "fp32"  # nothing to quantize
    with pytest.raises(SystemExit):  # training has no int8
        cli.main(["train", "--precision", "int8"])


def test_the_shipped_default_decodes_in_int8_close_to_fp32(one_thread):
    """`mmsd-fast` with its shipped calibration: int8 within 35 dB of fp32 on smooth random frames."""
    if find_model("mmsd-fast") is None or not quantize.calibration_path(find_model("mmsd-fast")).is_file():
        pytest.skip("mmsd-fast or its int8 calibration is not shipped")
    frames = _frames(3, size=(32, 48))
    mfcc = np.random.default_rng(1).standard_normal((3, 4, 20)).astype(np.float32)
    outputs = {}
    for name in ("fp32", "int8"):
        restorer = Restorer("mmsd-fast", precision=name, workers=1)
        assert restorer.precision == name
        outputs[name] = np.stack(list(restorer.restore_frames(frames, mfcc=mfcc, emotion="neutral")))
    assert metrics.psnr(outputs["int8"], outputs["fp32"]) >= 35.0


def test_quantizing_does_not_import_the_compiler_stack():
    """FX records source traces by default, which imports torch._dynamo / _inductor (1,200 modules, seconds of
    every int8 decode's start-up); `quantize` turns that off."""
    code = ("import sys, torch, test_quantize as t; from mmsd.models import quantize; config, net = t._tiny(); "
            "quantize.quantize(net, {p: torch.tensor([[0.05, 64.0]] * n) for p, n in t._observer_counts(net).items()}); "
            "print(sorted(m for m in ('torch._dynamo', 'torch._inductor') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _observer_counts(network) -> dict[str, int]:
    """How many activation scales each part of `network` needs (a calibration's row counts)."""
    return {path: len(list(quantize._named_observers(quantize._prepare(quantize._get(network, path)))))
            for path in quantize.PARTS}
