"""`mmsd personalize`: a personal model from a speaker's own footage (any video, no labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmsd import cli
from mmsd.media.codec import VideoWriter, read_frames
from mmsd.models import build_model
from mmsd.models.weights import read_model, save_model

from test_train import TINY


@pytest.fixture(scope="module")
def speaker(tmp_path_factory) -> Path:
    """A tiny synthetic actor: statements 01 and 02, neutral, 320x180, ~2.4 s each, with sound."""
    out = tmp_path_factory.mktemp("speaker")
    assert cli.main(["synth", "--out", str(out), "--preset", "tiny", "--actors", "1", "--states", "neutral",
                     "--statements", "1", "2", "--workers", "1", "--quiet"]) == 0
    return out / "Actor_01"


@pytest.fixture(scope="module")
def general(tmp_path_factory) -> Path:
    """A tiny MMSD-Net, untrained and off by a colour cast (+0.08 on every output pixel), so that a
    few fine-tuning steps on anyone's footage show a clear gain: the 'general model' to start from."""
    torch.manual_seed(0)
    state = build_model("mmsd", TINY).state_dict()
    state["reconstruction.up.to_rgb.bias"] += 0.08
    path = tmp_path_factory.mktemp("general") / "general.safetensors"
    save_model(path, name="mmsd", config=TINY, state=state)
    return path


def _statement(speaker: Path, n: int) -> Path:
    return next(speaker.glob(f"01-01-01-01-{n:02d}-01-01.mp4"))


def test_personal_model_gains_on_a_sentence_it_never_saw(speaker, general, tmp_path, one_thread):
    from mmsd.data.prepare import prepare_corpus
    from mmsd.evaluation.tables import group_means
    from mmsd.restore.restorer import Restorer
    from mmsd.training.finetune import compare
    from mmsd.training.personalize import personalize

    out = tmp_path / "me.safetensors"
    result = personalize([_statement(speaker, 1)], base=str(general), out=out, iterations=16, lr=3e-3, crfs=(32,),
                         validations=2, batch_size=4, patch=16, num_workers=0, progress=False)
    # the held-out slice picked a tuned checkpoint over the starting weights, and says by how much
    assert result.best_iteration > 0 and result.tuned[32] > result.general[32]
    name, config, _, info = read_model(out)
    assert name == "mmsd" and config == TINY
    tuned_on = info["personalized"]
    assert tuned_on["from_file"] == str(general) and tuned_on["iterations"] == 16
    assert tuned_on["train_config"]["patch"] == 16 and tuned_on["crop"] == "head"
    (video,) = tuned_on["videos"]
    assert video["file"] == "01-01-01-01-01-01-01.mp4" and video["held_out_frames"] == round(0.2 * video["frames"])
    assert tuned_on["held_out_face_psnr"]["32"]["gain_db"] == pytest.approx(result.tuned[32] - result.general[32])
    assert Restorer(str(out)).config == config

    # statement 02 as `mmsd prepare` makes it from the corpus: same speaker, another sentence
    corpus = tmp_path / "statement02" / "Actor_01"
    corpus.mkdir(parents=True)
    for path in speaker.glob("01-01-01-01-02-01-01.*"):
        (corpus / path.name).symlink_to(path)
    prepare_corpus(corpus.parent, tmp_path / "cache", crfs=(32,), progress=False, log=lambda line: None)
    rows = compare(tmp_path / "cache", {"general": general, "tuned": out}, actors=(1,),
                   keys=["Actor_01/01-01-01-01-02-01-01"], frames_per_clip=4, progress=False)
    means = group_means(rows, ("model", "crf"))
    assert means[("tuned", 32)]["face_psnr"] > means[("general", 32)]["face_psnr"] + 1.0


def _write(path: Path, frames) -> None:
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with VideoWriter(path, width=width, height=height, fps=30, crf=10, preset="ultrafast") as writer:
        for frame in frames:
            writer.write(frame)


