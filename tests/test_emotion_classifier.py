"""The sender-side emotion classifier: network, crops, track smoothing, `train-emotion`, `encode --emotion auto`."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from mmsd import cli, emotions
from mmsd.commands import encode as encode_command
from mmsd.errors import MmsdError
from mmsd.media import sideinfo
from mmsd.media.codec import VideoWriter
from mmsd.models.bicubic import Bicubic, BicubicConfig
from mmsd.models.weights import save_model
from mmsd.sender.emotion_classifier import (EmotionClassifier, EmotionNet, EmotionNetConfig, TrackConfig,
                                            face_crop, find_face, segment_track)

CFG = EmotionNetConfig()
HAPPY = emotions.parse("happy-strong").id


def one_state(state: int, n: int, confidence: float = 0.6) -> np.ndarray:
    """n probability rows that all favour `state`."""
    probs = np.full((n, emotions.NUM_STATES), (1 - confidence) / (emotions.NUM_STATES - 1))
    probs[:, state] = confidence
    return probs


def segment_lengths(segments, num_frames: int) -> list[int]:
    starts = [first for first, _ in segments] + [num_frames]
    return list(np.diff(starts))


# --------------------------------------------------------------------------- network and crops


def test_net_maps_crops_to_state_logits():
    net = EmotionNet(CFG)
    assert net(torch.rand(5, 1, CFG.crop, CFG.crop)).shape == (5, emotions.NUM_STATES)
    assert sum(p.numel() for p in net.parameters()) < 1_000_000
    with pytest.raises(ValueError, match=r"expected crops \(B, 1, 64, 64\)"):
        net(torch.rand(5, 3, CFG.crop, CFG.crop))


def test_net_ignores_brightness_and_contrast():
    net = EmotionNet(CFG).eval()
    crops = torch.rand(3, 1, CFG.crop, CFG.crop) * 0.5
    with torch.no_grad():
        torch.testing.assert_close(net(crops), net(0.2 + 1.5 * crops), atol=1e-4, rtol=1e-4)


def test_face_crop_size_and_edges():
    frame = np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    for box in ((40.0, 20.0, 90.0, 70.0), (-10.0, -10.0, 40.0, 40.0), (130.0, 60.0, 170.0, 100.0)):
        crop = face_crop(frame, box, CFG)
        assert crop.shape == (CFG.context, CFG.context) and crop.dtype == np.uint8
    uniform = np.full((90, 160, 3), 77, np.uint8)
    assert (face_crop(uniform, (-30.0, -30.0, 30.0, 30.0), CFG) == 77).all()  # edge repeated, no black border
    with pytest.raises(ValueError, match="positive size"):
        face_crop(frame, (10.0, 10.0, 10.0, 10.0), CFG)


# --------------------------------------------------------------------------- track


def test_constant_sequence_is_one_segment():
    frames = np.arange(0, 150, 6)
    assert segment_track(one_state(HAPPY, len(frames)), frames, num_frames=150, window=30,
                         min_segment=60) == ((0, HAPPY),)


def test_two_long_states_give_two_segments_at_the_change():
    frames = np.arange(0, 300, 5)
    probs = np.concatenate([one_state(3, 30), one_state(9, 30)])  # the change at frame 150
    segments = segment_track(probs, frames, num_frames=300, window=30, min_segment=60)
    assert [state for _, state in segments] == [3, 9]
    assert abs(segments[1][0] - 150) <= 15


def test_short_blip_merges_into_its_neighbours():
    frames = np.arange(0, 300, 5)
    probs = one_state(2, 60)
    probs[28:34] = one_state(7, 6, confidence=0.9)  # 30 frames of another state
    assert segment_track(probs, frames, num_frames=300, window=0, min_segment=60) == ((0, 2),)


def test_short_segment_goes_to_the_neighbour_it_resembles():
    frames = np.arange(0, 300, 5)
    probs = np.concatenate([one_state(1, 20), one_state(4, 6), one_state(8, 34)])
    probs[20:26, 8] = 0.3  # the short run leans towards the state after it
    segments = segment_track(probs, frames, num_frames=300, window=0, min_segment=60)
    assert segments == ((0, 1), (100, 8))


@pytest.mark.parametrize("seed", range(8))
def test_random_sequences_respect_the_minimum_segment(seed):
    rng = np.random.default_rng(seed)
    num_frames = int(rng.integers(20, 600))
    frames = np.unique(np.sort(rng.choice(num_frames, size=int(rng.integers(1, num_frames)), replace=False)))
    probs = rng.dirichlet(np.full(emotions.NUM_STATES, 0.3), size=len(frames))
    min_segment = int(rng.integers(1, 120))
    segments = segment_track(probs, frames, num_frames=num_frames, window=int(rng.integers(0, 40)),
                             min_segment=min_segment)
    side = sideinfo.SideInfo(segments=segments)  # validates: starts at 0, strictly increasing, ids in range
    assert all(first in set(frames.tolist()) | {0} for first, _ in side.segments)
    lengths = segment_lengths(segments, num_frames)
    assert len(segments) == 1 or min(lengths) >= min_segment
    assert all(a[1] != b[1] for a, b in zip(segments, segments[1:]))


def test_segment_track_rejects_bad_input():
    with pytest.raises(ValueError, match="increase strictly"):
        segment_track(one_state(0, 3), np.array([0, 5, 5]), num_frames=10, window=0, min_segment=1)
    with pytest.raises(ValueError, match=r"expected probs \(N, 15\)"):
        segment_track(np.zeros((3, 4)), np.arange(3), num_frames=10, window=0, min_segment=1)


# --------------------------------------------------------------------------- fixtures: faces and classifiers


def face_frames(count: int, width: int = 320, height: int = 192) -> list[np.ndarray]:
    """Frames of the synthetic renderer's face (neutral, small sway): Haar finds it."""
    from mmsd.data.synth import face, shape

    look = shape.make_identity(24, np.random.default_rng(0))
    renderer = face.FaceRenderer(look, width=width, height=height, rng=np.random.default_rng(1))
    aus = np.zeros(17, np.float32)
    return [renderer.render(look.shape, aus, shape.Pose(dx=0.02 * np.sin(t / 3)))[0] for t in range(count)]


