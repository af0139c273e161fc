"""Tiled restoration (mmsd.restore.tiling, Restorer(tile=...)): the plan, the receptive radius, tiled against
whole-frame outputs, and the guard on large outputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mmsd.cli import main
from mmsd.errors import MmsdError
from mmsd.media.codec import VideoWriter, probe
from mmsd.models import build_model, load_config
from mmsd.restore import tiling
from mmsd.restore.restorer import Restorer

TINY = dict(channels=8, deform_groups=2, attention_channels=8, audio_hidden=8, audio_layers=1, au_hidden=8,
            emotion_hidden=8, recon_blocks=1, trunk_blocks=1, upsample_channels=8, extract_blocks=1)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiles are small: one thread restores them faster than two on a shared CPU (docs/speed.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_mmsd(**overrides) -> tuple[torch.nn.Module, dict]:
    """A small MMSD-Net with every weight moved off its zero/identity init and a strong output layer,
    so every branch and every layer's reach shows in the output (by tens of grey levels)."""
    config = dataclasses.asdict(load_config("small", **(TINY | overrides)))
    torch.manual_seed(0)
    model = build_model("mmsd", config).eval()
    for p in model.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    model.reconstruction.up.to_rgb.weight.data.mul_(10.0)
    return model, config


def face_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """A real portrait (scikit-image's astronaut), shrunk, moving a pixel per frame: content with edges."""
    from skimage import data

    from mmsd.data.degrade import resize

    image = resize(data.astronaut(), 2 * width, 2 * height)
    return [np.ascontiguousarray(image[t: t + height, 2 * t: 2 * t + width]) for t in range(count)]


def restore(restorer: Restorer, frames: list[np.ndarray]) -> np.ndarray:
    mfcc = np.random.default_rng(1).standard_normal((len(frames), 4, 20)).astype(np.float32)
    return np.stack(list(restorer.restore_frames(frames, mfcc=mfcc, emotion="happy-strong"))).astype(int)


def seams(restorer: Restorer, height: int, width: int) -> np.ndarray:
    """(sH, sW) bool: the output pixels where neighbouring tiles are blended (a tile's weight between 0 and 1)."""
    s = restorer.scale
    rows, cols = np.zeros(s * height, bool), np.zeros(s * width, bool)
    for tile in restorer.plan(height, width).tiles:
        rows[s * tile.rows.start: s * tile.rows.stop] |= ((tile.row_weight > 0) & (tile.row_weight < 1)).numpy()
        cols[s * tile.cols.start: s * tile.cols.stop] |= ((tile.col_weight > 0) & (tile.col_weight < 1)).numpy()
    return rows[:, None] | cols[None, :]


@pytest.mark.parametrize("length", [1, 7, 72, 100, 101, 192, 193, 333, 640, 1080, 1921])
@pytest.mark.parametrize("tile, context", [(0, 24), (64, 24), (100, 14), (192, 24), (256, 38)])
def test_spans_cover_the_axis_aligned_with_enough_overlap_and_weights_summing_to_one(length, tile, context):
    axis = tiling.spans(length, tile, context)
    assert axis[0].start == 0 and axis[-1].stop == length
    if tile == 0 or length <= tile:
        assert axis == [tiling.Span(0, length)]
    for span in axis:
        assert span.start % tiling.ALIGN == 0 and span.stop - span.start <= max(tile, length if not tile else 0) + 3
    for left, right in zip(axis, axis[1:]):
        assert left.start < right.start and left.stop - right.start >= tiling.overlap(context)
    for scale in (1, 4):
        total = torch.zeros(scale * length)
        for span, weight in zip(axis, tiling.weights(axis, length, context, scale)):
            centre = (torch.arange(scale * span.start, scale * span.stop) + 0.5) / scale
            inner = ((centre - span.start < context) & (span.start > 0)
                     | (span.stop - centre < context) & (span.stop < length))
            assert not weight[inner].any()  # nothing from where a tile sees its own edge
            total[scale * span.start: scale * span.stop] += weight
        assert torch.allclose(total, torch.ones_like(total))


def support_radius(model: torch.nn.Module, config: dict, size: int) -> int:
    """How far from the centre pixel the input pixels reach that its output depends on (gradient support),
    with f_V's frame mean held fixed, as tiles get it."""
    t = 2 * config["radius"] + 1
    lr = torch.rand(1, t, 3, size, size, requires_grad=True)
    extra = {}
    if config.get("audio"):
        extra["mfcc"] = torch.randn(1, t, 4, 20)
    if config.get("emotion"):
        extra |= {"emotion": torch.tensor([3]), "pooled": torch.zeros(1, config["channels"])}
    centre = size // 2
    model(lr, **extra).image[0, :, 4 * centre: 4 * centre + 4, 4 * centre: 4 * centre + 4].sum().backward()
    rows, cols = torch.nonzero(lr.grad.abs().sum(dim=(0, 1, 2)), as_tuple=True)
    assert 0 < rows.min() and rows.max() < size - 1 and 0 < cols.min() and cols.max() < size - 1  # not cut off
    return max((rows - centre).abs().max().item(), (cols - centre).abs().max().item())


