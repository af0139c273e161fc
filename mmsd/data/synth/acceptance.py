"""Acceptance measures of a synthetic corpus (issue 3), shared by scripts/check_synth.py and tests.

All measures read only what a RAVDESS user has: the mp4 files and the OpenFace CSVs.
Landmark measures are in inter-ocular distances, so they do not depend on frame size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mmsd import emotions
from mmsd.data.openface import AU_INTENSITY, read_csv
from mmsd.media.codec import read_audio, read_frames

AU = {name: i for i, name in enumerate(AU_INTENSITY)}
MEASURES = ("brow height", "lip-corner height", "mouth opening")
# (measure, AU, expected sign of its least-squares coefficient)
DIRECTIONS = (("brow height", "AU01", 1), ("brow height", "AU02", 1), ("lip-corner height", "AU12", 1),
              ("lip-corner height", "AU15", -1), ("mouth opening", "AU26", 1))


def measures(landmarks: np.ndarray) -> np.ndarray:
    """(T, 3) brow height, lip-corner height (above the nose base, negated distance) and
    inner-lip opening per frame of landmarks (T, 68, 2), in inter-ocular distances."""
    lm = np.asarray(landmarks, np.float64)
    iod = np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=1)
    eyes_y = lm[:, 36:48, 1].mean(1)
    return np.stack([
        (eyes_y - lm[:, 17:27, 1].mean(1)) / iod,
        (lm[:, 33, 1] - lm[:, [48, 54], 1].mean(1)) / iod,
        (lm[:, [65, 66, 67], 1].mean(1) - lm[:, [61, 62, 63], 1].mean(1)) / iod,
    ], 1)


def rms_per_frame(samples: np.ndarray, rate: int, num_frames: int, fps: float) -> np.ndarray:
    """Audio RMS over each frame's interval [t/fps, (t+1)/fps): (T,)."""
    edges = np.round(np.arange(num_frames + 1) * rate / fps).astype(int)
    return np.array([np.sqrt(np.mean(np.square(samples[a:b], dtype=np.float64))) if b > a and a < len(samples)
                     else 0.0 for a, b in zip(edges[:-1], edges[1:])])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


@dataclass
class ClipStats:
    path: Path
    actor: int
    state: int
    mouth_audio_r: float      # Pearson r of mouth opening and audio RMS
    mean_au: np.ndarray       # (17,)
    aus: np.ndarray           # (T, 17)
    measures: np.ndarray      # (T, 3)
    landmarks: np.ndarray     # (T, 68, 2)


def clip_stats(path: Path) -> ClipStats:
    parts = [int(p) for p in Path(path).stem.split("-")]
    track = read_csv(Path(path).with_suffix(".csv"))
    num = len(track.frame)
    fps = (num - 1) / max(float(track.timestamp[-1] - track.timestamp[0]), 1e-9) if num > 1 else 30.0
    m = measures(track.landmarks)
    rms = rms_per_frame(read_audio(path, 16000), 16000, num, fps)
    return ClipStats(Path(path), parts[6], emotions.from_ravdess(parts[2], parts[3]).id,
                     pearson(m[:, 2], rms), track.au_intensity.mean(0), track.au_intensity, m,
                     track.landmarks)


def nearest_centroid(stats: list[ClipStats], test_actors: list[int]) -> tuple[float, int]:
    """Accuracy of 15-state nearest-centroid on per-clip mean AUs; (accuracy, test clips)."""
    train = [s for s in stats if s.actor not in test_actors]
    cents = {k: np.mean([s.mean_au for s in train if s.state == k], 0)
             for k in {s.state for s in train}}
    test = [s for s in stats if s.actor in test_actors]
    if not cents or not test:
        return float("nan"), 0
    keys = sorted(cents)
    table = np.stack([cents[k] for k in keys])
    hits = sum(keys[int(np.argmin(((table - s.mean_au) ** 2).sum(1)))] == s.state for s in test)
    return hits / len(test), len(test)


def au_directions(stats: list[ClipStats]) -> list[tuple[str, str, int, float, float]]:
    """(measure, AU, wanted sign, least-squares coefficient on all 17 AUs + bias, simple r)."""
    aus = np.concatenate([s.aus for s in stats])
    ms = np.concatenate([s.measures for s in stats])
    coef, *_ = np.linalg.lstsq(np.hstack([aus, np.ones((len(aus), 1))]), ms, rcond=None)
    out = []
    for measure, au, sign in DIRECTIONS:
        k = MEASURES.index(measure)
        out.append((measure, au, sign, float(coef[AU[au], k]), pearson(ms[:, k], aus[:, AU[au]])))
    return out


_cascade = None


def haar_hits(stats: ClipStats, frames_per_clip: int = 3) -> tuple[int, int]:
    """(frames where the frontal-face cascade finds a box holding the nose tip, frames tried)."""
    global _cascade
    if _cascade is None:
        _cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    num = len(stats.landmarks)
    picks = set(np.linspace(0, num - 1, frames_per_clip + 2).round().astype(int)[1:-1].tolist())
    found = tried = 0
    for t, frame in enumerate(read_frames(stats.path)):
        if t not in picks:
            continue
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        side = gray.shape[0] // 6
        boxes = _cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
        nx, ny = stats.landmarks[t, 30]
        found += any(x <= nx <= x + w and y <= ny <= y + h for x, y, w, h in boxes)
        tried += 1
    return found, tried
