"""The 15 emotion states of the paper (Sec. 3.4): side information sent by the encoder.

RAVDESS has 8 emotions (codes 01..08) and 2 intensities (01 normal, 02 strong);
neutral exists only at normal intensity, so there are 8 x 2 - 1 = 15 states.
Ids 0..14 are stable: they index the one-hot vector s and are stored in caches and
in the side information of encoded files, so never reorder them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
INTENSITIES = ("normal", "strong")


@dataclass(frozen=True)
class EmotionState:
    """One of the 15 states: an emotion at an intensity (neutral has only 'normal')."""

    id: int
    emotion: str
    intensity: str

    @property
    def name(self) -> str:
        """'neutral' for the neutral state, else '<emotion>-<intensity>', e.g. 'happy-strong'."""
        return self.emotion if self.emotion == "neutral" else f"{self.emotion}-{self.intensity}"

    @property
    def ravdess_codes(self) -> tuple[int, int]:
        """(emotion code 1..8, intensity code 1..2) as in RAVDESS file names."""
        return EMOTIONS.index(self.emotion) + 1, INTENSITIES.index(self.intensity) + 1

    def one_hot(self) -> np.ndarray:
        """The state as the paper's one-hot vector s, float32 of shape (15,)."""
        return one_hot(self.id)

    def __str__(self) -> str:
        return self.name


STATES: tuple[EmotionState, ...] = tuple(
    EmotionState(i, emotion, intensity)
    for i, (emotion, intensity) in enumerate(
        [("neutral", "normal")]
        + [(e, level) for e in EMOTIONS[1:] for level in INTENSITIES]
    )
)
NUM_STATES = len(STATES)
NEUTRAL = STATES[0]
NAMES = tuple(s.name for s in STATES)
_BY_NAME = {s.name: s for s in STATES} | {"neutral-normal": NEUTRAL}
_BY_CODES = {s.ravdess_codes: s for s in STATES}


def from_ravdess(emotion_code: int, intensity_code: int) -> EmotionState:
    """The state of RAVDESS codes, e.g. (3, 2) -> happy-strong."""
    try:
        return _BY_CODES[(int(emotion_code), int(intensity_code))]
    except KeyError:
        raise ValueError(
            f"no emotion state for RAVDESS emotion {emotion_code:02d}, intensity {intensity_code:02d}"
            " (emotions 01-08, intensities 01-02, neutral only 01)"
        ) from None


def parse(value: str | int | EmotionState) -> EmotionState:
    """A state from its id (0..14), name ('happy-strong') or RAVDESS codes ('03-02')."""
    if isinstance(value, EmotionState):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if 0 <= value < NUM_STATES:
            return STATES[int(value)]
        raise ValueError(f"emotion id must be in 0..{NUM_STATES - 1}, got {value}")
    if not isinstance(value, str):
        raise ValueError(f"cannot read an emotion state from {value!r}")
    text = value.strip().lower()
    if text in _BY_NAME:
        return _BY_NAME[text]
    if text.isdigit():
        return parse(int(text))
    codes = text.split("-")
    if len(codes) == 2 and all(c.isdigit() for c in codes):
        return from_ravdess(int(codes[0]), int(codes[1]))
    raise ValueError(f"unknown emotion state {value!r}; expected one of: {', '.join(NAMES)}")


def one_hot(ids: int | np.ndarray) -> np.ndarray:
    """One-hot float32 vectors: shape (15,) for an id, (..., 15) for an array of ids."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= NUM_STATES):
        raise ValueError(f"emotion ids must be in 0..{NUM_STATES - 1}, got {ids.min()}..{ids.max()}")
    return np.eye(NUM_STATES, dtype=np.float32)[ids]
