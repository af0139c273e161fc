"""Shared fixtures: a tiny RAVDESS-layout corpus written by the tests, and its cache."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

FPS = Fraction(30)
AUDIO_RATE = 16000
SIZE = (160, 96)  # W x H of the fixture videos
NUM_FRAMES = 12

# key -> how the fixture writes it
GOOD_CLIPS = {
    "Actor_01/01-01-03-02-01-01-01": dict(csv=True, audio=True, size=SIZE),
    "Actor_01/01-01-01-01-02-01-01": dict(csv=False, audio=False, size=SIZE),
    "Actor_19/01-01-05-01-01-02-19": dict(csv=False, audio=True, size=(161, 97)),  # odd size
    "Actor_19/01-01-08-02-02-01-19": dict(csv=False, audio=True, size=SIZE),
}
CSV_CLIP_KEY = "Actor_01/01-01-03-02-01-01-01"
CORRUPT_CLIP = "Actor_01/01-01-04-01-01-01-01"  # not a video at all
TRUNCATED_CLIP = "Actor_19/01-01-06-02-01-01-19"  # a real mp4 cut in half
SHORT_CLIP = "Actor_19/01-01-02-01-01-01-19"  # 3 frames < 2N+1
MALFORMED = "Actor_01/01-01-09-01-01-01-01.mp4"  # emotion 09 does not exist


def face_landmarks(cx: float, cy: float, width: float, height: float, mouth_open: float) -> np.ndarray:
    """A plausible iBUG 68-point face (x, y) around (cx, cy): jaw, brows, nose, eyes, lips."""
    points = np.zeros((68, 2))
    angles = np.linspace(np.pi, 2 * np.pi, 17)  # jaw 0-16, ear to ear under the chin
    points[0:17] = np.stack([cx + 0.5 * width * np.cos(angles), cy - 0.1 * height - 0.6 * height * np.sin(angles)], 1)
    brows = np.linspace(-0.4, 0.4, 10)
    points[17:27] = np.stack([cx + brows * width, np.full(10, cy - 0.5 * height)], 1)
    points[27:36] = np.stack([np.full(9, cx), np.linspace(cy - 0.35 * height, cy + 0.05 * height, 9)], 1)
    for start, ex in ((36, cx - 0.2 * width), (42, cx + 0.2 * width)):
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        eye_y = cy - 0.25 * height + 0.03 * height * np.sin(a)
        points[start : start + 6] = np.stack([ex + 0.08 * width * np.cos(a), eye_y], 1)
    my = cy + 0.25 * height
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    points[48:60] = np.stack([cx + 0.2 * width * np.cos(a), my + (0.04 + mouth_open) * height * np.sin(a)], 1)
    a = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    points[60:68] = np.stack([cx + 0.12 * width * np.cos(a), my + mouth_open * height * np.sin(a)], 1)
    return points


def render_frame(t: int, width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A frame with a textured moving background and a face-like blob; and its 68 landmarks."""
    import cv2

    yy, xx = np.mgrid[0:height, 0:width]
    background = 120 + 60 * np.sin((xx + 3 * t) / 5.0) * np.cos(yy / 7.0)
    frame = np.repeat(background[..., None], 3, axis=2) + rng.normal(0, 12, (height, width, 3))
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    cx, cy = width / 2 + 2 * np.sin(t / 3), height / 2 + 4
    face_w, face_h = 0.3 * width, 0.55 * height
    mouth_open = 0.04 * (1 + np.sin(t / 1.5))
    cv2.ellipse(frame, (int(cx), int(cy)), (int(face_w / 2), int(face_h / 1.6)), 0, 0, 360, (225, 180, 150), -1)
    points = face_landmarks(cx, cy, face_w, face_h, mouth_open)
    for eye in (points[36:42], points[42:48]):
        cv2.fillPoly(frame, [np.round(eye).astype(np.int32)], (40, 30, 30))
    cv2.fillPoly(frame, [np.round(points[48:60]).astype(np.int32)], (150, 40, 50))
    cv2.fillPoly(frame, [np.round(points[60:68]).astype(np.int32)], (30, 10, 10))
    return frame, points


