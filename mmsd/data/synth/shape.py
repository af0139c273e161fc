"""The synthetic face's geometry: the mean iBUG-68 template in face units, an actor's `Identity`
(shape and colours), the AU deformation of the landmarks (`deform`), and the head `Pose` of a frame.

Face units u are about half the frame height: x to the right in the image, y down, origin between
the eyes. `mmsd.data.synth.face` draws frames from these landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmsd.data.synth.expression import AU_INDEX

# Mean iBUG-68 frontal shape, x centred, y relative to the eye line, in face units.
_RAW = np.array([
    (0.079, 0.339), (0.083, 0.457), (0.097, 0.576), (0.122, 0.692), (0.169, 0.800),
    (0.240, 0.896), (0.326, 0.977), (0.422, 1.043), (0.516, 1.061), (0.610, 1.043),
    (0.706, 0.977), (0.792, 0.896), (0.863, 0.800), (0.910, 0.692), (0.935, 0.576),
    (0.949, 0.457), (0.953, 0.339),
    (0.164, 0.249), (0.218, 0.204), (0.291, 0.192), (0.367, 0.204), (0.439, 0.233),
    (0.593, 0.233), (0.665, 0.204), (0.741, 0.192), (0.814, 0.204), (0.868, 0.249),
    (0.516, 0.308), (0.516, 0.381), (0.516, 0.453), (0.516, 0.526),
    (0.432, 0.578), (0.474, 0.591), (0.516, 0.604), (0.558, 0.591), (0.600, 0.578),
    (0.258, 0.319), (0.300, 0.294), (0.350, 0.294), (0.392, 0.323), (0.347, 0.334), (0.297, 0.334),
    (0.640, 0.323), (0.682, 0.294), (0.732, 0.294), (0.774, 0.319), (0.735, 0.334), (0.685, 0.334),
    (0.341, 0.722), (0.394, 0.690), (0.452, 0.672), (0.516, 0.682), (0.580, 0.672), (0.638, 0.690),
    (0.691, 0.722), (0.640, 0.779), (0.581, 0.807), (0.516, 0.814), (0.451, 0.807), (0.392, 0.779),
    (0.361, 0.723), (0.452, 0.712), (0.516, 0.714), (0.580, 0.712), (0.671, 0.723),
    (0.580, 0.714), (0.516, 0.716), (0.452, 0.714),
], np.float64)
_MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)


def _symmetric(raw: np.ndarray) -> np.ndarray:
    pts = raw - np.array([0.516, 0.314])
    mirrored = pts[_MIRROR] * np.array([-1.0, 1.0])
    return ((pts + mirrored) / 2).astype(np.float32)


TEMPLATE = _symmetric(_RAW)
TEMPLATE[[61, 62, 63], 1] += 0.008  # fuller upper lip
TEMPLATE[[55, 56, 57, 58, 59], 1] -= np.array([0.012, 0.02, 0.022, 0.02, 0.012], np.float32)  # thinner lower lip
TEMPLATE[[65, 66, 67], 1] = TEMPLATE[[63, 62, 61], 1]  # closed mouth at rest

BROWS, NOSE, EYES = np.arange(17, 27), np.arange(27, 36), np.arange(36, 48)
LIPS_OUT, LIPS_IN = np.arange(48, 60), np.arange(60, 68)
UPPER_LID, LOWER_LID = [37, 38, 43, 44], [41, 40, 47, 46]  # column-aligned pairs


@dataclass(frozen=True)
class Identity:
    """An actor's look. Colours are RGB 0..255."""

    shape: np.ndarray     # (68, 2) neutral landmarks in face units
    scale: float          # face unit as a fraction of the frame height
    centre: tuple[float, float]  # eye-line centre as fractions of (width, height)
    male: bool
    skin: np.ndarray
    lips: np.ndarray
    hair: np.ndarray
    brow: np.ndarray
    iris: np.ndarray
    shirt: np.ndarray
    wall: np.ndarray
    hair_style: int       # 0 short, 1 long, 2 bob, 3 very short
    brow_thickness: float
    beard: float          # stubble shadow strength
    light_dir: float      # -1 light from the left .. 1 from the right


_SKIN = np.array([(236, 200, 176), (226, 186, 156), (205, 160, 128), (186, 140, 105),
                  (162, 116, 84), (128, 86, 60), (96, 64, 46)], np.float32)
_HAIR = np.array([(28, 22, 20), (58, 40, 30), (96, 66, 42), (140, 102, 62), (196, 160, 102),
                  (136, 62, 34), (150, 146, 140)], np.float32)
_IRIS = np.array([(92, 58, 32), (52, 34, 22), (118, 94, 52), (78, 108, 70), (72, 110, 150),
                  (110, 118, 128)], np.float32)


def _luma(rgb: np.ndarray) -> float:
    return float(np.asarray(rgb, np.float64) @ np.array([0.299, 0.587, 0.114]))