def constant_classifier(state: int) -> EmotionClassifier:
    """An EmotionNet whose answer is always `state` (zero weights, one large bias)."""
    net = EmotionNet(CFG)
    linear = net.head[-1]
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.fill_(-5.0)
        linear.bias[state] = 5.0
    return EmotionClassifier(net)


@pytest.fixture(scope="module")
def talking_head(tmp_path_factory) -> Path:
    """2 s of a rendered face, 320x192 at 10 fps, no audio."""
    path = tmp_path_factory.mktemp("face") / "face.mp4"
    with VideoWriter(path, width=320, height=192, fps=Fraction(10), crf=18, preset="ultrafast") as writer:
        for frame in face_frames(20):
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def happy_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "emotion.safetensors"
    constant_classifier(HAPPY).save(path, info={"note": "test"})
    return path


def test_predict_frames_finds_faces_and_marks_frames_without():
    blank = np.full((192, 320, 3), 128, np.uint8)
    frames = face_frames(2) + [blank]
    assert find_face(frames[0], CFG) is not None
    out = constant_classifier(5).predict_frames(frames)
    assert out.probs.shape == (3, emotions.NUM_STATES) and out.face.tolist() == [True, True, False]
    assert out.probs[:2].argmax(axis=1).tolist() == [5, 5]
    np.testing.assert_allclose(out.probs[2], 1 / emotions.NUM_STATES)


def test_track_streams_and_needs_a_face():
    classifier = constant_classifier(11)
    track = classifier.track(iter(face_frames(12)), fps=10, config=TrackConfig(samples_per_second=5))
    assert track.segments == ((0, 11),) and track.num_frames == 12 and track.sampled == 6 and track.faces == 6
    assert track.describe() == f"{emotions.STATES[11].name} (frames 0-11)"
    with pytest.raises(MmsdError, match="found no face in any of the 3 frames"):
        classifier.track(iter([np.zeros((96, 160, 3), np.uint8)] * 3), fps=1)


