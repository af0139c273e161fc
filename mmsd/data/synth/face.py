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
draws everything from those landmarks, so the CSV landmarks are exact. The geometry (template,
identity, `deform`, `Pose`) is `mmsd.data.synth.shape`; the raster helpers `mmsd.data.synth.draw`.

Rendering: the head is drawn in a canonical patch (static textured skin with
ellipsoid shading, hair with strand texture, per-frame features with OpenCV
anti-aliased polygons, blurred wrinkle and shadow maps), warped with the head pose
(roll, translation, scale, nod) onto a static per-actor background with shoulders,
then lit with a slowly drifting gain and given light sensor noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from mmsd.data.synth import draw
from mmsd.data.synth.expression import AU_INDEX
from mmsd.data.synth.shape import Identity, Pose


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
        self.grain = [np.repeat(1.2 * draw.noise(rng, (height, width), 0.0)[..., None], 3, axis=2) for _ in range(4)]
        self.brow_tex = 0.75 + 0.25 * np.clip(draw.noise(rng, self.phw, 0.6), -2, 2) / 2

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
        mottle = draw.noise(rng, self.phw, 0.06 * self.u)
        pores = draw.noise(rng, self.phw, 0.8)
        for c in range(3):
            skin[..., c] = self.id.skin[c] * shade * (1.0 + 0.03 * mottle + (0.014 + 0.004 * c) * pores)
        blush = g(-0.22, 0.33, 0.09, 0.07) + g(0.22, 0.33, 0.09, 0.07)
        skin += blush[..., None] * np.array([8, -4, -3], np.float32)
        if self.id.beard > 0:
            chin = np.clip(1.0 - np.abs(self.Y - 0.62) / 0.28, 0, 1) * (np.abs(X) < 0.42)
            chin *= np.clip((self.Y - 0.45) / 0.06, 0, 1)
            stubble = np.clip(0.6 + 0.5 * draw.noise(rng, self.phw, 0.5), 0, 1)
            skin *= (1.0 - 0.2 * self.id.beard * cv2.GaussianBlur(chin.astype(np.float32), (0, 0), 4) * stubble)[..., None]
        self.skin = np.clip(skin, 0, 255)
        # ears (static part of the head silhouette)
        ears = np.zeros(self.phw, np.uint8)
        for s in (-1, 1):
            jaw_x = abs(float(sh[1, 0])) - 0.005
            c = self.to_px(np.array([[s * jaw_x, 0.1]]))[0]
            cv2.ellipse(ears, draw.fix(c)[0, 0], (int(0.045 * self.u * 16), int(0.11 * self.u * 16)),
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
        strands = cv2.GaussianBlur(draw.noise(rng, self.phw, 0.0), (0, 0), sigmaX=0.6, sigmaY=5.0)
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
        plaster = 1.0 + 0.04 * draw.noise(rng, (h, w), 6.0) + 0.02 * draw.noise(rng, (h, w), 1.0)
        return self.id.wall[None, None, :] * (vign * plaster)[..., None]

    def _shirt(self, rng, fold: np.ndarray) -> np.ndarray:
        """The shirt's pixels (H, W, 3) float32 under the shading `fold` (H, W): a plain fabric."""
        fabric = 1.0 + 0.05 * cv2.GaussianBlur(draw.noise(rng, (self.height, self.width), 0.0), (0, 0), 0.6, 2.5) * 3
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
        m = draw.poly_mask((h, w), npts)
        ny = np.clip((ys - (cy + 0.55 * u)) / (0.4 * u), 0, 1)
        nshade = (0.5 + 0.3 * ny) * (1 - 0.25 * np.abs((xs - cx) / (neck_w * u + 1)) ** 2)
        neck_rgb = sk[None, None, :] * nshade[..., None] * (1 + 0.03 * draw.noise(rng, (h, w), 0.7))[..., None]
        bg = bg * (1 - m[..., None]) + neck_rgb * m[..., None]
        # shoulders and shirt
        t = np.linspace(-1, 1, 40)
        top = cy + (0.92 + 0.22 * t ** 2) * u
        xs_sh = cx + t * 1.25 * u
        body = np.vstack([np.stack([xs_sh, top], 1), [[cx + 1.4 * u, h + 5], [cx - 1.4 * u, h + 5]]])
        mb = draw.poly_mask((h, w), body)
        collar = np.array([[-0.24, 0.8], [0.24, 0.8], [0.24, 0.93], [0.0, 1.12 + 0.08 * (not self.id.male)], [-0.24, 0.93]]) * u + [cx, cy]
        mb *= 1.0 - draw.poly_mask((h, w), collar)
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
        return np.maximum(draw.poly_mask(self.phw, np.vstack([jaw, arc])), self.ears)

    def _finish(self, frame: np.ndarray, pose: Pose, grain_index: int) -> np.ndarray:
        """Composited float frame (H, W, 3) -> lit, grained uint8 frame."""
        lit = cv2.multiply(frame, self.col3)
        frame = cv2.addWeighted(frame, pose.gain, lit, pose.gain * pose.tilt, 0.0)
        frame = cv2.add(frame, self.grain[grain_index % len(self.grain)])
        return cv2.convertScaleAbs(frame)

    def _wrinkles(self, dark, light, lm, a) -> None:
        u = self.u
        line = lambda pts, v, th: cv2.polylines(dark, [draw.fix(pts)], False, int(min(v, 255)),
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
            line(draw.catmull(np.array([p0, p1, p2]), False, 5), fold, 0.007)
        for c, s in ((lm[48], -1), (lm[54], 1)):  # dimples (AU14)
            line(np.array([c + [s * 0.02 * u, -0.01 * u], c + [s * 0.022 * u, 0.012 * u]]), 130 * a["AU14"], 0.008)
        # nostrils, alar creases, under-lip and chin shadows
        for p, q, s in ((lm[31], lm[32], -1), (lm[35], lm[34], 1)):
            c = (p + q) / 2 + [0, -0.004 * u]
            cv2.ellipse(dark, draw.fix(c)[0, 0], (int(0.024 * u * 16), int(0.011 * u * 16)), s * 20, 0, 360, 255, -1, cv2.LINE_AA, 4)
            arc = np.array([p + [s * 0.01 * u, -0.05 * u], p + [s * 0.03 * u, -0.02 * u], p + [s * 0.012 * u, 0.005 * u]])
            line(draw.catmull(arc, False, 4), 90, 0.008)
        line(draw.catmull(lm[[59, 58, 57, 56, 55]] + [0, 0.03 * u], False, 4), 70, 0.025)
        chin = lm[57] + [0, 0.1 * u + 0.0]
        cv2.ellipse(dark, draw.fix(chin)[0, 0], (int(0.07 * u * 16), int(0.03 * u * 16)), 0, 0, 360,
                    int(25 + 80 * a["AU17"]), -1, cv2.LINE_AA, 4)
        line(lm[[32, 33, 34]] + [0, 0.012 * u], 35, 0.012)  # shadow under the nose
        cv2.circle(light, draw.fix(lm[30] - [0, 0.01 * u])[0, 0], int(0.02 * u * 16), 200, -1, cv2.LINE_AA, 4)
        for c in ((lm[36] + lm[48]) / 2 + [-0.03 * u, -0.04 * u], (lm[45] + lm[54]) / 2 + [0.03 * u, -0.04 * u]):
            cv2.circle(light, draw.fix(c)[0, 0], int(0.05 * u * 16), int(30 + 70 * a["AU06"]), -1, cv2.LINE_AA, 4)

    def _brow_polygons(self, lm, thin: float, thick: float, drop: float):
        """Each brow's outline (N, 2): `thin` (tail) to `thick` (head) face units high above its
        landmarks, which lie `drop` face units above its lower edge."""
        u, th = self.u, self.id.brow_thickness
        for idx in (np.arange(17, 22), np.arange(26, 21, -1)):
            lower = draw.catmull(lm[idx], False, 4)
            w = np.linspace(thin, thick, len(lower))[:, None] * th * u  # thin tail, thick head
            upper = lower - np.hstack([np.zeros_like(w), w])
            lower = lower + [0, drop * u]
            yield np.vstack([upper, lower[::-1]])

    def _eye_regions(self, lm, margin: float):
        """Per eye (the image's left one first): its 6 landmarks, closed outline curve, box (`margin`
        face units around it) and the box's hw."""
        for idx in (np.arange(36, 42), np.arange(42, 48)):
            pts = lm[idx]
            curve = draw.catmull(pts, True, 6)
            box = draw.box(curve, margin * self.u, self.phw)
            yield pts, curve, box, (box[3] - box[1], box[2] - box[0])

    def _brows(self, img, lm) -> None:
        for poly in self._brow_polygons(lm, 0.012, 0.036, 0.004):
            box = draw.box(poly, 3, self.phw)
            m = draw.poly_mask((box[3] - box[1], box[2] - box[0]), poly, box)
            m = cv2.GaussianBlur(m, (3, 3), 0) * 0.9 * self.brow_tex[box[1]:box[3], box[0]:box[2]]
            draw.paint(img, box, m, self.id.brow)

    def _eyes(self, img, lm, gaze) -> None:
        u = self.u
        for k, (pts, curve, box, hw) in enumerate(self._eye_regions(lm, 0.04)):
            m = draw.poly_mask(hw, curve, box)
            x0, y0 = box[0], box[1]
            roi = img[y0:box[3], x0:box[2]]
            eye = np.empty_like(roi)
            ew = float(np.linalg.norm(pts[3] - pts[0]))
            yy = np.arange(hw[0], dtype=np.float32)[:, None] + y0
            top = float(pts[1:3, 1].mean())
            eye[:] = np.array([236, 230, 224], np.float32) * (0.78 + 0.22 * np.clip((yy - top) / (0.02 * u), 0, 1))[..., None]
            centre = (pts[0] + pts[3]) / 2 + np.array(gaze) * [0.12 * ew, 0.05 * ew] - [x0, y0]
            r = 0.22 * ew
            c16 = draw.fix(centre)[0, 0]
            cv2.circle(eye, c16, int(r * 16), self.id.iris.tolist(), -1, cv2.LINE_AA, 4)
            cv2.circle(eye, c16, int(r * 0.72 * 16), (self.id.iris * 1.25).clip(0, 255).tolist(), 1, cv2.LINE_AA, 4)
            cv2.circle(eye, c16, int(r * 16), (self.id.iris * 0.45).tolist(), 1, cv2.LINE_AA, 4)
            cv2.circle(eye, c16, int(r * 0.42 * 16), (12, 10, 10), -1, cv2.LINE_AA, 4)
            cv2.circle(eye, draw.fix(centre + [-0.3 * r, -0.35 * r])[0, 0], max(16, int(r * 0.22 * 16)),
                       (250, 250, 250), -1, cv2.LINE_AA, 4)
            roi[:] = roi * (1 - m[..., None]) + eye * m[..., None]
            # upper lid with lashes, lower lid, crease
            upper = draw.catmull(pts[[0, 1, 2, 3]], False, 5) - [x0, y0]
            lower = draw.catmull(pts[[3, 4, 5, 0]], False, 5) - [x0, y0]
            outer = pts[0] - [x0, y0]
            wing = outer + [np.sign(outer[0] + x0 - self.origin[0]) * 0.012 * u, -0.006 * u]
            lash = np.vstack([wing, upper]) if k == 0 else np.vstack([upper, wing[None]])
            if k == 1:
                lash = np.vstack([upper, pts[[3]] - [x0, y0] + [0.012 * u, -0.006 * u]])
            cv2.polylines(roi, [draw.fix(lash)], False, (38, 28, 26), max(1, int(round(0.011 * u))), cv2.LINE_AA, 4)
            cv2.polylines(roi, [draw.fix(lower)], False, (self.id.skin * 0.62).tolist(), 1, cv2.LINE_AA, 4)
            crease = upper - [0, 0.022 * u]
            cv2.polylines(roi, [draw.fix(crease[1:-1])], False, (self.id.skin * 0.72).tolist(), 1, cv2.LINE_AA, 4)

    def _mouth_region(self, lm, margin: float):
        """The lips' closed outer curve, the 8 inner-lip landmarks, a box `margin` face units around
        the lips and the box's hw."""
        outer = draw.catmull(lm[48:60], True, 6)
        box = draw.box(outer, margin * self.u, self.phw)
        return outer, lm[60:68], box, (box[3] - box[1], box[2] - box[0])

    def _mouth(self, img, dark, lm, tongue, tuck) -> None:
        u = self.u
        outer, inner_pts, box, hw = self._mouth_region(lm, 0.03)
        x0, y0 = box[0], box[1]
        lips = cv2.GaussianBlur(draw.poly_mask(hw, outer, box), (3, 3), 0)
        yy = np.arange(hw[0], dtype=np.float32)[:, None] + y0
        mid = float(lm[[62, 66], 1].mean())
        grad = np.where(yy < mid, 0.88, 1.0 + 0.1 * np.exp(-((yy - mid - 0.025 * u) / (0.012 * u)) ** 2))
        lip_rgb = self.id.lips[None, None, :] * grad[..., None]
        draw.paint(img, box, lips * 0.85, lip_rgb)
        gap = float(np.mean(inner_pts[[5, 6, 7], 1] - inner_pts[[3, 2, 1], 1]))
        roi = img[y0:box[3], x0:box[2]]
        if gap > 0.3:
            inner = draw.catmull(inner_pts, True, 6)
            m = draw.poly_mask(hw, inner, box)
            mouth = self._cavity(roi, box, inner_pts, yy, mid, tongue, gaps=True)
            roi[:] = roi * (1 - m[..., None]) + mouth * m[..., None]
        if tuck > 0.2:  # upper teeth resting on the lower lip
            up = draw.catmull(inner_pts[[1, 2, 3]], False, 4) - [x0, y0]
            band = np.vstack([up, (up + [0, 0.02 * u])[::-1]])
            tm = draw.poly_mask(hw, band + [x0, y0], box) * min(1.0, tuck)
            draw.paint(img, box, tm, np.array([226, 222, 210], np.float32))
        # lip line and corners
        line = draw.catmull(inner_pts[[0, 1, 2, 3, 4]], False, 5)
        cv2.polylines(dark, [draw.fix(line)], False, 200, max(1, int(round(0.008 * u))), cv2.LINE_AA, 4)
        for c in (lm[48], lm[54]):
            cv2.circle(dark, draw.fix(c)[0, 0], int(0.008 * u * 16), 170, -1, cv2.LINE_AA, 4)

    def _cavity(self, roi, box, inner_pts, yy, mid, tongue, *, gaps: bool, lift: float = 2.0) -> np.ndarray:
        """The open mouth's inside (teeth, tongue, dark throat) as an image like `roi`;
        `gaps` draws the lines between the upper teeth, which reach `lift` px above the inner lip line."""
        u, x0, y0 = self.u, box[0], box[1]
        mouth = np.empty_like(roi)
        mouth[:] = np.array([70, 22, 28], np.float32) * (0.6 + 0.4 * np.clip((yy - mid) / (0.05 * u), 0, 1))[..., None]
        th = 0.032 * u
        up = draw.catmull(inner_pts[[0, 1, 2, 3, 4]], False, 5) - [x0, y0]
        cx = float(inner_pts[2, 0] - x0)
        half = 0.4 * float(inner_pts[4, 0] - inner_pts[0, 0])
        up = up[np.abs(up[:, 0] - cx) < half]
        if len(up) >= 2:
            edge = up + [0, th] - [0, 0.4 * th] * ((up[:, 0:1] - cx) / half) ** 2
            cv2.fillPoly(mouth, [draw.fix(np.vstack([up - [0, lift], edge[::-1]]))], (222, 218, 206), cv2.LINE_AA, 4)
            for k in (-1, 0, 1) if gaps else ():
                x = cx + k * 0.024 * u
                cv2.line(mouth, draw.fix([[x, up[:, 1].min()]])[0, 0], draw.fix([[x, up[:, 1].max() + 0.7 * th]])[0, 0],
                         (196, 190, 178), 1, cv2.LINE_AA, 4)
        low = draw.catmull(inner_pts[[4, 5, 6, 7, 0]], False, 5) - [x0, y0]
        lower_teeth = np.vstack([low, (low - [0, 0.6 * th])[::-1]])
        cv2.fillPoly(mouth, [draw.fix(lower_teeth)], (205, 200, 188), cv2.LINE_AA, 4)
        tc = inner_pts[6] - [x0, y0] - [0, (0.01 + 0.03 * tongue) * u]
        cv2.ellipse(mouth, draw.fix(tc)[0, 0], (int(0.06 * u * 16), int((0.02 + 0.02 * tongue) * u * 16)),
                    0, 180, 360, (175, 78, 82), -1, cv2.LINE_AA, 4)
        return mouth
