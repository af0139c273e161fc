"""Per-frame FACS action units: emotion prototypes, speech AUs and blinks.

The 17 intensity AUs of OpenFace 2.x (0..5), in OpenFace's order. The emotion
prototypes follow EMFACS (apex values at strong intensity):

| emotion   | AUs                                              |
|-----------|--------------------------------------------------|
| neutral   | none                                             |
| calm      | a relaxed face: slight AU12 + AU6, AU14          |
| happy     | AU6 + AU12 (+ AU25 teeth)                        |
| sad       | AU1 + AU4 + AU15 (+ AU17)                        |
| angry     | AU4 + AU5 + AU7 + AU23 (+ AU17)                  |
| fearful   | AU1 + AU2 + AU4 + AU5 + AU7 + AU20 + AU26 (+AU25)|
| disgust   | AU9 + AU10 + AU15 (+ AU4, AU17)                  |
| surprised | AU1 + AU2 + AU5 + AU26 (+ AU25)                  |

Normal intensity is `NORMAL_SCALE` of strong. Each actor scales every AU by its
own gain (expressiveness varies) and has a small resting baseline; each clip has
an onset from the actor's resting face to the apex and a slight relaxation at the
end. Speech adds AU25 (lips part) and AU26 (jaw drop) from the mouth track, and
blinks come as AU45. Values are rounded to 2 decimals, as OpenFace writes them,
and the renderer draws exactly these numbers: the CSV is ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmsd.data.openface import AU_INTENSITY
from mmsd.data.synth.visemes import MouthTrack
from mmsd.emotions import EmotionState

AUS = AU_INTENSITY  # OpenFace's AU_r columns, in OpenFace's order
AU_INDEX = {name: i for i, name in enumerate(AUS)}

PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "calm": {"AU12": 1.4, "AU06": 0.7, "AU14": 0.9},
    "happy": {"AU06": 3.2, "AU12": 4.0, "AU25": 1.5},
    "sad": {"AU01": 3.2, "AU04": 2.4, "AU15": 3.0, "AU17": 1.6},
    "angry": {"AU04": 3.8, "AU05": 2.0, "AU07": 3.0, "AU23": 3.2, "AU17": 1.0},
    "fearful": {"AU01": 3.2, "AU02": 2.4, "AU04": 2.0, "AU05": 3.2, "AU07": 1.5, "AU20": 3.2,
                "AU26": 1.6, "AU25": 1.5},
    "disgust": {"AU09": 3.6, "AU10": 3.0, "AU15": 2.0, "AU04": 1.2, "AU17": 1.2},
    "surprised": {"AU01": 3.6, "AU02": 3.6, "AU05": 3.2, "AU26": 2.6, "AU25": 2.0},
}
NORMAL_SCALE = 0.55


def prototype(state: EmotionState) -> np.ndarray:
    """Apex AU intensities of `state` before actor variation: (17,) float32."""
    out = np.zeros(len(AUS), np.float32)
    for name, value in PROTOTYPES[state.emotion].items():
        out[AU_INDEX[name]] = value
    return out * (1.0 if state.intensity == "strong" else NORMAL_SCALE)


@dataclass(frozen=True)
class ActorStyle:
    """How an actor expresses: per-AU gain, resting AUs, blink rate (per s)."""

    gain: np.ndarray      # (17,)
    baseline: np.ndarray  # (17,)
    blink_rate: float


def actor_style(rng: np.random.Generator) -> ActorStyle:
    gain = rng.uniform(0.85, 1.15, len(AUS)) * rng.uniform(0.92, 1.08)
    baseline = np.where(rng.random(len(AUS)) < 0.25, rng.uniform(0.0, 0.25, len(AUS)), 0.0)
    baseline[[AU_INDEX["AU25"], AU_INDEX["AU26"], AU_INDEX["AU45"]]] = 0.0
    return ActorStyle(gain.astype(np.float32), baseline.astype(np.float32), float(rng.uniform(0.25, 0.5)))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def au_track(state: EmotionState, style: ActorStyle, mouth: MouthTrack, fps: float,
             rng: np.random.Generator) -> np.ndarray:
    """AU intensities per frame, (T, 17) float32 in 0..5 rounded to 0.01."""
    num_frames = len(mouth.open)
    t = np.arange(num_frames) / fps
    duration = num_frames / fps
    apex = prototype(state) * style.gain * rng.uniform(0.93, 1.07, len(AUS))
    onset = rng.uniform(0.0, 0.25)
    rise = rng.uniform(0.3, 0.6)
    level = _smoothstep((t - onset) / rise) * (1.0 - 0.15 * _smoothstep((t - duration + 0.5) / 0.5))
    # slow per-AU wobble around the apex (expressions are not frozen)
    phase = rng.uniform(0, 2 * np.pi, len(AUS))
    wobble = 1.0 + 0.06 * np.sin(2 * np.pi * 0.7 * t[:, None] + phase[None, :])
    aus = style.baseline[None, :] + level[:, None] * apex[None, :] * wobble

    # speech: jaw drop and lips part from the mouth track, on top of the expression
    i25, i26 = AU_INDEX["AU25"], AU_INDEX["AU26"]
    aus[:, i26] = aus[:, i26] + 3.6 * mouth.open
    aus[:, i25] = np.maximum(aus[:, i25], np.clip(14.0 * mouth.open, 0.0, 4.0))

    aus[:, AU_INDEX["AU45"]] = _blinks(num_frames, fps, style.blink_rate, rng)
    return np.round(np.clip(aus, 0.0, 5.0), 2).astype(np.float32)


def _blinks(num_frames: int, fps: float, rate: float, rng: np.random.Generator) -> np.ndarray:
    """AU45 track: blinks of ~200 ms at random times, peak 4..5 (closed)."""
    out = np.zeros(num_frames, np.float64)
    t = rng.uniform(0.2, 1.0 / rate)
    frames = np.arange(num_frames) / fps
    while t < num_frames / fps:
        width = rng.uniform(0.045, 0.065)
        out = np.maximum(out, rng.uniform(4.0, 5.0) * np.exp(-0.5 * ((frames - t) / width) ** 2))
        t += rng.uniform(0.6, 1.6) / rate
    return out