def test_load_round_trip_and_wrong_files(happy_model, tmp_path):
    classifier = EmotionClassifier.load(happy_model)
    assert classifier.info == {"note": "test"} and classifier.cfg == CFG
    crops = np.random.default_rng(0).integers(0, 256, (4, CFG.context, CFG.context), dtype=np.uint8)
    probs = classifier.predict_crops(crops)
    assert probs.shape == (4, emotions.NUM_STATES) and (probs.argmax(axis=1) == HAPPY).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    restoration = tmp_path / "bicubic.safetensors"
    save_model(restoration, name="bicubic", config={}, state=Bicubic(BicubicConfig()).state_dict())
    with pytest.raises(MmsdError, match="not the emotion classifier"):
        EmotionClassifier.load(restoration)


# --------------------------------------------------------------------------- commands


def test_train_emotion_writes_a_loadable_classifier(prepared_cache, tmp_path, capsys):
    out = tmp_path / "emotion.safetensors"
    args = ["train-emotion", "--data", str(prepared_cache), "--out", str(out), "--iterations", "3",
            "--batch", "4", "--val-every", "2", "--frame-step", "1", "-q"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "test (actors 19-24)" in printed and "no clips of validation actors [17, 18]" in printed
    classifier = EmotionClassifier.load(out)
    info = classifier.info
    assert info["iterations"] == 3 and info["crops"]["train"] == {"clips": 2, "frames": 12}
    assert info["crops"]["test"]["clips"] == 2 and 0.0 <= info["test"]["frame_accuracy"] <= 1.0
    assert np.asarray(info["test"]["confusion"]).sum() == info["test"]["frames"]
    assert not [p for p in tmp_path.iterdir() if p.name != out.name]  # no temporary file left


def test_train_emotion_bad_input(prepared_cache, tmp_path, capsys):
    out = tmp_path / "emotion.safetensors"
    args = ["train-emotion", "--data", str(prepared_cache), "--out", str(out), "--test-actors", "18", "-q"]
    assert cli.main(args) == 1
    assert "cannot be both training and test actors" in capsys.readouterr().err
    assert cli.main(["train-emotion", "--data", str(tmp_path), "--out", str(out), "-q"]) == 1
    assert "not an mmsd cache" in capsys.readouterr().err
    assert not out.exists()


def test_encode_emotion_auto_writes_the_track(talking_head, happy_model, tmp_path, capsys):
    low = tmp_path / "low.mp4"
    args = ["encode", str(talking_head), "-o", str(low), "--emotion", "auto", "--emotion-model", str(happy_model), "-q"]
    assert cli.main(args) == 0
    assert "emotion auto: happy-strong (frames 0-19)" in capsys.readouterr().out
    with av.open(str(low)) as container:
        side = sideinfo.from_metadata(dict(container.metadata))
    assert side == sideinfo.SideInfo(scale=4, segments=((0, HAPPY),))


def test_encode_emotion_auto_without_weights(talking_head, tmp_path, capsys, monkeypatch):
    low = tmp_path / "low.mp4"
    monkeypatch.setattr(encode_command, "EMOTION_MODEL", tmp_path / "weights" / "emotion.safetensors")
    assert cli.main(["encode", str(talking_head), "-o", str(low), "--emotion", "auto", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--emotion auto needs the emotion classifier" in err
    assert "mmsd train-emotion" in err
    assert list(tmp_path.iterdir()) == []


def test_encode_emotion_model_needs_auto(talking_head, happy_model, tmp_path, capsys):
    low = tmp_path / "low.mp4"
    args = ["encode", str(talking_head), "-o", str(low), "--emotion", "sad-strong", "--emotion-model", str(happy_model)]
    assert cli.main([*args, "-q"]) == 1
    assert "--emotion-model is used only with --emotion auto" in capsys.readouterr().err
    assert not low.exists()
