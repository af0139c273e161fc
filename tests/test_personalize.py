"""`mmsd personalize`: a personal model from a speaker's own footage (any video, no labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmsd import cli
from mmsd.media.codec import VideoWriter, read_frames
from mmsd.errors import MmsdError
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
    from mmsd.evaluation.tables import group_means
    from mmsd.training.finetune import compare
    from mmsd.training.personalize import personalize
    from mmsd.data.prepare import prepare_corpus
    from mmsd.restore import Restorer

    out = tmp_path / "me.safetensors"
    result = personalize([_statement(speaker, 1)], base=str(general), out=out, iterations=16, lr=3e-3, crfs=(32,),
                         batch_size=4, patch=16, num_workers=0, progress=False)
    # the held-out stretch, sent as a call, says the tuned model is better, and by how much
    assert result.helped and result.tuned[32] > result.general[32] + 1.0
    assert result.held_out_stretches == 1 and result.held_out_frames > 0
    name, config, state, info = read_model(out)
    assert name == "mmsd" and config == TINY
    tuned_on = info["personalized"]
    assert tuned_on["from_file"] == str(general) and tuned_on["iterations"] == 16 and tuned_on["helped"] is True
    # the crops: the 320x180 frame at its smallest zoom (0.7x), LR 56x31 cut to even (4:2:0, as encode sends)
    assert tuned_on["train_config"]["patch"] == 16 and tuned_on["crop_size"] == [224, 120]
    (video,) = tuned_on["videos"]
    assert video["file"] == "01-01-01-01-01-01-01.mp4"
    assert tuned_on["held_out_face_psnr"]["32"]["gain_db"] == pytest.approx(result.tuned[32] - result.general[32])
    assert not torch.equal(state["reconstruction.up.to_rgb.bias"], read_model(general)[2]["reconstruction.up.to_rgb.bias"])
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


def test_footage_that_does_not_help_gives_the_starting_weights(speaker, general, tmp_path, one_thread, capsys):
    out = tmp_path / "me.safetensors"
    # a learning rate too small to change anything: the held-out gain is ~0, under MIN_GAIN
    code = cli.main(["personalize", str(_statement(speaker, 1)), "--from", str(general), "-o", str(out),
                     "--iterations", "2", "--lr", "1e-12", "--crf", "32", "--patch", "16", "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0 and "the footage did not help" in printed.out and "starting model's weights" in printed.out
    assert "train:" not in printed.err and "it/s" not in printed.err  # --no-progress: no training bar either
    _, _, state, info = read_model(out)
    _, _, start, _ = read_model(general)
    assert state.keys() == start.keys() and all(torch.equal(state[k], start[k]) for k in start)
    tuned_on = info["personalized"]
    assert tuned_on["helped"] is False and tuned_on["gain_db"] < 0.1 and "did not help" in tuned_on["weights"]


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
        "no face": ([str(faceless)], str(general), out, "wall.mkv: no face found"),
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


def _footage(num_frames: int, faceless: slice = slice(0), fps: int = 25, width: int = 360, height: int = 288):
    from mmsd.training.personalize import Footage
    from mmsd.media.timing import FrameTiming

    faces = np.tile([100.0, 50.0, 200.0, 150.0], (num_frames, 1))
    faces[faceless] = np.nan
    return Footage(path=Path("a.mp4"), timing=FrameTiming.constant(fps), num_frames=num_frames, width=width,
                   height=height, has_audio=False, faces=faces)


def test_held_out_stretches_are_spread_with_gaps_nothing_trains_on():
    from mmsd.training.personalize import GAP_SECONDS, SEGMENT_FRAMES, split_footage

    first, second = _footage(250), _footage(400, faceless=slice(0, 100))  # 10 s; 16 s, the first 4 without a face
    train, held = split_footage([first, second])
    # 22 s with a face: 2 stretches at even quantiles of the faced frames, 20 % of them (at most 6 s) in all
    assert [(s.video, s.start, s.stop) for s in held] == [(0, 110, 165), (1, 235, 290)]
    gap = round(GAP_SECONDS * 25)
    for span in train:
        assert 5 <= span.stop - span.start <= SEGMENT_FRAMES
        for h in held:
            assert span.video != h.video or span.stop <= h.start - gap or span.start >= h.stop + gap
    trained = {(s.video, t) for s in train for t in range(s.start, s.stop)}
    assert {(0, 0), (0, 249), (0, 110 - gap - 1), (1, 399), (1, 290 + gap)} <= trained
    assert not trained & {(0, 110 - gap), (0, 165 + gap - 1), (1, 235 - gap), (1, 290 + gap - 1)}
    assert not any((1, t) in trained for t in range(0, 100))  # no training entry without a face
    short = _footage(60)  # 2.4 s: one stretch in the middle, the gaps leave two short entries
    train, held = split_footage([short])
    assert [(s.start, s.stop) for s in held] == [(24, 36)] and [(s.start, s.stop) for s in train] == [(0, 12), (48, 60)]


def test_too_little_footage_with_a_face_is_one_line():
    from mmsd.training.personalize import split_footage

    with pytest.raises(MmsdError, match="too little footage with a face"):
        split_footage([_footage(300, faceless=slice(0, 280))])


def test_training_crops_sit_on_the_grid_the_encoder_samples():
    from mmsd.data.degrade import downsample, resize
    from mmsd.training.personalize import crop_size, grid_box

    video = _footage(10, width=962, height=541)
    # CROP (a 1.5x face taller than 360 rows would grow it), its LR size even (4:2:0, as `mmsd encode` sends)
    assert crop_size([video], zooms=(1.0,)) == (640, 360)
    small = _footage(10, width=358, height=286)
    assert crop_size([small, video], zooms=(1.0,)) == (352, 280)  # the smallest video, on the 8-px grid ...
    assert crop_size([_footage(10, width=960, height=540)], zooms=(1.0, 0.5)) == (480, 264)  # ... at the smallest zoom
    faces = np.tile([601.0, 203.0, 811.0, 413.0], (5, 1))
    crop = grid_box(faces, (640, 360), (960, 540))
    x0, y0, x1, y1 = crop.box
    assert x0 % 4 == 0 and y0 % 4 == 0 and (x1 - x0, y1 - y0) == (640, 360) and x1 <= 960 and y1 <= 540
    assert x0 <= 601 and 811 <= x1 and y0 <= 203 and 413 <= y1
    # cut there, the LR pixels are the ones `mmsd encode` makes of the whole frame (away from the crop's edges)
    rng = np.random.default_rng(0)
    frame = resize(rng.integers(0, 256, (135, 240, 3), dtype=np.uint8), 960, 540)  # a 960x540 source
    whole = resize(frame, 960 // 4, 540 // 4)  # what `mmsd encode` sends
    part = downsample(frame[y0:y1, x0:x1])
    inner = (slice(3, -3), slice(3, -3))
    assert np.abs(part[inner].astype(int) - whole[y0 // 4: y1 // 4, x0 // 4: x1 // 4][inner]).max() <= 1


def test_the_held_out_check_degrades_as_mmsd_encode_does(speaker, tmp_path):
    from mmsd.media import codec
    from mmsd.sender.encode import encode_file
    from mmsd.training.personal_score import held_out_call, sent
    from mmsd.media.sideinfo import SideInfo

    source = tmp_path / "source.mp4"  # the sender's original: frames of the speaker, near-lossless
    with VideoWriter(source, width=320, height=180, fps=30, crf=0, preset="ultrafast") as writer:
        for _, frame in zip(range(12), read_frames(_statement(speaker, 1))):
            writer.write(frame)
    frames = np.stack(list(read_frames(source)))
    call = held_out_call(frames, codec.frame_timing(source), np.zeros(0, np.float32), 16000)
    assert call.scored.all() and call.frames.shape == (12, 180, 320, 3)
    ours = np.stack(sent(call, 32, tmp_path / "held.mp4"))
    encode_file(source, tmp_path / "sent.mp4", side=SideInfo(scale=4), crf=32, progress=False)
    theirs = np.stack(list(read_frames(tmp_path / "sent.mp4")))
    assert ours.shape == theirs.shape == (12, 46, 80, 3)  # 80x45 padded to 4:2:0's even size
    assert np.abs(ours.astype(int) - theirs).mean() < 0.5  # x264's own run-to-run noise at most
