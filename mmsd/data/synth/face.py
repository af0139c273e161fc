"""A parametric talking-head renderer driven by 68 iBUG landmarks and 17 AUs.

The face lives in "face units" u (about half the frame height): x to the right in
the image, y down, origin between the eyes. `TEMPLATE` is a mean frontal iBUG-68
shape (mouth closed). An `Identity` (one per actor) deforms it and fixes colours,
hair, skin texture, background and clothes; `deform` moves the landmarks with the
AUs (FACS geometry: AU1/2 raise the inner/outer brows, AU4 lowers and knits them,
AU5/7/45 open, tighten and close the lids, AU6 raises the lower lids and cheeks,
AU9 lifts the nose wings, AU10 the upper lip, AU12/15 pull the lip corners up/down,
AU14/20/23 dimple/stretch/tighten the lips, AU17 pushes the chin up, AU25 parts the
lips, AU26 drops the jaw) plus the viseme's lip spread/rounding. `FaceRenderer`
draws everything from those landmarks, so the CSV landmarks are exact.

Rendering: the head is drawn in a canonical patch (static textured skin with
ellipsoid shading, hair with strand texture, per-frame features with OpenCV
anti-aliased polygons, blurred wrinkle and shadow maps), warped with the head pose
(roll, translation, scale, nod) onto a static per-actor background with shoulders,
then lit with a slowly drifting gain and given light sensor noise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
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


@functools.lru_cache(maxsize=64)
def _catmull_basis(k: int, closed: bool, n: int) -> np.ndarray:
    """Matrix B with curve = B @ points for a Catmull-Rom spline through k points."""
    segs = k if closed else k - 1
    t = np.linspace(0, 1, n, endpoint=False)
    w = 0.5 * np.stack([-t + 2 * t ** 2 - t ** 3, 2 - 5 * t ** 2 + 3 * t ** 3,
                        t + 4 * t ** 2 - 3 * t ** 3, -t ** 2 + t ** 3], 1)  # (n, 4) for p0..p3
    rows = segs * n + (0 if closed else 1)
    basis = np.zeros((rows, k))
    for i in range(segs):
        for j, wj in enumerate(w.T):
            idx = i - 1 + j
            if closed:
                basis[i * n:(i + 1) * n, idx % k] += wj
            elif idx < 0:  # phantom end points: 2 p0 - p1 and 2 p[k-1] - p[k-2]
                basis[i * n:(i + 1) * n, 0] += 2 * wj
                basis[i * n:(i + 1) * n, 1] -= wj
            elif idx >= k:
                basis[i * n:(i + 1) * n, k - 1] += 2 * wj
                basis[i * n:(i + 1) * n, k - 2] -= wj
            else:
                basis[i * n:(i + 1) * n, idx] += wj
    if not closed:
        basis[-1, k - 1] = 1.0
    return basis


def _catmull(points: np.ndarray, closed: bool, n: int = 6) -> np.ndarray:
    """A Catmull-Rom curve through `points` (K, 2), n samples per segment."""
    pts = np.asarray(points, np.float64)
    return _catmull_basis(len(pts), closed, n) @ pts


def _fix(pts: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> OpenCV fixed point with 4 fractional bits."""
    return np.round(np.asarray(pts) * 16).astype(np.int32).reshape(-1, 1, 2)


def _poly_mask(shape_hw: tuple[int, int], pts: np.ndarray, box=None) -> np.ndarray:
    """Anti-aliased filled polygon as float32 0..1 of size shape_hw (of the box if given)."""
    mask = np.zeros(shape_hw, np.uint8)
    off = np.array([box[0], box[1]]) if box is not None else np.zeros(2)
    cv2.fillPoly(mask, [_fix(pts - off)], 255, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) * (1.0 / 255.0)


def _box(pts: np.ndarray, margin: float, limit_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(pts.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + margin).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, limit_hw[1]), min(y1, limit_hw[0])


def _paint(img: np.ndarray, box, mask: np.ndarray, colour) -> None:
    """img[box] <- lerp(img, colour, mask); colour is (3,) or an image of the box."""
    x0, y0, x1, y1 = box
    roi = img[y0:y1, x0:x1]
    m = mask[..., None]
    roi *= 1.0 - m
    roi += m * colour


