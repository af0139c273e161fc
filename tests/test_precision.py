"""`--precision auto|fp32|bf16`: the choice (`mmsd.models.precision`), the fp32 deformable conv under
autocast, bf16 inference close to fp32, bf16 training that learns, and the front doors."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

import mmsd.models.precision as precision
from mmsd import cli
from mmsd.commands import catalog
from mmsd.errors import MmsdWarning
from mmsd.evaluation import metrics
from mmsd.models import build_model, load_config
from mmsd.models.deform import modulated_deform_conv2d
from mmsd.models.weights import find_model
from mmsd.restore.restorer import Restorer


@pytest.fixture
def fast_bf16(monkeypatch):
    """Set what the CPU detection reports: fast_bf16(True) or fast_bf16(False)."""
    return lambda value: monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: value)


# --------------------------------------------------------------------------- the choice


def test_auto_is_bf16_only_where_the_cpu_has_fast_bf16(fast_bf16):
    fast_bf16(False)
    assert precision.resolve("auto", "cpu") == "fp32"
    fast_bf16(True)
    assert precision.resolve("auto", "cpu") == "bf16"
    assert precision.resolve("fp32", "cpu") == "fp32"


def test_explicit_bf16_runs_anyway_but_warns_where_slow(fast_bf16):
    fast_bf16(False)
    with pytest.warns(MmsdWarning, match="no AMX or AVX512-BF16"):
        assert precision.resolve("bf16", "cpu") == "bf16"
    fast_bf16(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.resolve("bf16", "cpu") == "bf16"


def test_bad_precision_is_one_line_error():
    with pytest.raises(ValueError, match=r"^unknown precision 'fp16'; use auto, fp32, bf16, int8$"):
        precision.resolve("fp16")
    with pytest.raises(ValueError, match="unknown precision"):
        Restorer("bicubic", precision="half")


def test_cpu_detection_reads_torch_then_the_kernel_flags(monkeypatch, tmp_path):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # set below; a run under an ISA limit has it already
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert precision.cpu_has_fast_bf16()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert not precision.cpu_has_fast_bf16()
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # an older torch: /proc/cpuinfo
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n")
    assert precision.cpu_has_fast_bf16()
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 fma\n")
    assert not precision.cpu_has_fast_bf16()
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN told not to use them: bf16 is emulated, slow
    assert not precision.cpu_has_fast_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert precision.cpu_has_fast_bf16()


def test_cpu_topology_says_when_vcpus_are_described_as_smt_siblings(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    one = "processor\t: {}\nsiblings\t: 2\ncpu cores\t: {}\nflags\t\t: avx2\n\n"
    cpuinfo.write_text(one.format(0, 1) + one.format(1, 1))
    assert precision.cpu_topology() == "1 core x 2 threads"
    cpuinfo.write_text(one.format(0, 2) + one.format(1, 2))
    assert precision.cpu_topology() == "2 cores x 1 thread"
    cpuinfo.write_text("flags\t\t: avx2\n")  # no topology fields (some VMs, other kernels)
    assert precision.cpu_topology() == ""


def test_autocast_context():
    with precision.autocast("bf16"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.nn.functional.conv2d(torch.rand(1, 2, 4, 4), torch.rand(3, 2, 1, 1)).dtype == torch.bfloat16
    with precision.autocast("fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="resolved precision"):
        precision.autocast("auto")


# --------------------------------------------------------------------------- the deformable conv stays fp32


def _deform_inputs(requires_grad: bool):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 9, 11, generator=g)
    offset = 3 * torch.randn(2, 2 * 2 * 9, 9, 11, generator=g)
    mask = torch.rand(2, 2 * 9, 9, 11, generator=g)
    weight = torch.randn(6, 8, 3, 3, generator=g)
    bias = torch.randn(6, generator=g)
    return [t.requires_grad_(requires_grad) for t in (x, offset, mask, weight, bias)]


@pytest.mark.parametrize("grad", [False, True])
def test_deform_conv_is_fp32_under_autocast_in_both_paths(grad):
    inputs = _deform_inputs(grad)
    with torch.set_grad_enabled(grad):
        plain = modulated_deform_conv2d(*inputs)
        with precision.autocast("bf16"):
            # bf16 inputs, as the convolutions before it give them under autocast
            mixed = modulated_deform_conv2d(*(t.bfloat16() if i < 3 else t for i, t in enumerate(inputs)))
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, plain, rtol=0.05, atol=0.5)  # only the inputs' bf16 rounding differs


def test_deform_conv_samples_at_fp32_positions_under_autocast():
    """Under bf16 autocast only the final matmul is bf16: offsets of 20.4 px must not round to 1/8 px
    (bf16's step there: 20.375), which on stripes one pixel wide moves each sample by 0.025 of 0.4-0.6,
    several times what bf16 columns (a few parts in 1000) do."""
    g = torch.Generator().manual_seed(1)
    x = (torch.arange(48) % 2).float().repeat(1, 4, 48, 1)  # vertical stripes, one pixel wide
    offset = torch.zeros(1, 2 * 9, 48, 48)
    offset[:, 1::2] = 20.4  # dx, beyond 16 px
    mask = torch.ones(1, 9, 48, 48)
    weight = torch.rand(4, 4, 3, 3, generator=g).bfloat16().float()
    with torch.no_grad():
        plain = modulated_deform_conv2d(x, offset, mask, weight)
        with precision.autocast("bf16"):
            mixed = modulated_deform_conv2d(x, offset, mask, weight)
    inside = plain[..., 4:-26]  # samples that stay inside the map
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed[..., 4:-26], inside, rtol=1e-2)  # bf16 columns: a few parts in 1000


def test_deform_conv_backward_inside_autocast_gives_fp32_gradients():
    inputs = _deform_inputs(True)
    modulated_deform_conv2d(*inputs).square().sum().backward()
    expected = [t.grad.clone() for t in inputs]
    for t in inputs:
        t.grad = None
    with precision.autocast("bf16"):  # the backward inside autocast too: its matmuls must stay fp32
        modulated_deform_conv2d(*inputs).square().sum().backward()
    for t, grad in zip(inputs, expected):
        assert t.grad.dtype == torch.float32
        assert torch.allclose(t.grad, grad, rtol=1e-4, atol=1e-3)


def test_audio_maps_cut_to_a_tile_are_placed_in_fp32_under_autocast():
    """A tile's audio maps are resampled from the full frame's at the tile's box: with a bf16 grid they
    landed up to a pixel off (a tiled bf16 decode was 3x further from fp32 than an untiled one)."""
    from mmsd.models.audio import fit_maps

    g = torch.Generator().manual_seed(0)
    maps = torch.randn(2, 4, 72, 120, generator=g)
    box = torch.tensor([[0.153, 0.0, 0.626, 1.0], [0.519, 0.31, 1.0, 0.77]])
    expected = fit_maps(maps, (61, 62), box)
    with precision.autocast("bf16"):
        got = fit_maps(maps.bfloat16(), (61, 62), box)  # bf16 maps, as the layers before give them
    assert got.dtype == torch.float32
    assert (got - fit_maps(maps.bfloat16().float(), (61, 62), box)).abs().max() < 1e-6  # the maps' rounding only
    assert (got - expected).abs().max() < 0.05


# --------------------------------------------------------------------------- inference: bf16 agrees with fp32


def _frames(count: int, size=(16, 24)) -> np.ndarray:
    """Smooth random frames (count, H, W, 3) uint8, more like video than white noise (small: bf16 is
    emulated, and slow, on CPUs without it)."""
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.random((count, 3, size[0] // 4, size[1] // 4), dtype=np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
    return (smooth.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("model", ["mmsd", "edvr"])
def test_bf16_restores_what_fp32_restores(model, one_thread):
    """The shipped MMSD-Net small and EDVR small: bf16 output within 40 dB PSNR of fp32 (about 60 measured)."""
    if find_model(model) is None:
        pytest.skip(f"weights/{model}.safetensors is not shipped")
    frames = _frames(3)
    mfcc = np.random.default_rng(1).standard_normal((3, 4, 20)).astype(np.float32)
    outputs = {}
    for name in ("fp32", "bf16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MmsdWarning)  # bf16 on a CPU without it: slow, not wrong
            restorer = Restorer(model, precision=name)
        assert restorer.precision == name
        outputs[name] = np.stack(list(restorer.restore_frames(frames, mfcc=mfcc, emotion="happy-strong")))
    assert outputs["bf16"].shape == outputs["fp32"].shape == (3, 64, 96, 3)
    assert metrics.psnr(outputs["bf16"], outputs["fp32"]) >= 40.0


def test_onnx_engine_is_fp32():
    with pytest.raises(ValueError, match="onnx engine runs fp32"):
        Restorer("bicubic", engine="onnx", precision="bf16")


# --------------------------------------------------------------------------- training in bf16


def _train_tiny(name: str, steps: int = 30) -> list[float]:
    """L1 of each of `steps` Adam steps of a tiny MMSD-Net overfitting one batch, forwards at `name`."""
    config = dataclasses.asdict(load_config(
        "small", channels=8, radius=1, deform_groups=2, attention_channels=4, audio_hidden=8, audio_layers=1,
        audio_map_channels=4, au_hidden=8, emotion_hidden=8, recon_blocks=1, trunk_blocks=1, upsample_channels=8,
        extract_blocks=1,
    ))
    g = torch.Generator().manual_seed(0)
    hr = torch.nn.functional.interpolate(torch.rand(4, 3, 4, 4, generator=g), size=(32, 32), mode="bicubic",
                                         align_corners=False).clamp(0, 1)  # (B, 3, 4H, 4W)
    lr = torch.nn.functional.interpolate(hr, scale_factor=0.25, mode="area").unsqueeze(1).repeat(1, 3, 1, 1, 1)
    mfcc, emotion = torch.randn(4, 3, 4, 20, generator=g), torch.randint(0, 15, (4,), generator=g)
    torch.manual_seed(0)
    model = build_model("mmsd", config)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.5, 0.9))
    losses = []
    for _ in range(steps):
        with precision.autocast(name):
            out = model(lr, mfcc, emotion, crop=torch.tensor([[0.2, 0.2, 0.5, 0.6]] * 4))
        loss = torch.nn.functional.l1_loss(out.image.float(), hr) + 0.001 * out.au.float().square().mean()
        losses.append(loss.item())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    assert all(p.dtype == torch.float32 and (p.grad is None or p.grad.dtype == torch.float32)
               for p in model.parameters())
    return losses


def test_bf16_training_lowers_the_loss_like_fp32(one_thread):
    fp32, bf16 = _train_tiny("fp32"), _train_tiny("bf16")
    assert fp32[0] == pytest.approx(bf16[0], rel=0.01)  # the same start, up to bf16 rounding
    assert fp32[-1] < 0.95 * fp32[0] and bf16[-1] < 0.95 * bf16[0]  # measured: -9% and -14%
    assert bf16[-1] < fp32[-1] + 0.25 * (fp32[0] - fp32[-1])  # learns at least about as fast


def test_trainer_runs_bf16_with_the_cgan_and_keeps_fp32_weights(prepared_cache, tmp_path, one_thread):
    from test_train import TINY, tiny_config

    from mmsd.models.weights import read_model
    from mmsd.training.train import Trainer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MmsdWarning)
        trainer = Trainer(model_name="mmsd", model_config=TINY, cfg=tiny_config(iterations=2, gan=True, adv_start=0),
                          cache=prepared_cache, out=tmp_path / "run", device="cpu", precision="bf16")
    assert trainer.precision == "bf16"
    validation = trainer.fit()
    assert np.isfinite(validation["mean"])
    _, _, tensors, info = read_model(tmp_path / "run" / "model.safetensors")
    assert all(t.dtype == torch.float32 for t in tensors.values() if t.is_floating_point())
    assert info["precision"] == "bf16"  # what `mmsd models` reports as "trained in"
    assert catalog.describe("run", tmp_path / "run" / "model.safetensors").precision == "bf16"


# --------------------------------------------------------------------------- front doors


@pytest.mark.parametrize("command", ["train", "finetune", "personalize", "eval", "decode", "bench"])
def test_every_front_door_takes_precision_and_rejects_a_bad_one(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert "--precision" in capsys.readouterr().out
    flag = "--precisions" if command == "bench" else "--precision"
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, flag, "fp16"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_decode_warns_in_one_line_for_bf16_on_a_slow_cpu(tmp_path, capsys, fast_bf16):
    from test_restore import write_clip

    fast_bf16(False)
    src = tmp_path / "low.mp4"
    write_clip(src, frames=4, audio=False)
    assert cli.main(["decode", str(src), "-o", str(tmp_path / "out.mp4"), "--model", "bicubic", "--precision",
                     "bf16", "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "bf16" in line]
    assert len(lines) == 1 and lines[0].startswith("mmsd decode: warning: bf16 requested, but this CPU has no")
    assert "(torch, bf16)" in captured.out