def test_one_line_errors_and_nothing_written(speaker, general, tmp_path, capsys):
    good = _statement(speaker, 1)
    short = tmp_path / "short.mp4"
    _write(short, [f for _, f in zip(range(20), read_frames(good))])  # 0.67 s of the speaker
    faceless = tmp_path / "wall.mkv"
    _write(faceless, np.full((40, 96, 160, 3), 128, np.uint8))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    out = tmp_path / "me.safetensors"
    cases = {
        "unknown --from": ([str(good)], "no-such-model", out, "--from no-such-model: neither a shipped model"),
        "output is an input": ([str(good)], str(general), good, "is one of the input videos"),
        "unreadable": ([str(good), str(garbage)], str(general), out, "garbage.mp4"),
        "no face": ([str(faceless)], str(general), out, "wall.mkv: no face found in the first 5 frames"),
        "too short": ([str(short)], str(general), out, "short.mp4: 0.67 s, 20 frames of footage; need at least 1 s"),
        "patch too small": ([str(good), "--patch", "4"], str(general), out, "--patch must be >= 8, got 4"),
        # checked before any footage is read: the faceless video would fail later
        "unknown part": ([str(faceless), "--tune-only", "lips"], str(general), out, "no part lips to tune; this network"),
    }
    for case, (videos, base, output, message) in cases.items():
        code = cli.main(["personalize", *videos, "--from", base, "-o", str(output), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 1, case
        assert err.startswith("mmsd personalize: error: ") and message in err and err.count("\n") == 1, case
        assert not out.exists(), case
    assert good.stat().st_size > 0 and [p.name for p in tmp_path.iterdir() if p.suffix == ".safetensors"] == []


def test_a_small_face_is_cut_at_its_own_scale_not_magnified(speaker, tmp_path):
    from mmsd.training.personalize import read_footage

    far = tmp_path / "far.mp4"  # the speaker's 320x180 frames in the middle of a 960x540 frame: a small face
    _write(far, [np.pad(f, ((180, 180), (320, 320), (0, 0)), constant_values=90)
                 for _, f in zip(range(32), read_frames(_statement(speaker, 1)))])
    zoom, head = read_footage(far, "head-zoom").crop, read_footage(far, "head").crop
    x0, y0, x1, y1 = zoom.box
    assert y1 - y0 < 288  # the paper's head crop would be magnified to 480x288 ...
    bx0, by0, bx1, by1 = head.box
    assert (bx1 - bx0, by1 - by0) == (480, 288)  # ... personalize's keeps the source's pixels instead
    assert bx0 <= x0 and by0 <= y0 and x1 <= bx1 and y1 <= by1 and head.face == zoom.face


def test_native_crop_keeps_the_face_at_the_size_a_call_restores_it(speaker, tmp_path):
    from mmsd.data.degrade import crop_resize
    from mmsd.training.personalize import read_footage

    # a 352x288 (CIF) video holds no 480x288 head crop: neither 'native' nor 'head' magnifies it (reflected sides)
    cif = tmp_path / "cif.mp4"
    frames = [np.pad(f, ((54, 54), (16, 16), (0, 0)), constant_values=90)  # the speaker's 320x180 frames
              for _, f in zip(range(32), read_frames(_statement(speaker, 1)))]
    _write(cif, frames)
    zoom, head, crop = (read_footage(cif, kind).crop for kind in ("head-zoom", "head", "native"))
    x0, y0, x1, y1 = zoom.box
    assert x1 - x0 < 480 and head == crop and crop.face == zoom.face
    nx0, ny0, nx1, ny1 = crop.box
    assert (nx1 - nx0, ny1 - ny0) == (480, 288) and (nx0, ny0, nx1) == (-64, 0, 416)  # centred, overhanging
    hr = crop_resize(np.stack(frames[:2]), crop)
    assert hr.shape == (2, 288, 480, 3)
    assert np.array_equal(hr[:, :, 64:416], np.stack(frames[:2]))  # the source's pixels, unscaled
    assert np.array_equal(hr[:, :, 63], hr[:, :, 65])  # the overhang mirrors the frame's edge


def test_footage_is_split_in_time_and_cut_into_entries():
    from fractions import Fraction

    from mmsd.data.degrade import FaceCrop
    from mmsd.media.timing import FrameTiming
    from mmsd.training.personalize import Footage, _segment_timing, entry_jobs

    crop = FaceCrop(box=(0, 0, 480, 288), source="haar", face=(100, 50, 200, 150))
    long = Footage(path=Path("a.mp4"), crop=crop, timing=FrameTiming.constant(30), num_frames=700, width=480,
                   height=288, has_audio=False)
    short = Footage(path=Path("b.mp4"), crop=crop, timing=FrameTiming.constant(30), num_frames=30, width=480,
                    height=288, has_audio=True)
    jobs, train, held = entry_jobs([long, short])
    spans = {job.key: job.make_content.args[1:3] for job in jobs}
    # the last 20 % of each video is held out; entries hold at most 300 frames
    assert [spans[k] for k in train] == [(0, 280), (280, 560), (0, 24)]
    assert [spans[k] for k in held] == [(560, 700), (24, 30)]
    assert held == ["Actor_01/video01-heldout-01", "Actor_01/video02-heldout-01"]
    assert long.seconds == pytest.approx(700 / 30)
    vfr = FrameTiming(fps=Fraction(20), time_base=Fraction(1, 30), pts=(0, 1, 2, 4, 6, 9, 12))
    part = _segment_timing(vfr, 3, 7)
    assert [part.ticks(t) * part.time_base for t in range(4)] == [0, Fraction(2, 30), Fraction(5, 30), Fraction(8, 30)]