def _noise(rng: np.random.Generator, hw: tuple[int, int], sigma: float) -> np.ndarray:
    n = rng.standard_normal(hw).astype(np.float32)
    if sigma > 0:
        n = cv2.GaussianBlur(n, (0, 0), sigma)
        n /= max(float(n.std()), 1e-6)
    return n


class FaceRenderer:
    """Renders frames of one actor at width x height. Static layers are built once.

    The "cartoon" style of the original corpus; `mmsd.data.synth.photo.PhotoFaceRenderer`
    overrides the layers and features for the "photo" style."""

    style = "cartoon"
    shadow_blur = (0.012, 0.02)  # blur of the wrinkle/shadow and highlight maps, face units
    shadow_gain = (0.85, 45.0)   # darkening of the shadow map, brightening (levels) of the highlights

    def __init__(self, identity: Identity, *, width: int, height: int, rng: np.random.Generator):
        self.id = identity
        self.width, self.height = width, height
        self.u = identity.scale * height  # px per face unit
        u = self.u
        # canonical patch: x in [-0.9, 0.9] u, y in [-0.78, 1.3] u around the eye-line centre
        self.origin = np.array([0.9 * u, 0.78 * u], np.float32)
        self.phw = (int(np.ceil(2.08 * u)), int(np.ceil(1.8 * u)))
        ph, pw = self.phw
        ys, xs = np.mgrid[0:ph, 0:pw].astype(np.float32)
        self.X = (xs - self.origin[0]) / u  # face-unit coordinates of patch pixels
        self.Y = (ys - self.origin[1]) / u
        self._build_skin(rng)
        self._build_hair(rng)
        self._build_background(rng)
        self.grain = [np.repeat(1.2 * _noise(rng, (height, width), 0.0)[..., None], 3, axis=2) for _ in range(4)]
        self.brow_tex = 0.75 + 0.25 * np.clip(_noise(rng, self.phw, 0.6), -2, 2) / 2

    # ---- static layers -------------------------------------------------------------
    def _ellipsoid_shading(self, cx, cy, ax, ay, light=None) -> np.ndarray:
        lx = 0.55 * self.id.light_dir if light is None else light
        nx, ny = (self.X - cx) / ax, (self.Y - cy) / ay
        nz = np.sqrt(np.clip(1.0 - nx ** 2 - ny ** 2, 0.0, 1.0))
        ldir = np.array([lx, -0.45, 1.0]) / np.linalg.norm([lx, -0.45, 1.0])
        lam = np.clip(nx * ldir[0] + ny * ldir[1] + nz * ldir[2], 0.0, 1.0)
        return (0.38 + 0.7 * lam).astype(np.float32)

    def _build_skin(self, rng) -> None:
        X, Y, sh = self.X, self.Y, self.id.shape
        shade = self._ellipsoid_shading(0.0, 0.22, 0.54, 0.8)
        g = lambda x0, y0, sx, sy: np.exp(-0.5 * (((X - x0) / sx) ** 2 + ((Y - y0) / sy) ** 2))
        for ex in (sh[36:42].mean(0), sh[42:48].mean(0)):  # eye sockets
            shade *= 1.0 - 0.2 * g(ex[0], ex[1] - 0.01, 0.09, 0.05)
        nose_x = sh[27:31, 0].mean()
        shade *= 1.0 + 0.06 * g(nose_x, 0.12, 0.025, 0.14)          # nose ridge light
        for s in (-1, 1):
            shade *= 1.0 - 0.16 * g(nose_x + s * 0.06, 0.16, 0.022, 0.1)  # nose sides
        shade *= 1.0 + 0.05 * g(0.0, -0.22, 0.25, 0.08)               # forehead sheen
        skin = np.empty(self.phw + (3,), np.float32)
        mottle = _noise(rng, self.phw, 0.06 * self.u)
        pores = _noise(rng, self.phw, 0.8)
        for c in range(3):
            skin[..., c] = self.id.skin[c] * shade * (1.0 + 0.03 * mottle + (0.014 + 0.004 * c) * pores)
        blush = g(-0.22, 0.33, 0.09, 0.07) + g(0.22, 0.33, 0.09, 0.07)
        skin += blush[..., None] * np.array([8, -4, -3], np.float32)
        if self.id.beard > 0:
            chin = np.clip(1.0 - np.abs(self.Y - 0.62) / 0.28, 0, 1) * (np.abs(X) < 0.42)
            chin *= np.clip((self.Y - 0.45) / 0.06, 0, 1)
            stubble = np.clip(0.6 + 0.5 * _noise(rng, self.phw, 0.5), 0, 1)
            skin *= (1.0 - 0.2 * self.id.beard * cv2.GaussianBlur(chin.astype(np.float32), (0, 0), 4) * stubble)[..., None]
        self.skin = np.clip(skin, 0, 255)
        # ears (static part of the head silhouette)
        ears = np.zeros(self.phw, np.uint8)
        for s in (-1, 1):
            jaw_x = abs(float(sh[1, 0])) - 0.005
            c = self.to_px(np.array([[s * jaw_x, 0.1]]))[0]
            cv2.ellipse(ears, _fix(c)[0, 0], (int(0.045 * self.u * 16), int(0.11 * self.u * 16)),
                        -s * 8, 0, 360, 255, -1, cv2.LINE_AA, 4)
            ear_shade = g(s * (jaw_x + 0.02), 0.1, 0.015, 0.06)
            self.skin *= (1.0 - 0.3 * ear_shade)[..., None]
        self.ears = ears.astype(np.float32) / 255.0

    def _build_hair(self, rng) -> None:
        X, Y, style = self.X, self.Y, self.id.hair_style
        head_w = abs(float(self.id.shape[0, 0])) + 0.03
        top = -0.62 + rng.uniform(-0.03, 0.02)
        thick = {0: 0.045, 1: 0.09, 2: 0.08, 3: 0.025}[style]
        # skull ellipse through the temples and the top of the head
        skull = ((X / (head_w + thick)) ** 2 + ((Y + 0.05) / (-top - 0.05 + thick)) ** 2) < 1.0
        part = rng.uniform(-0.15, 0.15)
        strands = cv2.GaussianBlur(_noise(rng, self.phw, 0.0), (0, 0), sigmaX=0.6, sigmaY=5.0)
        strands /= max(float(strands.std()), 1e-6)
        hairline = (-0.36 if style in (0, 3) else -0.3) + rng.uniform(-0.03, 0.05) + 0.1 * (X / head_w) ** 2 - 0.04 * np.exp(-((X - part) / 0.12) ** 2)
        hairline = hairline + 0.012 * np.clip(strands, -2.5, 2.5)  # strand tips, not a cut edge
        front = skull & (Y < hairline)
        front |= skull & (np.abs(X) > head_w - 0.06) & (Y < (-0.12 if style == 0 else 0.05)) & (style != 3)
        back = np.zeros_like(front)
        if style == 1:  # long: falls behind the shoulders
            length = rng.uniform(0.9, 1.2)
            back = (np.abs(X) < head_w + 0.1 - 0.05 * np.clip(Y - 0.5, 0, 1)) & (Y < length) & (Y > -0.1)
            back &= ((np.abs(X) / (head_w + 0.1)) ** 2 + (np.clip(Y - length + 0.15, 0, None) / 0.15) ** 2) < 1
        elif style == 2:  # bob: to the jaw
            back = (np.abs(X) < head_w + 0.08) & (Y < 0.55) & (Y > -0.1)
        alpha_f = cv2.GaussianBlur(front.astype(np.float32), (0, 0), 1.2)
        alpha_b = cv2.GaussianBlur(back.astype(np.float32), (0, 0), 1.2)
        shade = self._ellipsoid_shading(0.0, -0.1, head_w + 0.1, 0.75)
        tex = (1.0 + 0.13 * np.clip(strands, -2.5, 2.5)) * (0.55 + 0.55 * shade)
        sheen = np.exp(-0.5 * ((Y + 0.45 - 0.08 * X) / 0.05) ** 2) * 0.25
        hair = self.id.hair[None, None, :] * tex[..., None] + (sheen * 90)[..., None]
        if style == 3:  # a buzz cut: the scalp shows through a little
            alpha_f *= 0.92
            hair = hair * 0.85 + self.skin * 0.15
        self.hair_rgb = np.clip(hair, 0, 255).astype(np.float32)
        self.hair_back = alpha_b  # behind the face
        self.hair_front = alpha_f

    def _wall(self, rng, vign: np.ndarray) -> np.ndarray:
        """The wall behind the actor (H, W, 3) float32 under the vignetting `vign` (H, W): plaster."""
        h, w = self.height, self.width
        plaster = 1.0 + 0.04 * _noise(rng, (h, w), 6.0) + 0.02 * _noise(rng, (h, w), 1.0)
        return self.id.wall[None, None, :] * (vign * plaster)[..., None]

    def _shirt(self, rng, fold: np.ndarray) -> np.ndarray:
        """The shirt's pixels (H, W, 3) float32 under the shading `fold` (H, W): a plain fabric."""
        fabric = 1.0 + 0.05 * cv2.GaussianBlur(_noise(rng, (self.height, self.width), 0.0), (0, 0), 0.6, 2.5) * 3
        return self.id.shirt[None, None, :] * (fabric * fold)[..., None]

    def _build_background(self, rng) -> None:
        h, w, u = self.height, self.width, self.u
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        vign = 1.0 - 0.35 * (((xs - w * 0.5) / w) ** 2 + ((ys - h * 0.4) / h) ** 2)
        bg = self._wall(rng, vign)
        cx, cy = self.id.centre[0] * w, self.id.centre[1] * h
        # soft shadow of the person on the wall
        sh = np.zeros((h, w), np.float32)
        off = 0.12 * u * (1 if self.id.light_dir < 0 else -1)
        cv2.ellipse(sh, (int(cx + off), int(cy + 0.1 * u)), (int(0.62 * u), int(0.85 * u)), 0, 0, 360, 1.0, -1)
        cv2.ellipse(sh, (int(cx + off), int(cy + 1.55 * u)), (int(1.35 * u), int(0.6 * u)), 0, 0, 360, 1.0, -1)
        bg *= (1.0 - 0.18 * cv2.GaussianBlur(sh, (0, 0), 0.12 * u))[..., None]
        # neck
        sk = self.id.skin
        neck_w = 0.2 + 0.04 * self.id.male
        neck = np.array([[-neck_w, 0.45], [neck_w, 0.45], [neck_w + 0.06, 1.3], [-neck_w - 0.06, 1.3]])
        npts = neck * u + [cx, cy]
        m = _poly_mask((h, w), npts)
        ny = np.clip((ys - (cy + 0.55 * u)) / (0.4 * u), 0, 1)
        nshade = (0.5 + 0.3 * ny) * (1 - 0.25 * np.abs((xs - cx) / (neck_w * u + 1)) ** 2)
        neck_rgb = sk[None, None, :] * nshade[..., None] * (1 + 0.03 * _noise(rng, (h, w), 0.7))[..., None]
        bg = bg * (1 - m[..., None]) + neck_rgb * m[..., None]
        # shoulders and shirt
        t = np.linspace(-1, 1, 40)
        top = cy + (0.92 + 0.22 * t ** 2) * u
        xs_sh = cx + t * 1.25 * u
        body = np.vstack([np.stack([xs_sh, top], 1), [[cx + 1.4 * u, h + 5], [cx - 1.4 * u, h + 5]]])
        mb = _poly_mask((h, w), body)
        collar = np.array([[-0.24, 0.8], [0.24, 0.8], [0.24, 0.93], [0.0, 1.12 + 0.08 * (not self.id.male)], [-0.24, 0.93]]) * u + [cx, cy]
        mb *= 1.0 - _poly_mask((h, w), collar)
        fold = 0.8 + 0.2 * np.cos((xs - cx) / (0.9 * u) * np.pi / 2).clip(0, 1)
        shirt = self._shirt(rng, fold)
        bg = bg * (1 - mb[..., None]) + shirt * mb[..., None]
        self.background = np.clip(bg, 0, 255).astype(np.float32)
        self.col3 = np.ascontiguousarray(np.broadcast_to(np.linspace(-1, 1, w, dtype=np.float32)[None, :, None], (h, w, 3)))

    # ---- geometry --------------------------------------------------------------------
    def to_px(self, pts_u: np.ndarray) -> np.ndarray:
        """Face units -> canonical patch pixels."""
        return pts_u * self.u + self.origin

    def transform(self, pose: Pose) -> np.ndarray:
        """2x3 affine from patch pixels to frame pixels for `pose`."""
        u = self.u
        pivot_patch = self.origin + np.array([0.0, 0.7 * u])
        pivot_frame = np.array([self.id.centre[0] * self.width, self.id.centre[1] * self.height + 0.7 * u])
        a = np.deg2rad(pose.roll)
        r = pose.scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        t = pivot_frame + np.array([pose.dx, pose.dy]) * u - r @ pivot_patch
        return np.hstack([r, t[:, None]]).astype(np.float64)

    # ---- per frame -------------------------------------------------------------------
    def render(self, landmarks_u: np.ndarray, aus: np.ndarray, pose: Pose,
               tongue: float = 0.0, tuck: float = 0.0, grain_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Frame (H, W, 3) uint8 RGB and its 68 landmarks (68, 2) float32 in frame pixels."""
        lm = self.to_px(landmarks_u)
        a = {name: float(aus[i]) / 5.0 for name, i in AU_INDEX.items()}
        img = self.skin.copy()
        dark = np.zeros(self.phw, np.uint8)
        light = np.zeros(self.phw, np.uint8)
        self._wrinkles(dark, light, lm, a)
        self._brows(img, lm)
        self._eyes(img, lm, pose.gaze)
        self._mouth(img, dark, lm, tongue, tuck)
        dark_f = cv2.GaussianBlur(dark, (0, 0), self.shadow_blur[0] * self.u).astype(np.float32) * (1.0 / 255.0)
        light_f = cv2.GaussianBlur(light, (0, 0), self.shadow_blur[1] * self.u).astype(np.float32) * (1.0 / 255.0)
        img *= (1.0 - self.shadow_gain[0] * dark_f)[..., None]
        img += (light_f * self.shadow_gain[1])[..., None]
        face = self._face_alpha(lm)
        # "over" of back hair, face, front hair, premultiplied: P = hair * w_h + face * w_f
        not_front = 1.0 - self.hair_front
        w_f = face * not_front
        w_h = self.hair_front + not_front * self.hair_back * (1.0 - face)
        rgba = np.empty(self.phw + (4,), np.float32)
        rgba[..., :3] = img * w_f[..., None] + self.hair_rgb * w_h[..., None]
        rgba[..., 3] = w_f + w_h
        m = self.transform(pose)
        corners = np.array([[0, 0], [self.phw[1], 0], [0, self.phw[0]], [self.phw[1], self.phw[0]]]) @ m[:, :2].T + m[:, 2]
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [self.width, self.height])
        m_roi = m.copy()
        m_roi[:, 2] -= [x0, y0]
        warped = cv2.warpAffine(rgba, m_roi, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        frame = self.background.copy()
        roi = frame[y0:y1, x0:x1]
        roi *= 1.0 - warped[..., 3:4]
        roi += warped[..., :3]
        out = self._finish(frame, pose, grain_index)
        pts = lm @ m[:, :2].T + m[:, 2]
        return out, pts.astype(np.float32)

    def _face_alpha(self, lm) -> np.ndarray:
        """Silhouette (patch hw) 0..1: face outline from the jaw, forehead arc above, ears."""
        jaw = lm[0:17]
        head_w = abs(float(self.id.shape[0, 0]))
        arc_t = np.linspace(0, np.pi, 15)
        arc = np.stack([head_w * np.cos(arc_t), 0.03 - 0.6 * np.sin(arc_t)], 1) * self.u + self.origin
        return np.maximum(_poly_mask(self.phw, np.vstack([jaw, arc])), self.ears)

    def _finish(self, frame: np.ndarray, pose: Pose, grain_index: int) -> np.ndarray:
        """Composited float frame (H, W, 3) -> lit, grained uint8 frame."""
        lit = cv2.multiply(frame, self.col3)
        frame = cv2.addWeighted(frame, pose.gain, lit, pose.gain * pose.tilt, 0.0)
        frame = cv2.add(frame, self.grain[grain_index % len(self.grain)])
        return cv2.convertScaleAbs(frame)

    def _wrinkles(self, dark, light, lm, a) -> None:
        u = self.u
        line = lambda pts, v, th: cv2.polylines(dark, [_fix(pts)], False, int(min(v, 255)),
                                                max(1, int(round(th * u))), cv2.LINE_AA, 4) if v >= 2 else None
        brow_top = min(lm[19, 1], lm[24, 1])
        raise_ = max(a["AU01"], a["AU02"])
        for k, off in enumerate((0.07, 0.12, 0.17)):
            xs = np.linspace(-0.2, 0.2, 7) * u + self.origin[0]
            ys = brow_top - off * u + 0.02 * u * (np.linspace(-1, 1, 7) ** 2) * (1 - 2 * (k % 2))
            line(np.stack([xs, ys], 1), 110 * raise_, 0.008)
        for s in (-1, 1):  # glabella lines (AU4)
            x = self.origin[0] + s * 0.03 * u
            line(np.array([[x, lm[21, 1] - 0.05 * u], [x + s * 0.006 * u, lm[21, 1] + 0.015 * u]]), 150 * a["AU04"], 0.008)
        for c, s in ((lm[36], -1), (lm[45], 1)):  # crow's feet (AU6)
            for dy in (-0.02, 0.0, 0.02):
                line(np.array([c + [s * 0.02 * u, 0], c + [s * 0.06 * u, dy * 1.6 * u]]), 120 * a["AU06"], 0.006)
        for dy in (0.02, 0.045):  # nose wrinkles (AU9)
            xs = np.linspace(-0.04, 0.04, 5) * u + lm[28, 0]
            line(np.stack([xs, np.full(5, lm[28, 1] + dy * u)], 1), 150 * a["AU09"], 0.007)
        fold = 30 + 110 * min(1.0, a["AU12"] + 0.6 * a["AU10"] + 0.6 * a["AU09"] + 0.3 * a["AU06"])
        for wing, corner, s in ((lm[31], lm[48], -1), (lm[35], lm[54], 1)):  # nasolabial folds
            p0 = wing + [s * 0.03 * u, -0.02 * u]
            p2 = corner + [s * 0.03 * u, 0.015 * u]
            p1 = (p0 + p2) / 2 + [s * 0.035 * u, 0]
            line(_catmull(np.array([p0, p1, p2]), False, 5), fold, 0.007)
        for c, s in ((lm[48], -1), (lm[54], 1)):  # dimples (AU14)
            line(np.array([c + [s * 0.02 * u, -0.01 * u], c + [s * 0.022 * u, 0.012 * u]]), 130 * a["AU14"], 0.008)
        # nostrils, alar creases, under-lip and chin shadows
        for p, q, s in ((lm[31], lm[32], -1), (lm[35], lm[34], 1)):
            c = (p + q) / 2 + [0, -0.004 * u]
            cv2.ellipse(dark, _fix(c)[0, 0], (int(0.024 * u * 16), int(0.011 * u * 16)), s * 20, 0, 360, 255, -1, cv2.LINE_AA, 4)
            arc = np.array([p + [s * 0.01 * u, -0.05 * u], p + [s * 0.03 * u, -0.02 * u], p + [s * 0.012 * u, 0.005 * u]])
            line(_catmull(arc, False, 4), 90, 0.008)
        line(_catmull(lm[[59, 58, 57, 56, 55]] + [0, 0.03 * u], False, 4), 70, 0.025)
        chin = lm[57] + [0, 0.1 * u + 0.0]
        cv2.ellipse(dark, _fix(chin)[0, 0], (int(0.07 * u * 16), int(0.03 * u * 16)), 0, 0, 360,
                    int(25 + 80 * a["AU17"]), -1, cv2.LINE_AA, 4)
        line(lm[[32, 33, 34]] + [0, 0.012 * u], 35, 0.012)  # shadow under the nose
        cv2.circle(light, _fix(lm[30] - [0, 0.01 * u])[0, 0], int(0.02 * u * 16), 200, -1, cv2.LINE_AA, 4)
        for c in ((lm[36] + lm[48]) / 2 + [-0.03 * u, -0.04 * u], (lm[45] + lm[54]) / 2 + [0.03 * u, -0.04 * u]):
            cv2.circle(light, _fix(c)[0, 0], int(0.05 * u * 16), int(30 + 70 * a["AU06"]), -1, cv2.LINE_AA, 4)

    def _brow_polygons(self, lm, thin: float, thick: float, drop: float):
        """Each brow's outline (N, 2): `thin` (tail) to `thick` (head) face units high above its
        landmarks, which lie `drop` face units above its lower edge."""
        u, th = self.u, self.id.brow_thickness
        for idx in (np.arange(17, 22), np.arange(26, 21, -1)):
            lower = _catmull(lm[idx], False, 4)
            w = np.linspace(thin, thick, len(lower))[:, None] * th * u  # thin tail, thick head
            upper = lower - np.hstack([np.zeros_like(w), w])
            lower = lower + [0, drop * u]
            yield np.vstack([upper, lower[::-1]])

    def _eye_regions(self, lm, margin: float):
        """Per eye (the image's left one first): its 6 landmarks, closed outline curve, box (`margin`
        face units around it) and the box's hw."""
        for idx in (np.arange(36, 42), np.arange(42, 48)):
            pts = lm[idx]
            curve = _catmull(pts, True, 6)
            box = _box(curve, margin * self.u, self.phw)
            yield pts, curve, box, (box[3] - box[1], box[2] - box[0])

    def _brows(self, img, lm) -> None:
        for poly in self._brow_polygons(lm, 0.012, 0.036, 0.004):
            box = _box(poly, 3, self.phw)
            m = _poly_mask((box[3] - box[1], box[2] - box[0]), poly, box)
            m = cv2.GaussianBlur(m, (3, 3), 0) * 0.9 * self.brow_tex[box[1]:box[3], box[0]:box[2]]
            _paint(img, box, m, self.id.brow)

    def _eyes(self, img, lm, gaze) -> None:
        u = self.u
        for k, (pts, curve, box, hw) in enumerate(self._eye_regions(lm, 0.04)):
            m = _poly_mask(hw, curve, box)
            x0, y0 = box[0], box[1]
            roi = img[y0:box[3], x0:box[2]]
            eye = np.empty_like(roi)
            ew = float(np.linalg.norm(pts[3] - pts[0]))
            yy = np.arange(hw[0], dtype=np.float32)[:, None] + y0
            top = float(pts[1:3, 1].mean())
            eye[:] = np.array([236, 230, 224], np.float32) * (0.78 + 0.22 * np.clip((yy - top) / (0.02 * u), 0, 1))[..., None]
            centre = (pts[0] + pts[3]) / 2 + np.array(gaze) * [0.12 * ew, 0.05 * ew] - [x0, y0]
            r = 0.22 * ew
            c16 = _fix(centre)[0, 0]
            cv2.circle(eye, c16, int(r * 16), self.id.iris.tolist(), -1, cv2.LINE_AA, 4)
            cv2.circle(eye, c16, int(r * 0.72 * 16), (self.id.iris * 1.25).clip(0, 255).tolist(), 1, cv2.LINE_AA, 4)
            cv2.circle(eye, c16, int(r * 16), (self.id.iris * 0.45).tolist(), 1, cv2.LINE_AA, 4)
            cv2.circle(eye, c16, int(r * 0.42 * 16), (12, 10, 10), -1, cv2.LINE_AA, 4)
            cv2.circle(eye, _fix(centre + [-0.3 * r, -0.35 * r])[0, 0], max(16, int(r * 0.22 * 16)),
                       (250, 250, 250), -1, cv2.LINE_AA, 4)
            roi[:] = roi * (1 - m[..., None]) + eye * m[..., None]
            # upper lid with lashes, lower lid, crease
            upper = _catmull(pts[[0, 1, 2, 3]], False, 5) - [x0, y0]
            lower = _catmull(pts[[3, 4, 5, 0]], False, 5) - [x0, y0]
            outer = pts[0] - [x0, y0]
            wing = outer + [np.sign(outer[0] + x0 - self.origin[0]) * 0.012 * u, -0.006 * u]
            lash = np.vstack([wing, upper]) if k == 0 else np.vstack([upper, wing[None]])
            if k == 1:
                lash = np.vstack([upper, pts[[3]] - [x0, y0] + [0.012 * u, -0.006 * u]])
            cv2.polylines(roi, [_fix(lash)], False, (38, 28, 26), max(1, int(round(0.011 * u))), cv2.LINE_AA, 4)
            cv2.polylines(roi, [_fix(lower)], False, (self.id.skin * 0.62).tolist(), 1, cv2.LINE_AA, 4)
            crease = upper - [0, 0.022 * u]
            cv2.polylines(roi, [_fix(crease[1:-1])], False, (self.id.skin * 0.72).tolist(), 1, cv2.LINE_AA, 4)

    def _mouth_region(self, lm, margin: float):
        """The lips' closed outer curve, the 8 inner-lip landmarks, a box `margin` face units around
        the lips and the box's hw."""
        outer = _catmull(lm[48:60], True, 6)
        box = _box(outer, margin * self.u, self.phw)
        return outer, lm[60:68], box, (box[3] - box[1], box[2] - box[0])

    def _mouth(self, img, dark, lm, tongue, tuck) -> None:
        u = self.u
        outer, inner_pts, box, hw = self._mouth_region(lm, 0.03)
        x0, y0 = box[0], box[1]
        lips = cv2.GaussianBlur(_poly_mask(hw, outer, box), (3, 3), 0)
        yy = np.arange(hw[0], dtype=np.float32)[:, None] + y0
        mid = float(lm[[62, 66], 1].mean())
        grad = np.where(yy < mid, 0.88, 1.0 + 0.1 * np.exp(-((yy - mid - 0.025 * u) / (0.012 * u)) ** 2))
        lip_rgb = self.id.lips[None, None, :] * grad[..., None]
        _paint(img, box, lips * 0.85, lip_rgb)
        gap = float(np.mean(inner_pts[[5, 6, 7], 1] - inner_pts[[3, 2, 1], 1]))
        roi = img[y0:box[3], x0:box[2]]
        if gap > 0.3:
            inner = _catmull(inner_pts, True, 6)
            m = _poly_mask(hw, inner, box)
            mouth = self._cavity(roi, box, inner_pts, yy, mid, tongue, gaps=True)
            roi[:] = roi * (1 - m[..., None]) + mouth * m[..., None]
        if tuck > 0.2:  # upper teeth resting on the lower lip
            up = _catmull(inner_pts[[1, 2, 3]], False, 4) - [x0, y0]
            band = np.vstack([up, (up + [0, 0.02 * u])[::-1]])
            tm = _poly_mask(hw, band + [x0, y0], box) * min(1.0, tuck)
            _paint(img, box, tm, np.array([226, 222, 210], np.float32))
        # lip line and corners
        line = _catmull(inner_pts[[0, 1, 2, 3, 4]], False, 5)
        cv2.polylines(dark, [_fix(line)], False, 200, max(1, int(round(0.008 * u))), cv2.LINE_AA, 4)
        for c in (lm[48], lm[54]):
            cv2.circle(dark, _fix(c)[0, 0], int(0.008 * u * 16), 170, -1, cv2.LINE_AA, 4)

    def _cavity(self, roi, box, inner_pts, yy, mid, tongue, *, gaps: bool, lift: float = 2.0) -> np.ndarray:
        """The open mouth's inside (teeth, tongue, dark throat) as an image like `roi`;
        `gaps` draws the lines between the upper teeth, which reach `lift` px above the inner lip line."""
        u, x0, y0 = self.u, box[0], box[1]
        mouth = np.empty_like(roi)
        mouth[:] = np.array([70, 22, 28], np.float32) * (0.6 + 0.4 * np.clip((yy - mid) / (0.05 * u), 0, 1))[..., None]
        th = 0.032 * u
        up = _catmull(inner_pts[[0, 1, 2, 3, 4]], False, 5) - [x0, y0]
        cx = float(inner_pts[2, 0] - x0)
        half = 0.4 * float(inner_pts[4, 0] - inner_pts[0, 0])
        up = up[np.abs(up[:, 0] - cx) < half]
        if len(up) >= 2:
            edge = up + [0, th] - [0, 0.4 * th] * ((up[:, 0:1] - cx) / half) ** 2
            cv2.fillPoly(mouth, [_fix(np.vstack([up - [0, lift], edge[::-1]]))], (222, 218, 206), cv2.LINE_AA, 4)
            for k in (-1, 0, 1) if gaps else ():
                x = cx + k * 0.024 * u
                cv2.line(mouth, _fix([[x, up[:, 1].min()]])[0, 0], _fix([[x, up[:, 1].max() + 0.7 * th]])[0, 0],
                         (196, 190, 178), 1, cv2.LINE_AA, 4)
        low = _catmull(inner_pts[[4, 5, 6, 7, 0]], False, 5) - [x0, y0]
        lower_teeth = np.vstack([low, (low - [0, 0.6 * th])[::-1]])
        cv2.fillPoly(mouth, [_fix(lower_teeth)], (205, 200, 188), cv2.LINE_AA, 4)
        tc = inner_pts[6] - [x0, y0] - [0, (0.01 + 0.03 * tongue) * u]
        cv2.ellipse(mouth, _fix(tc)[0, 0], (int(0.06 * u * 16), int((0.02 + 0.02 * tongue) * u * 16)),
                    0, 180, 360, (175, 78, 82), -1, cv2.LINE_AA, 4)
        return mouth