@pytest.mark.parametrize("arch, overrides", [
    ("mmsd", dict(TINY, recon_blocks=3)), ("mmsd", dict(TINY, causal=True, extract_blocks=2)),
    ("dbpn", dict(features=4, channels=4, stages=3)),
])
def test_the_receptive_radius_bounds_the_gradient_support(arch, overrides):
    config = dataclasses.asdict(load_config("small", model=arch, **overrides))
    torch.manual_seed(0)
    model = build_model(arch, config).eval()
    for p in model.parameters():
        p.data.normal_(0.0, 0.05)  # no zero layer hides a reach
    radius = tiling.receptive_radius(arch, config)
    measured = support_radius(model, config, size=2 * radius + 9)
    assert radius - tiling.OFFSET_SLACK - 1 <= measured <= radius


@pytest.mark.parametrize("height, width, causal", [(61, 131, False), (97, 75, True)])
def test_tiled_equals_whole_frame_restoration_at_odd_sizes_and_too_little_overlap_shows_at_the_seams(
        height, width, causal):
    # fp32: bf16 rounding, which this random-weight model amplifies to several grey levels (and a tile
    # rounds differently from the whole frame), would hide what is checked here, the tiling itself
    model, config = tiny_mmsd(causal=causal)
    frames = face_frames(3, height, width)
    whole = restore(Restorer(model, config=config, tile=0, precision="fp32"), frames)
    restorer = Restorer(model, config=config, tile=64, precision="fp32")
    assert len(restorer.plan(height, width).tiles) >= 4
    tiled = restore(restorer, frames)
    assert tiled.shape == whole.shape == (3, 4 * height, 4 * width, 3)
    assert np.abs(tiled - whole).max() <= 1  # float rounding only, seams included: no seam
    assert (tiled != whole).mean() < 1e-3

    short = Restorer(model, config=config, tile=64, precision="fp32")
    short.context = 2  # less overlap than the network reaches
    error = np.abs(restore(short, frames) - whole).max(axis=(0, 3))  # (sH, sW)
    blended = seams(short, height, width)
    assert error[blended].max() > 8 and error[~blended].max() <= 1


def test_the_shipped_model_tiled_agrees_within_one_grey_level():
    frames = face_frames(3, 90, 157)
    restorer = Restorer("mmsd", tile=112)
    assert len(restorer.plan(90, 157).tiles) == 2
    tiled = restore(restorer, frames)
    assert np.abs(tiled - restore(Restorer("mmsd", tile=0), frames)).max() <= 1


def test_a_tile_larger_than_the_frame_restores_it_whole():
    model, config = tiny_mmsd()
    frames = face_frames(3, 37, 53)
    big = Restorer(model, config=config, tile=1000)
    assert len(big.plan(37, 53).tiles) == 1
    assert np.array_equal(restore(big, frames), restore(Restorer(model, config=config, tile=0), frames))


def test_the_default_tile_keeps_the_papers_frames_whole_and_a_too_small_tile_is_refused():
    restorer = Restorer("mmsd")
    assert restorer.tile >= 120 and len(restorer.plan(72, 120).tiles) == 1
    with pytest.raises(MmsdError, match=r"tile 40 is too small for model mmsd: .* at least \d+ input pixels"):
        Restorer("mmsd", tile=40)
    with pytest.raises(MmsdError, match="tile must be >= 0"):
        Restorer("mmsd", tile=-1)


def write_video(path, width: int, height: int, frames: int = 2):
    with VideoWriter(path, width=width, height=height, fps=25, crf=30, preset="ultrafast") as writer:
        for frame in range(frames):
            writer.write(np.full((height, width, 3), 40 * frame + 60, np.uint8))


def test_an_output_over_4k_is_refused_in_one_line_with_nothing_written_unless_forced(tmp_path, capsys):
    src, dst = tmp_path / "big.mp4", tmp_path / "out.mp4"
    write_video(src, 1000, 600)
    assert main(["decode", str(src), "-o", str(dst), "--model", "bicubic", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1000x600" in err[0] and "4000x2400" in err[0] and "--force" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.mp4"]
    with pytest.raises(MmsdError, match="4000x2400"):
        list(Restorer("bicubic").restore_frames([np.zeros((600, 1000, 3), np.uint8)]))

    assert main(["decode", str(src), "-o", str(dst), "--model", "bicubic", "--force", "-q"]) == 0
    info = probe(dst)
    assert (info.width, info.height, info.num_frames) == (4000, 2400, 2)
