"""Phonemes -> visemes -> a per-frame mouth track.

Viseme set (targets for lip opening, spread and two special shapes):

| viseme | phonemes (espeak names)            | open | spread | note                        |
|--------|------------------------------------|------|--------|-----------------------------|
| rest   | pauses `_`                         | 0.00 |  0.0   | mouth closed                |
| PBM    | p b m                              | 0.00 |  0.0   | lips pressed, high dominance|
| FV     | f v                                | 0.08 |  0.1   | lower lip under upper teeth |
| TH     | T D                                | 0.22 |  0.2   | tongue tip between teeth    |
| A      | a A A: A@ aI aU V a# e@            | 1.00 |  0.2   | open                        |
| E      | E e eI I i i: I# I2 i@ j           | 0.40 |  0.8   | spread                      |
| O      | O O: O@ o@ oU OI 0                 | 0.65 | -0.6   | open rounded                |
| U      | u: U U@ w                          | 0.25 | -0.9   | close rounded               |
| SH     | S Z tS dZ                          | 0.15 | -0.5   | protruded, teeth            |
| S      | s z                                | 0.10 |  0.5   | teeth together              |
| R      | r                                  | 0.22 | -0.5   |                             |
| C      | other consonants (t d n l k g N h) | 0.28 |  0.1   | low dominance (coarticulates)|
| schwa  | @ 3 3: @2 @5 @L                    | 0.45 |  0.0   |                             |

Coarticulation follows Cohen & Massaro's dominance model: every phoneme pulls the
track towards its targets with weight alpha * exp(-|t - centre| / tau), so weak
consonants borrow the shape of their vowels while bilabials still close the lips.
The opening is then modulated by the audio RMS envelope and forced shut in silence,
so lip opening follows both the phonemes and the loudness of the speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmsd.data.synth.speech import Phoneme


@dataclass(frozen=True)
class Viseme:
    open: float       # 0 closed .. 1 wide open
    spread: float     # -1 rounded .. +1 spread
    tuck: float       # lower lip under the upper teeth (f, v)
    tongue: float     # tongue tip visible (th)
    dominance: float  # coarticulation weight


VISEMES: dict[str, Viseme] = {
    "rest": Viseme(0.0, 0.0, 0.0, 0.0, 1.0),
    "PBM": Viseme(0.0, 0.0, 0.0, 0.0, 6.0),
    "FV": Viseme(0.08, 0.1, 1.0, 0.0, 4.0),
    "TH": Viseme(0.22, 0.2, 0.0, 1.0, 2.0),
    "A": Viseme(1.0, 0.2, 0.0, 0.0, 1.5),
    "E": Viseme(0.40, 0.8, 0.0, 0.0, 1.2),
    "O": Viseme(0.65, -0.6, 0.0, 0.0, 1.5),
    "U": Viseme(0.25, -0.9, 0.0, 0.0, 2.0),
    "SH": Viseme(0.15, -0.5, 0.0, 0.0, 2.0),
    "S": Viseme(0.10, 0.5, 0.0, 0.0, 1.5),
    "R": Viseme(0.22, -0.5, 0.0, 0.0, 1.0),
    "C": Viseme(0.28, 0.1, 0.0, 0.0, 0.4),
    "schwa": Viseme(0.45, 0.0, 0.0, 0.0, 0.8),
}

_BY_PHONEME = {
    **dict.fromkeys("p b m".split(), "PBM"),
    **dict.fromkeys("f v".split(), "FV"),
    **dict.fromkeys("T D".split(), "TH"),
    **dict.fromkeys("a A A: A@ aI aU V a# e@ aI@ aI3 aU@".split(), "A"),
    **dict.fromkeys("E e eI I i i: I# I2 i@ i@3 j".split(), "E"),
    **dict.fromkeys("O O: O@ o@ oU OI 0 o".split(), "O"),
    **dict.fromkeys("u: U U@ w".split(), "U"),
    **dict.fromkeys("S Z tS dZ".split(), "SH"),
    **dict.fromkeys("s z".split(), "S"),
    **dict.fromkeys("r r- R".split(), "R"),
    **dict.fromkeys("@ 3 3: @2 @5 @L".split(), "schwa"),
}

_TAU = 0.045  # s, width of a phoneme's dominance


def viseme_of(phoneme: str) -> str:
    """The viseme of an espeak phoneme name (stress marks ignored), e.g. "'A@" -> 'A'."""
    name = phoneme.lstrip("',%=")
    if not name or name.startswith("_"):
        return "rest"
    return _BY_PHONEME.get(name, "C")


@dataclass
class MouthTrack:
    """Per video frame mouth shape, all (T,) float32."""

    open: np.ndarray    # 0..1
    spread: np.ndarray  # -1..1
    tuck: np.ndarray    # 0..1
    tongue: np.ndarray  # 0..1


def rms_envelope(samples: np.ndarray, sample_rate: int, num_frames: int, fps: float) -> np.ndarray:
    """RMS of the audio over each video frame's interval [t/fps, (t+1)/fps): (T,) float32."""
    out = np.zeros(num_frames, np.float32)
    for t in range(num_frames):
        a, b = int(round(t * sample_rate / fps)), int(round((t + 1) * sample_rate / fps))
        seg = samples[a:b]
        if seg.size:
            out[t] = np.sqrt(np.mean(np.square(seg, dtype=np.float64)))
    return out


def mouth_track(phonemes: list[Phoneme], offset: float, num_frames: int, fps: float,
                envelope: np.ndarray) -> MouthTrack:
    """Mouth shapes for frames 0..T-1 of speech whose phonemes start `offset` s into the clip.

    `envelope` is the audio RMS per frame (`rms_envelope`); it scales the opening.
    """
    times = (np.arange(num_frames) + 0.5) / fps  # frame centres
    targets = np.zeros((len(phonemes) + 2, 4), np.float64)
    weights = np.zeros((len(phonemes) + 2, num_frames), np.float64)
    spans = [(-1.0, offset)] + [(offset + p.start, offset + p.end) for p in phonemes]
    end = offset + (phonemes[-1].end if phonemes else 0.0)
    spans.append((end, max(end, num_frames / fps) + 1.0))
    names = ["rest"] + [viseme_of(p.name) for p in phonemes] + ["rest"]
    for i, ((a, b), name) in enumerate(zip(spans, names)):
        v = VISEMES[name]
        targets[i] = (v.open, v.spread, v.tuck, v.tongue)
        # distance to the phoneme's interval (0 inside), so long pauses hold their shape
        dist = np.maximum(0.0, np.maximum(a - times, times - b))
        weights[i] = v.dominance * np.exp(-dist / _TAU) + 1e-9
    shape = (weights.T @ targets) / weights.sum(axis=0)[:, None]  # (T, 4)
    env = envelope / max(float(np.percentile(envelope, 95)), 1e-6)
    env = np.clip(env, 0.0, 1.0)
    gate = np.clip(env / 0.08, 0.0, 1.0)  # silence closes the mouth
    opening = shape[:, 0] * (0.35 + 0.65 * env) * gate
    return MouthTrack(
        open=opening.astype(np.float32),
        spread=shape[:, 1].astype(np.float32),
        tuck=(shape[:, 2] * gate).astype(np.float32),
        tongue=(shape[:, 3] * gate).astype(np.float32),
    )