def write_clip(path: Path, *, num_frames: int, size: tuple[int, int], audio: bool, csv: bool, seed: int = 0) -> None:
    from mmsd.data.openface import OpenFaceTrack, write_csv
    from mmsd.media.codec import VideoWriter

    width, height = size
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    landmarks = []
    rate = AUDIO_RATE if audio else None
    with VideoWriter(path, width=width, height=height, fps=FPS, crf=10, preset="ultrafast", audio_rate=rate) as writer:
        for t in range(num_frames):
            frame, points = render_frame(t, width, height, rng)
            writer.write(frame)
            landmarks.append(points)
        if audio:
            s = np.arange(int(num_frames / FPS * AUDIO_RATE)) / AUDIO_RATE
            tone = 0.4 * np.sin(2 * np.pi * 440 * s) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * s))  # 440 Hz, 3 Hz syllables
            writer.write_audio(tone.astype(np.float32))
    if csv:
        mouth = np.array([p[66, 1] - p[62, 1] for p in landmarks])
        au = np.zeros((num_frames, 17), np.float32)
        au[:, 8] = 2.5  # AU12 lip corner puller: happy
        au[:, 14] = np.clip(mouth, 0, 5)  # AU25 lips part
        track = OpenFaceTrack(
            frame=np.arange(1, num_frames + 1),
            timestamp=np.arange(num_frames) / float(FPS),
            confidence=np.full(num_frames, 0.98),
            success=np.ones(num_frames, bool),
            landmarks=np.asarray(landmarks, np.float32),
            au_intensity=au,
            au_presence=None,
        )
        write_csv(path.with_suffix(".csv"), track)


def make_corpus(root: Path) -> Path:
    """The fixture corpus: 4 good clips (2 actors), a corrupt, a truncated and a too-short
    clip, a malformed name and a video-only (modality 02) file that is ignored."""
    for i, (key, spec) in enumerate(GOOD_CLIPS.items()):
        write_clip(root / f"{key}.mp4", num_frames=NUM_FRAMES, seed=i, **spec)
    (root / f"{CORRUPT_CLIP}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    full = root / "Actor_19" / "full.mp4"
    write_clip(full, num_frames=NUM_FRAMES, size=SIZE, audio=False, csv=False)
    data = full.read_bytes()
    (root / f"{TRUNCATED_CLIP}.mp4").write_bytes(data[: len(data) // 2])
    full.rename(root / "Actor_19" / "02-01-06-02-01-01-19.mp4")  # video-only modality: not listed
    write_clip(root / f"{SHORT_CLIP}.mp4", num_frames=3, size=SIZE, audio=True, csv=False)
    (root / MALFORMED).write_bytes(b"not even looked at")
    return root


@pytest.fixture(scope="session")
def fixture_corpus(tmp_path_factory) -> Path:
    """A tiny RAVDESS-layout corpus (see `make_corpus`); treat as read-only."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def prepared_cache(fixture_corpus, tmp_path_factory) -> Path:
    """The fixture corpus prepared at CRF 15 and 40 with HR for every 2nd frame; read-only."""
    from mmsd.data.prepare import prepare_corpus

    out = tmp_path_factory.mktemp("cache")
    prepare_corpus(fixture_corpus, out, crfs=(15, 40), workers=1, hr_step=2, progress=False, log=lambda line: None)
    return out


@pytest.fixture(scope="session")
def portrait_cache(tmp_path_factory) -> Path:
    """The real-face validation set in miniature (one camera path, 6 frames) at CRF 15 and 40; read-only."""
    from mmsd.data import content
    from mmsd.data.prepare import PrepareSettings, build_cache

    out = tmp_path_factory.mktemp("portraits")
    build_cache(out, content.jobs("portraits", clips=1, frames=6), PrepareSettings(crfs=(15, 40), crop="whole"),
                progress=False, log=lambda line: None)
    return out


@pytest.fixture
def one_thread():
    """torch on one thread for the test: on tiny workloads a second thread only adds OpenMP wake-ups,
    many times slower on a busy CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
