"""The "photo" style of the synthetic faces (`mmsd synth --style photo`, issue 13).

Networks trained only on the cartoon style draw its ink-stroke eyes, brows and lips onto
real faces. This style draws the same face from the same landmarks and AUs (so the CSV
stays exact ground truth and the mouth/AU animation is unchanged) with photographic
statistics instead:

* features without outlines: eyes, brows and lips are painted through feathered
  (Gaussian-blurred) masks; the iris is a radial gradient with a soft limbal ring, pupil
  and catchlight; the lash line, lid crease and lip line are soft shadows; lips tint the
  skin under them (its texture shows through) with a darker upper and a lit lower lip;
* skin: low-amplitude 1/f (pink) micro-texture and fine pores on top of the ellipsoid
  shading, warmer (redder) in the shadows as skin is, soft cheek-bone light and hollows;
* hair and background textured from real photographs that scikit-image ships (the
  person-free `mmsd.data.stills.NATURAL`, never the portraits, which are the validation set):
  the hair takes a high-passed, strand-blurred photo crop as its fine structure, the wall
  is an out-of-focus photo crop toned to the wall colour and exposure;
* camera: per actor, a random colour balance and saturation, a tone curve, a slight
  optical blur and signal-dependent colour sensor noise (8 noise fields per actor, cycled).

Deterministic like the cartoon style: everything random is drawn from the renderer's rng.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from mmsd.data import stills
from mmsd.data.synth import draw
from mmsd.data.synth.face import FaceRenderer
from mmsd.data.synth.shape import Identity, Pose

# person-free photographs: backdrops (any), hair and fabric structure (fine, busy textures)
BACKDROPS = ("chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right", "brick", "grass", "gravel")
HAIR_TEXTURES = ("chelsea", "grass", "gravel", "brick", "coffee")
_NOISE_FRAMES = 8


@functools.cache
def _photo(name: str) -> np.ndarray:
    """A NATURAL photo as float32 RGB (H, W, 3); never a portrait."""
    (photo,) = [p for p in stills.NATURAL if p.name == name]
    return photo.load().astype(np.float32)


def _crop(rng: np.random.Generator, image: np.ndarray, hw: tuple[int, int], zoom: tuple[float, float]) -> np.ndarray:
    """A random crop of `image` with the aspect of `hw`, covering 1/zoom of its shorter fit, resized to hw."""
    h, w = hw
    ih, iw = image.shape[:2]
    fit = min(ih / h, iw / w)
    ch, cw = (np.array([h, w]) * fit / rng.uniform(*zoom)).astype(int)
    y = int(rng.integers(0, ih - ch + 1))
    x = int(rng.integers(0, iw - cw + 1))
    crop = image[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if ch > h else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=interp)


def pink_noise(rng: np.random.Generator, hw: tuple[int, int], beta: float = 1.0) -> np.ndarray:
    """Zero-mean unit-std noise (H, W) float32 with a 1/f^beta amplitude spectrum (natural images: beta ~ 1)."""
    h, w = hw
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    f[0, 0] = 1.0
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** beta
    spec[0, 0] = 0.0
    n = np.fft.irfft2(spec, s=hw)
    return (n / max(float(n.std()), 1e-9)).astype(np.float32)


def _luma(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114], np.float32)


class PhotoFaceRenderer(FaceRenderer):
    """The photo style: the cartoon renderer's geometry and animation, photographic pixels."""

    style = "photo"
    shadow_blur = (0.016, 0.03)  # wrinkles, folds and nostrils are soft shadows, not strokes
    shadow_gain = (0.65, 30.0)

    def __init__(self, identity: Identity, *, width: int, height: int, rng: np.random.Generator):
        # the camera, drawn first: colour balance, saturation, tone curve, lens blur, sensor noise
        px = height / 288.0  # the look was tuned at 480x288
        balance = np.array([rng.uniform(0.88, 1.12), 1.0, rng.uniform(0.86, 1.1)], np.float32)
        sat = rng.uniform(0.75, 1.1)
        luma_w = np.array([0.299, 0.587, 0.114], np.float32)
        grey = np.repeat(luma_w[None, :], 3, axis=0) * (1 - sat)
        self.colour = (np.diag(balance) @ (grey + sat * np.eye(3, dtype=np.float32))).astype(np.float32)
        gamma, contrast = rng.uniform(0.85, 1.15), rng.uniform(0.0, 0.5)
        x = np.arange(256, dtype=np.float64) / 255.0
        curve = x ** gamma
        curve = curve + contrast * 0.15 * np.sin(2 * np.pi * curve) * -1  # a gentle S curve
        self.tone = np.clip(np.round(curve * 255.0), 0, 255).astype(np.uint8)
        self.optics = float(rng.uniform(0.35, 0.85) * px)
        self.noise_floor = float(rng.uniform(0.8, 2.2))   # levels
        self.shot = float(rng.uniform(0.05, 0.18))        # levels per sqrt(level)
        self.chroma = float(rng.uniform(0.3, 0.8))        # colour part of the noise
        self.backdrop = BACKDROPS[int(rng.integers(len(BACKDROPS)))]
        self.hair_photo = HAIR_TEXTURES[int(rng.integers(len(HAIR_TEXTURES)))]
        self.fabric_photo = HAIR_TEXTURES[int(rng.integers(len(HAIR_TEXTURES)))]
        self._rng_photo = np.random.default_rng(rng.integers(2 ** 63))
        super().__init__(identity, width=width, height=height, rng=rng)
        r = self._rng_photo
        self.noise = []
        for _ in range(_NOISE_FRAMES):
            mono = r.standard_normal((height, width, 1)).astype(np.float32)
            col = r.standard_normal((height, width, 3)).astype(np.float32)
            self.noise.append(np.ascontiguousarray(((1 - self.chroma) * mono + self.chroma * col)))
        # brows: hairs run along the brow
        strands = cv2.GaussianBlur(draw.noise(r, self.phw, 0.0), (0, 0), sigmaX=0.02 * self.u, sigmaY=0.5)
        self.brow_tex = np.clip(0.85 + 0.15 * strands / max(float(strands.std()), 1e-6), 0.4, 1.0).astype(np.float32)

    # ---- static layers -------------------------------------------------------------
    def _build_skin(self, rng) -> None:
        super()._build_skin(rng)
        r, X, Y, u = self._rng_photo, self.X, self.Y, self.u
        g = lambda x0, y0, sx, sy: np.exp(-0.5 * (((X - x0) / sx) ** 2 + ((Y - y0) / sy) ** 2))
        shade = self._ellipsoid_shading(0.0, 0.22, 0.54, 0.8)
        # soften the cartoon's strong ellipsoid falloff a little, and warm the shadows (skin
        # scatters red light): a per-channel power of the shading
        soft = np.clip(shade, 0.05, None)
        warm = np.stack([soft ** -0.12, soft ** -0.04, soft ** 0.04], -1)
        lx = self.id.light_dir
        bones = 0.07 * (g(-0.27, 0.2, 0.09, 0.05) * (1 - 0.5 * lx) + g(0.27, 0.2, 0.09, 0.05) * (1 + 0.5 * lx))
        hollows = 0.06 * (g(-0.3, 0.45, 0.07, 0.1) + g(0.3, 0.45, 0.07, 0.1))
        nose_x = float(self.id.shape[27:31, 0].mean())
        sides = 0.1 * sum(g(nose_x + s * 0.06, 0.16, 0.022, 0.1) for s in (-1, 1))  # undo half the cartoon's strips
        tip = 0.06 * g(float(self.id.shape[30, 0]), float(self.id.shape[30, 1]) - 0.02, 0.03, 0.025)
        micro = 0.018 * pink_noise(r, self.phw, 1.0) + 0.006 * draw.noise(r, self.phw, 0.5 * u / 144)
        factor = (1.0 + bones - hollows + sides + micro)[..., None] * warm
        smooth = cv2.GaussianBlur(self.skin, (0, 0), 0.005 * u)  # calm the cartoon's pores
        self.skin = np.clip(smooth * factor + (tip * 120.0)[..., None], 0, 255).astype(np.float32)

    def _build_hair(self, rng) -> None:
        super()._build_hair(rng)
        r = self._rng_photo
        tex = _luma(_crop(r, _photo(self.hair_photo), self.phw, (1.0, 2.5)))
        detail = tex - cv2.GaussianBlur(tex, (0, 0), 0.012 * self.u)  # fine structure only, no blobs
        detail = cv2.GaussianBlur(detail, (0, 0), sigmaX=0.4, sigmaY=0.03 * self.u)  # strands run down
        detail /= max(float(detail.std()), 1e-6)
        self.hair_rgb = np.clip(self.hair_rgb * (1.0 + 0.16 * np.clip(detail, -2.5, 2.5))[..., None], 0, 255)
        self.hair_front = cv2.GaussianBlur(self.hair_front, (0, 0), 0.006 * self.u)
        self.hair_back = cv2.GaussianBlur(self.hair_back, (0, 0), 0.006 * self.u)

    def _wall(self, rng, vign: np.ndarray) -> np.ndarray:
        """An out-of-focus photograph, toned to the wall's colour and exposure."""
        r, (h, w) = self._rng_photo, (self.height, self.width)
        photo = _crop(r, _photo(self.backdrop), (h, w), (1.0, 2.0))
        photo = cv2.GaussianBlur(photo, (0, 0), r.uniform(0.006, 0.02) * h)  # depth of field
        mean = photo.reshape(-1, 3).mean(0) + 1.0
        toned = photo / float(_luma(mean)) * _luma(self.id.wall)             # the wall's exposure
        keep = r.uniform(0.35, 0.8)                                          # of the photo's own colours
        tint = self.id.wall / max(float(_luma(self.id.wall)), 1.0)
        bg = toned * keep + _luma(toned)[..., None] * tint * (1 - keep)
        flat = r.uniform(0.4, 0.8)  # flatten the photo's contrast towards a plain wall
        bg = bg * (1 - flat) + self.id.wall * flat * (bg.mean() / max(float(self.id.wall.mean()), 1.0))
        return (bg * vign[..., None]).astype(np.float32)

    def _shirt(self, rng, fold: np.ndarray) -> np.ndarray:
        """Fabric with a photograph's structure (high-passed, softened), in the shirt's colour."""
        r, (h, w) = self._rng_photo, (self.height, self.width)
        tex = _luma(_crop(r, _photo(self.fabric_photo), (h, w), (1.5, 3.0)))
        detail = tex - cv2.GaussianBlur(tex, (0, 0), 0.03 * self.u)
        detail = cv2.GaussianBlur(detail, (0, 0), 0.6)
        detail /= max(float(detail.std()), 1e-6)
        folds = pink_noise(r, (h, w), 1.6)  # large soft creases
        shade = fold * (1.0 + 0.05 * np.clip(detail, -3, 3) + 0.08 * folds)
        return (np.float32(0.85) * self.id.shirt + 20.0)[None, None, :] * shade[..., None]

    # ---- per frame features -----------------------------------------------------------
    def _face_alpha(self, lm) -> np.ndarray:
        return cv2.GaussianBlur(super()._face_alpha(lm), (0, 0), 0.005 * self.u)

    def _brows(self, img, lm) -> None:
        u = self.u
        for poly in self._brow_polygons(lm, 0.016, 0.04, 0.003):
            box = draw.box(poly, 0.04 * u, self.phw)
            m = cv2.GaussianBlur(draw.poly_mask((box[3] - box[1], box[2] - box[0]), poly, box), (0, 0), 0.01 * u)
            m *= 0.85 * self.brow_tex[box[1]:box[3], box[0]:box[2]]
            roi = img[box[1]:box[3], box[0]:box[2]]
            # hairs over skin: the brow colour, still carrying the skin's light and texture
            draw.paint(img, box, m, roi * (self.id.brow / np.maximum(self.id.skin, 1.0)) * 0.9 + self.id.brow * 0.1)

    def _eyes(self, img, lm, gaze) -> None:
        u = self.u
        for pts, curve, box, hw in self._eye_regions(lm, 0.05):
            x0, y0 = box[0], box[1]
            roi = img[y0:box[3], x0:box[2]]
            hard = draw.poly_mask(hw, curve, box)
            m = cv2.GaussianBlur(hard, (0, 0), 0.005 * u)
            ew = float(np.linalg.norm(pts[3] - pts[0]))
            # the eyeball: off-white, shaded towards the corners and under the upper lid
            inside = cv2.GaussianBlur(hard, (0, 0), 0.018 * u)
            lid = np.roll(inside, -max(1, int(0.012 * u)), axis=0)
            sclera = np.array([222, 212, 204], np.float32) * 0.5 + self.id.skin * 0.12
            eye = sclera * (0.55 + 0.5 * np.clip(1.6 * lid, 0, 1))[..., None]
            yy, xx = np.mgrid[0:hw[0], 0:hw[1]].astype(np.float32)
            centre = (pts[0] + pts[3]) / 2 + np.array(gaze) * [0.12 * ew, 0.05 * ew] - [x0, y0]
            rad = 0.22 * ew
            d = np.hypot(xx - centre[0], yy - centre[1]) / rad
            soft = 0.6 / rad  # ~0.6 px edges
            a_iris = np.clip((1.0 - d) / soft + 0.5, 0, 1)
            a_pupil = np.clip((0.42 - d) / soft + 0.5, 0, 1)
            ring = 1.05 - 0.55 * np.clip(d, 0, 1) ** 3  # darker limbus, lighter collarette
            iris = self.id.iris * (ring * (0.75 + 0.35 * np.clip(1.4 * lid, 0, 1)))[..., None]
            eye = eye * (1 - a_iris[..., None]) + iris * a_iris[..., None]
            eye = eye * (1 - a_pupil[..., None]) + np.float32(14) * a_pupil[..., None]
            glint = centre + [-0.3 * rad, -0.35 * rad]
            eye += (200 * np.exp(-0.5 * ((xx - glint[0]) ** 2 + (yy - glint[1]) ** 2) / (0.14 * rad + 0.35) ** 2))[..., None]
            roi[:] = roi * (1 - m[..., None]) + np.minimum(eye, 255) * m[..., None]
            # lash line, lower lid and crease as soft shadows
            shadow = np.zeros(hw, np.float32)
            upper = draw.catmull(pts[[0, 1, 2, 3]], False, 5) - [x0, y0]
            lower = draw.catmull(pts[[3, 4, 5, 0]], False, 5) - [x0, y0]
            cv2.polylines(shadow, [draw.fix(upper - [0, 0.003 * u])], False, 0.5, max(1, int(round(0.014 * u))), cv2.LINE_AA, 4)
            cv2.polylines(shadow, [draw.fix(lower + [0, 0.002 * u])], False, 0.18, max(1, int(round(0.008 * u))), cv2.LINE_AA, 4)
            cv2.polylines(shadow, [draw.fix(upper[1:-1] - [0, 0.024 * u])], False, 0.15, max(1, int(round(0.008 * u))), cv2.LINE_AA, 4)
            shadow = cv2.GaussianBlur(shadow, (0, 0), 0.008 * u)
            roi *= (1.0 - shadow)[..., None]

    def _mouth(self, img, dark, lm, tongue, tuck) -> None:
        u = self.u
        outer, inner_pts, box, hw = self._mouth_region(lm, 0.05)
        x0, y0 = box[0], box[1]
        roi = img[y0:box[3], x0:box[2]]
        lips = cv2.GaussianBlur(draw.poly_mask(hw, outer, box), (0, 0), 0.007 * u)
        yy = np.arange(hw[0], dtype=np.float32)[:, None] + y0
        mid = float(lm[[62, 66], 1].mean())
        # upper lip faces down (darker), lower lip faces the light with a soft highlight
        below = 1.0 / (1.0 + np.exp(-(yy - mid) / (0.006 * u)))
        tone = 0.84 + 0.16 * below + 0.12 * np.exp(-((yy - mid - 0.028 * u) / (0.014 * u)) ** 2)
        tint = self.id.lips / np.maximum(self.id.skin, 1.0)
        draw.paint(img, box, lips * 0.9, roi * tint * tone[..., None])
        gap = float(np.mean(inner_pts[[5, 6, 7], 1] - inner_pts[[3, 2, 1], 1]))
        if gap > 0.3:
            inner = draw.catmull(inner_pts, True, 6)
            m = cv2.GaussianBlur(draw.poly_mask(hw, inner, box), (0, 0), 0.003 * u)
            mouth = self._cavity(roi, box, inner_pts, yy, mid, tongue, gaps=False, lift=0.02 * u)
            mouth = cv2.GaussianBlur(mouth, (0, 0), 0.004 * u)
            # teeth are not paper-white, and lie in the face's light and the mouth's shade
            skin = self.skin[y0:box[3], x0:box[2]].mean((0, 1))
            light = float(np.clip(_luma(skin) / max(float(_luma(self.id.skin)), 1.0), 0.6, 1.1))
            mouth *= np.array([0.86, 0.83, 0.79], np.float32) * light
            # the upper lip shades the teeth below it
            mouth *= (0.7 + 0.3 * np.clip((yy - float(inner_pts[[1, 2, 3], 1].mean())) / (0.03 * u), 0, 1))[..., None]
            roi[:] = roi * (1 - m[..., None]) + mouth * m[..., None]
        if tuck > 0.2:  # upper teeth resting on the lower lip
            up = draw.catmull(inner_pts[[1, 2, 3]], False, 4) - [x0, y0]
            band = np.vstack([up, (up + [0, 0.02 * u])[::-1]])
            tm = cv2.GaussianBlur(draw.poly_mask(hw, band + [x0, y0], box), (0, 0), 0.004 * u) * min(1.0, tuck)
            draw.paint(img, box, tm, np.array([214, 208, 196], np.float32))
        # soft shadows too: the lip line fades as the lips part (the open mouth is dark already)
        closed = float(np.clip(1.0 - gap / (0.02 * u), 0.0, 1.0))
        line = draw.catmull(inner_pts[[0, 1, 2, 3, 4]], False, 5)
        cv2.polylines(dark, [draw.fix(line)], False, int(40 + 130 * closed), max(1, int(round(0.01 * u))), cv2.LINE_AA, 4)
        for c in (lm[48], lm[54]):
            cv2.circle(dark, draw.fix(c)[0, 0], int(0.01 * u * 16), 90, -1, cv2.LINE_AA, 4)

    # ---- camera ----------------------------------------------------------------------
    def _finish(self, frame: np.ndarray, pose: Pose, grain_index: int) -> np.ndarray:
        lit = cv2.multiply(frame, self.col3)
        frame = cv2.addWeighted(frame, pose.gain, lit, pose.gain * pose.tilt, 0.0)
        frame = cv2.GaussianBlur(frame, (0, 0), self.optics)
        frame = cv2.transform(frame, self.colour)
        sigma = self.noise_floor + self.shot * cv2.sqrt(np.maximum(frame, 0.0))
        frame += sigma * self.noise[grain_index % len(self.noise)]
        return cv2.LUT(cv2.convertScaleAbs(frame), self.tone)