def _brow_colour(hair: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Brows follow the hair colour but stay well darker than the skin, as on real faces
    (pale brows on dark skin also hide the eye region from face detectors)."""
    brow = hair * 0.8 + skin * 0.1
    brow *= min(1.0, 0.5 * _luma(skin) / max(_luma(brow), 1.0))
    return np.clip(brow, 0, 255).astype(np.float32)


def make_identity(actor: int, rng: np.random.Generator) -> Identity:
    """A random actor look; odd actors male, as in RAVDESS."""
    male = actor % 2 == 1
    s = TEMPLATE.copy()
    jaw = np.arange(17)
    s[jaw, 0] *= rng.uniform(0.93, 1.07) * (1.03 if male else 0.98)
    s[5:12, 0] *= rng.uniform(0.9, 1.1)
    s[6:11, 1] += rng.uniform(-0.03, 0.03) + (0.015 if male else 0.0)
    eye_gap = rng.uniform(-0.015, 0.015)
    eye_scale = rng.uniform(1.02, 1.2) * (1.0 if male else 1.06)
    for eye in (np.arange(36, 42), np.arange(42, 48)):
        c = s[eye].mean(axis=0)
        s[eye] = c + (s[eye] - c) * eye_scale
        s[eye, 0] += np.sign(c[0]) * eye_gap
    tilt = rng.uniform(-0.008, 0.008)
    s[[36, 45], 1] -= tilt
    s[BROWS, 1] += rng.uniform(-0.015, 0.015) + (0.01 if male else -0.01)
    s[[19, 24], 1] -= rng.uniform(-0.004, 0.012)
    nose = np.arange(30, 36)
    s[nose, 1] += rng.uniform(-0.025, 0.025)
    s[31:36, 0] *= rng.uniform(0.85, 1.2)
    mouth = np.arange(48, 68)
    s[mouth, 0] *= rng.uniform(0.9, 1.1)
    s[mouth, 1] += rng.uniform(-0.015, 0.02)
    upper, lower = [49, 50, 51, 52, 53], [55, 56, 57, 58, 59]
    s[upper, 1] -= rng.uniform(-0.006, 0.01) + (0.0 if male else 0.004)
    s[lower, 1] += rng.uniform(-0.006, 0.014) + (0.0 if male else 0.005)
    skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.95, 1.05, 3)
    lip_tint = np.array([0.8, 0.6, 0.6]) if male else rng.choice([[0.82, 0.56, 0.58], [0.75, 0.38, 0.42], [0.85, 0.6, 0.6]])
    # Hair no lighter than the skin: a bright frame around a darker face defeats face
    # detectors trained on real faces (and is the rarer combination in real life).
    k = int(rng.integers(len(_HAIR)))
    dark_enough = [i for i in range(len(_HAIR)) if _luma(_HAIR[i]) <= 1.05 * _luma(skin)]
    hair = _HAIR[k if k in dark_enough else dark_enough[k % len(dark_enough)]] * rng.uniform(0.9, 1.1, 3)
    return Identity(
        shape=s.astype(np.float32),
        scale=float(rng.uniform(0.48, 0.53)),
        centre=(float(0.5 + rng.uniform(-0.04, 0.04)), float(rng.uniform(0.38, 0.42))),
        male=male,
        skin=np.clip(skin, 0, 255).astype(np.float32),
        lips=np.clip(skin * lip_tint + np.array([12, 0, 6]), 0, 255).astype(np.float32),
        hair=np.clip(hair, 0, 255).astype(np.float32),
        brow=_brow_colour(hair, skin),
        iris=_IRIS[rng.integers(len(_IRIS))].astype(np.float32),
        shirt=rng.uniform(30, 220, 3).astype(np.float32),
        # the camera exposes for the face: darker faces are seen against a darker wall
        wall=np.clip(rng.uniform(150, 225) * rng.uniform(0.88, 1.08, 3)
                     * np.clip(_luma(skin) / 150.0, 0.7, 1.0), 0, 255).astype(np.float32),
        hair_style=int(rng.choice([0, 0, 3]) if male else rng.choice([1, 1, 2, 0])),
        brow_thickness=float(rng.uniform(0.75, 1.25) * (1.2 if male else 0.85)),
        beard=float(rng.uniform(0.0, 1.0) if male and rng.random() < 0.6 else 0.0),
        light_dir=float(rng.uniform(-1, 1)),
    )


def deform(shape: np.ndarray, aus: np.ndarray, spread: float = 0.0, tuck: float = 0.0) -> np.ndarray:
    """Landmarks (68, 2) of `shape` with AU intensities `aus` (17,) 0..5 and a viseme shape."""
    a = {name: float(aus[i]) / 5.0 for name, i in AU_INDEX.items()}
    p = shape.astype(np.float64).copy()
    side = np.sign(p[:, 0])
    d = np.zeros_like(p)

    def move(idx, dx=0.0, dy=0.0, outward=True):
        idx = np.asarray(idx)
        d[idx, 0] += dx * (side[idx] if outward else 1.0)
        d[idx, 1] += dy

    # brows: AU1 inner raise, AU2 outer raise, AU4 lower and knit, AU9 pulls inner down
    inner_w = np.array([0.08, 0.25, 0.55, 0.85, 1.0])  # outer -> inner along a brow
    for brow, w in ((np.arange(17, 22), inner_w), (np.arange(26, 21, -1), inner_w)):
        move(brow, dy=-0.075 * a["AU01"] * w)
        move(brow, dy=-0.07 * a["AU02"] * (1.0 - 0.85 * w))
        move(brow, dx=-0.028 * a["AU04"] * w ** 2, dy=0.038 * a["AU04"] * (0.55 + 0.45 * w))
        move(brow, dy=0.015 * a["AU09"] * w)
    # lids
    move([37, 38, 43, 44], dy=-0.022 * a["AU05"] + 0.009 * a["AU07"] + 0.006 * a["AU04"])
    move([40, 41, 46, 47], dy=-0.011 * a["AU06"] - 0.013 * a["AU07"])
    move([36, 45], dy=-0.004 * a["AU06"])
    # nose and upper lip
    move([31, 35], dy=-0.022 * a["AU09"])
    move([32, 33, 34], dy=-0.012 * a["AU09"])
    move([50, 51, 52], dy=-0.012 * a["AU09"] - 0.008 * a["AU17"])
    move([49, 53], dy=-0.026 * a["AU10"])
    move([50, 52], dy=-0.034 * a["AU10"])
    move([51], dy=-0.026 * a["AU10"])
    move([61, 62, 63], dy=-0.034 * a["AU10"])
    # lip corners and their neighbours: AU12 up/out, AU15 down, AU14 in, AU20 out, AU23 in
    for idx, w in (([48, 54, 60, 64], 1.0), ([49, 53, 59, 55, 61, 63, 67, 65], 0.5),
                   ([50, 52, 58, 56], 0.2)):
        move(idx, dx=w * (0.04 * a["AU12"] + 0.008 * a["AU15"] - 0.012 * a["AU14"]
                          + 0.045 * a["AU20"] - 0.022 * a["AU23"]),
             dy=w * (-0.036 * a["AU12"] + 0.042 * a["AU15"] - 0.005 * a["AU14"] + 0.01 * a["AU20"]))
    # lip thickness: AU23 thins, AU20 flattens
    move([49, 50, 51, 52, 53], dy=0.012 * a["AU23"] + 0.005 * a["AU20"])
    move([55, 56, 57, 58, 59], dy=-0.012 * a["AU23"] - 0.005 * a["AU20"])
    # AU17 chin raiser pushes the lower lip and chin up
    move([55, 56, 58, 59], dy=-0.015 * a["AU17"])
    move([57], dy=-0.02 * a["AU17"])
    move([65, 66, 67], dy=-0.006 * a["AU17"])
    move([7, 8, 9], dy=-0.012 * a["AU17"])
    # viseme: spread widens, rounding narrows and protrudes, tuck lifts the lower lip
    r = max(0.0, -spread)
    sp = max(0.0, spread)
    move([48, 54], dx=0.025 * sp - 0.06 * r)
    move([60, 64], dx=0.025 * sp - 0.07 * r)
    move([49, 53, 59, 55, 61, 63, 67, 65], dx=0.012 * sp - 0.03 * r)
    move([50, 51, 52], dy=-0.008 * r)
    move([56, 57, 58], dy=0.008 * r)
    move([55, 56, 57, 58, 59], dy=-0.012 * tuck)
    # AU25 parts the lips, AU26 drops the jaw (chin, lower lip; corners follow a little)
    part = 0.022 * a["AU25"]
    jaw = 0.13 * a["AU26"]
    move([65, 66, 67], dy=part * np.array([0.8, 1.0, 0.8]) * (1 - 0.8 * tuck) + jaw * 0.95 * (1 - 0.85 * tuck))
    move([55, 56, 57, 58, 59], dy=part * 0.8 + jaw * np.array([0.85, 0.97, 1.0, 0.97, 0.85]) * (1 - 0.6 * tuck))
    move([61, 62, 63], dy=-0.004 * a["AU25"])
    move([48, 54, 60, 64], dx=-0.15 * jaw, dy=0.35 * jaw)
    for idx, w in ((8, 1.0), ([7, 9], 0.95), ([6, 10], 0.8), ([5, 11], 0.55), ([4, 12], 0.3),
                   ([3, 13], 0.1)):
        move(idx, dy=jaw * w)
    p += d
    # AU45 closes the upper lid onto the lower one
    b = min(1.0, a["AU45"] * 1.1)
    up, low = np.array(UPPER_LID), np.array(LOWER_LID)
    p[up, 1] = p[up, 1] + (p[low, 1] - 0.004 - p[up, 1]) * b
    return p.astype(np.float32)


@dataclass(frozen=True)
class Pose:
    """Head pose and lighting of one frame."""

    roll: float = 0.0   # degrees
    dx: float = 0.0     # face units
    dy: float = 0.0     # face units
    scale: float = 1.0
    gaze: tuple[float, float] = (0.0, 0.0)  # -1..1 of the eye's range
    gain: float = 1.0   # global light
    tilt: float = 0.0   # left-right light gradient
