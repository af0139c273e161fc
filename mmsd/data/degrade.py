"""The paper's degradation (Sec. 4.1): face crop -> HR 480x288 -> 4x bicubic LR 120x72.

The x264 round trip of the LR frames at each CRF is `mmsd.media.codec.encode_decode`;
this module does the geometry: one crop box per clip, resizing, and the face and
mouth boxes (in HR pixels) that metrics and losses use.

Crop box (source pixels, exactly 5:3 W:H, one per clip so the camera does not move):

* **landmarks** (an OpenFace CSV is present): the union of the 68-point extents over
  the frames OpenFace tracked (success, confidence >= 0.5), taken between the 2nd and
  98th percentiles so a few bad frames cannot blow it up. The extent spans brows to
  chin (height L); the head above the brows (forehead, hair) is 0.5-0.9 L. The crop
  is 2.0 L high, centred 0.25 L above the extent's centre, so it spans 0.75 L above
  the brows and 0.25 L below the chin: the whole head fits, with a little neck; its
  width is 5/3 of that, and at least 2x the extent's width.
* **haar** (no CSV): OpenCV's frontal-face cascade on the first 5 frames, the median
  of the largest detection per frame. That box spans roughly mid-forehead to chin
  (height F); the crop is 2.0 F high, centred 0.2 F above the box centre (0.7 F above
  the box, 0.3 F below).
* **centre** (no face found): the largest 5:3 box centred in the frame.
* **whole** (`whole_frame_crop`, `mmsd prepare --crop whole`): the largest 5:3 box
  centred in the frame whatever the face, i.e. the frame as `mmsd encode` sends it;
  faces are then as small as they are in the source (our choice, for training at
  other face scales: issue 13). The face and mouth boxes still come from the
  landmarks, else from the Haar box.

A box larger than the frame is shrunk to the largest 5:3 box that fits, then shifted
inside the frame. The crop is resized to 480x288 and downsampled 4x with bicubic
antialiased filtering (``torch.nn.functional.interpolate(mode='bicubic', antialias=True)``,
as PIL's and Matlab's ``imresize`` do).

Face and mouth boxes are int (x0, y0, x1, y1) in HR pixels, x1/y1 exclusive (slice
``hr[y0:y1, x0:x1]``), clipped to the frame, one per frame:

* from landmarks: face = the 68-point extent; mouth = points 48-67 widened by 25 % of
  the mouth width on each side and 35 % of its height above and below (so open and
  closed mouths both keep lips and some skin). Untracked frames take the nearest
  tracked frame's boxes.
* from the Haar box (or the centre guess): face = that box; mouth = its fixed
  lower-face part, x 25-75 %, y 62-92 % of the face box.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from mmsd.data.openface import OpenFaceTrack

Box = tuple[int, int, int, int]  # x0, y0, x1, y1; x1/y1 exclusive

MOUTH_POINTS = slice(48, 68)  # iBUG 68-point indices of the outer and inner lips


@dataclass(frozen=True)
class DegradeConfig:
    """All numbers of the degradation; sizes are W x H."""

    hr_width: int = 480
    hr_height: int = 288
    scale: int = 4
    min_confidence: float = 0.5  # OpenFace rows below this count as untracked
    landmark_percentiles: tuple[float, float] = (2.0, 98.0)
    landmark_crop_height: float = 2.0  # crop height / landmark-extent height
    landmark_crop_width: float = 2.0  # crop width >= this x landmark-extent width
    landmark_centre_shift: float = -0.25  # crop centre y - extent centre y, in extent heights
    haar_frames: int = 5
    haar_min_face: float = 0.1  # smallest face side the cascade looks for / frame's short side
    haar_crop_height: float = 2.0  # crop height / Haar box height
    haar_centre_shift: float = -0.2  # crop centre y - Haar box centre y, in box heights
    mouth_margin_x: float = 0.25  # of the mouth landmarks' width, each side
    mouth_margin_y: float = 0.35  # of the mouth landmarks' height, above and below
    mouth_in_face: tuple[float, float, float, float] = (0.25, 0.62, 0.75, 0.92)  # x0 y0 x1 y1 fractions

    def __post_init__(self) -> None:
        if self.hr_width % self.scale or self.hr_height % self.scale:
            raise ValueError(f"HR size {self.hr_width}x{self.hr_height} is not divisible by scale {self.scale}")

    @property
    def lr_width(self) -> int:
        return self.hr_width // self.scale

    @property
    def lr_height(self) -> int:
        return self.hr_height // self.scale


@dataclass(frozen=True)
class FaceCrop:
    """The crop box of a clip and where it came from."""

    box: Box  # source pixels, exactly hr_width:hr_height
    source: str  # 'landmarks', 'haar', 'centre' or 'whole'
    face: tuple[float, float, float, float] | None  # the face box it was built on (source pixels), None for 'centre'


# --------------------------------------------------------------------------- resizing


def resize(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic antialiased resize of uint8 frames (..., H, W, 3) -> (..., height, width, 3) uint8."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3) or (H, W, 3), got {frames.dtype} {frames.shape}")
    single = frames.ndim == 3
    x = torch.from_numpy(np.ascontiguousarray(frames[None] if single else frames))
    x = x.permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    out = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (T, height, width, 3)
    return out[0] if single else out


def downsample(frames: np.ndarray, scale: int = 4) -> np.ndarray:
    """The paper's LR frames: bicubic antialiased 1/scale resize, uint8 (..., H, W, 3) in and out."""
    frames = np.asarray(frames)
    height, width = frames.shape[-3:-1]
    if height % scale or width % scale:
        raise ValueError(f"frame size {width}x{height} is not divisible by scale {scale}")
    return resize(frames, width // scale, height // scale)


def crop_resize(frames: np.ndarray, crop: FaceCrop, cfg: DegradeConfig = DegradeConfig()) -> np.ndarray:
    """HR frames: the crop box cut from source frames (..., H, W, 3), resized to hr_width x hr_height. A box
    that overhangs the frame (`native` on a small source) gets the overhang by reflection."""
    frames = np.asarray(frames)
    x0, y0, x1, y1 = crop.box
    height, width = frames.shape[-3:-1]
    pad_y, pad_x = (max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width))
    if any(pad_y + pad_x):
        frames = np.pad(frames, [(0, 0)] * (frames.ndim - 3) + [pad_y, pad_x, (0, 0)], mode="reflect")
        x0, x1, y0, y1 = x0 + pad_x[0], x1 + pad_x[0], y0 + pad_y[0], y1 + pad_y[0]
    return resize(frames[..., y0:y1, x0:x1, :], cfg.hr_width, cfg.hr_height)


# --------------------------------------------------------------------------- crop box


def track_rows(track: OpenFaceTrack, num_frames: int, min_confidence: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Which CSV row belongs to each video frame: (rows (T,) int, valid (T,) bool).

    OpenFace numbers frames from 1; frame t of the video is the row with frame == t+1.
    A frame without such a row, or with success 0 or low confidence, is not valid.
    """
    rows = np.zeros(num_frames, dtype=np.int64)
    valid = np.zeros(num_frames, dtype=bool)
    good = _good_rows(track, min_confidence)
    for row, frame in enumerate(np.asarray(track.frame, dtype=np.int64)):
        t = int(frame) - 1
        if 0 <= t < num_frames and not valid[t]:
            rows[t], valid[t] = row, bool(good[row])
    return rows, valid


def _good_rows(track: OpenFaceTrack, min_confidence: float) -> np.ndarray:
    landmarks = np.asarray(track.landmarks, dtype=np.float64)  # (R, 68, 2)
    good = np.asarray(track.success, dtype=bool) & (np.asarray(track.confidence) >= min_confidence)
    return good & np.isfinite(landmarks).all(axis=(1, 2)) & (np.ptp(landmarks, axis=1) > 0).all(axis=1)


def face_crop_box(
    frames: Sequence[np.ndarray] | None,
    *,
    width: int,
    height: int,
    track: OpenFaceTrack | None = None,
    cfg: DegradeConfig = DegradeConfig(),
) -> FaceCrop:
    """The clip's 5:3 face-centred crop box in a width x height source (see module docstring).

    frames: the first frames of the clip (RGB uint8), used only without usable landmarks.
    """
    if width < 1 or height < 1:
        raise ValueError(f"source size must be positive, got {width}x{height}")
    if track is not None:
        good = _good_rows(track, cfg.min_confidence)
        if good.any():
            points = np.asarray(track.landmarks, dtype=np.float64)[good]  # (R, 68, 2)
            low, high = cfg.landmark_percentiles
            x0, y0 = np.percentile(points.min(axis=1), low, axis=0)
            x1, y1 = np.percentile(points.max(axis=1), high, axis=0)
            face_h, face_w = y1 - y0, x1 - x0
            aspect = cfg.hr_height / cfg.hr_width
            crop_h = max(cfg.landmark_crop_height * face_h, cfg.landmark_crop_width * face_w * aspect)
            centre = ((x0 + x1) / 2, (y0 + y1) / 2 + cfg.landmark_centre_shift * face_h)
            box = _fit_box(centre, crop_h, width, height, cfg)
            return FaceCrop(box=box, source="landmarks", face=(x0, y0, x1, y1))
    face = detect_face(frames[: cfg.haar_frames], cfg) if frames is not None and len(frames) else None
    if face is not None:
        x0, y0, x1, y1 = face
        face_h = y1 - y0
        centre = ((x0 + x1) / 2, (y0 + y1) / 2 + cfg.haar_centre_shift * face_h)
        box = _fit_box(centre, cfg.haar_crop_height * face_h, width, height, cfg)
        return FaceCrop(box=box, source="haar", face=face)
    box = _fit_box((width / 2, height / 2), float(height), width, height, cfg)
    return FaceCrop(box=box, source="centre", face=None)


def whole_frame_crop(
    frames: Sequence[np.ndarray] | None,
    *,
    width: int,
    height: int,
    track: OpenFaceTrack | None = None,
    cfg: DegradeConfig = DegradeConfig(),
) -> FaceCrop:
    """The largest centred 5:3 box of a width x height source; `face` from the Haar detector
    when there are no landmarks (landmarks, when present, give the face boxes directly)."""
    box = _fit_box((width / 2, height / 2), float(height), width, height, cfg)
    face = None
    if track is None or not _good_rows(track, cfg.min_confidence).any():
        face = detect_face(frames[: cfg.haar_frames], cfg) if frames is not None and len(frames) else None
    return FaceCrop(box=box, source="whole", face=face)


def unmagnified(crop: FaceCrop, *, width: int, height: int, cfg: DegradeConfig = DegradeConfig()) -> FaceCrop:
    """`crop` grown about its centre to at least hr_height rows, so that the HR frames cut from it are
    never magnified: a face smaller than the paper crop's scale keeps its own scale and its sharpness
    instead of being upsampled. A source too small to hold hr_width x hr_height pixels (CIF, 352x288)
    gets the `native` box: its own pixels with reflected sides."""
    x0, y0, x1, y1 = crop.box
    if y1 - y0 >= cfg.hr_height:
        return crop
    if width < cfg.hr_width or height < cfg.hr_height:
        return native(crop, width=width, height=height, cfg=cfg)
    return dataclasses.replace(crop, box=_fit_box(((x0 + x1) / 2, (y0 + y1) / 2), float(cfg.hr_height), width,
                                                  height, cfg))


def native(crop: FaceCrop, *, width: int, height: int, cfg: DegradeConfig = DegradeConfig()) -> FaceCrop:
    """An hr_width x hr_height box at the source's own scale about `crop`'s centre: HR frames cut from it
    are neither magnified nor shrunk, so the face has the size at which a whole-frame call (`mmsd encode`,
    4x down of the source) is restored. On an axis where the source is large enough the box stays inside
    it; where it is smaller, the box is centred on the source and overhangs it (filled by reflection)."""
    x0, y0, x1, y1 = crop.box

    def start(centre: float, size: int, source: int) -> int:
        if source >= size:
            return int(np.clip(round(centre - size / 2), 0, source - size))
        return -((size - source) // 2)

    bx, by = start((x0 + x1) / 2, cfg.hr_width, width), start((y0 + y1) / 2, cfg.hr_height, height)
    return dataclasses.replace(crop, box=(bx, by, bx + cfg.hr_width, by + cfg.hr_height))


def _fit_box(centre: tuple[float, float], crop_h: float, width: int, height: int, cfg: DegradeConfig) -> Box:
    """An exact hr_width:hr_height integer box of about crop_h rows around centre, inside the frame."""
    unit = math.gcd(cfg.hr_width, cfg.hr_height)
    aspect_w, aspect_h = cfg.hr_width // unit, cfg.hr_height // unit  # 5, 3
    k = int(round(crop_h / aspect_h))
    k = max(1, min(k, height // aspect_h, width // aspect_w))  # largest multiple that fits when too big
    if k * aspect_h > height or k * aspect_w > width:
        raise ValueError(f"source {width}x{height} is smaller than one {aspect_w}:{aspect_h} block")
    box_w, box_h = k * aspect_w, k * aspect_h
    x0 = int(np.clip(round(centre[0] - box_w / 2), 0, width - box_w))
    y0 = int(np.clip(round(centre[1] - box_h / 2), 0, height - box_h))
    return x0, y0, x0 + box_w, y0 + box_h


_CASCADE = None


def _cascade():
    global _CASCADE
    if _CASCADE is None:
        import cv2

        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        _CASCADE = cv2.CascadeClassifier(path)
        if _CASCADE.empty():
            raise RuntimeError(f"cannot load the OpenCV face cascade {path}")
    return _CASCADE


def detect_face(
    frames: Sequence[np.ndarray], cfg: DegradeConfig = DegradeConfig()
) -> tuple[float, float, float, float] | None:
    """Median of the largest Haar frontal-face detection per frame (x0, y0, x1, y1), or None."""
    found = []
    for frame in frames:
        faces = detect_faces(frame, cfg)
        if faces:
            found.append(max(faces, key=lambda f: (f[2] - f[0]) * (f[3] - f[1])))
    if not found:
        return None
    return tuple(float(v) for v in np.median(np.asarray(found, dtype=np.float64), axis=0))


def detect_faces(image: np.ndarray, cfg: DegradeConfig = DegradeConfig()) -> list[tuple[float, float, float, float]]:
    """Every Haar frontal-face detection (x0, y0, x1, y1) in one RGB image, in its pixels."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    # detect on at most 640 px wide images: faces in talking-head video are large
    shrink = max(1.0, gray.shape[1] / 640)
    if shrink > 1:
        size = (round(gray.shape[1] / shrink), round(gray.shape[0] / shrink))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    side = max(16, int(cfg.haar_min_face * min(gray.shape)))
    faces = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    return [(float(x * shrink), float(y * shrink), float((x + w) * shrink), float((y + h) * shrink))
            for x, y, w, h in faces]


# --------------------------------------------------------------------------- face and mouth boxes


def to_hr(points: np.ndarray, crop: FaceCrop, cfg: DegradeConfig = DegradeConfig()) -> np.ndarray:
    """Source pixel coordinates (..., 2) (x, y) -> HR pixel coordinates (pixel centres map to centres)."""
    x0, y0, x1, _ = crop.box
    s = cfg.hr_width / (x1 - x0)
    return (np.asarray(points, dtype=np.float64) - (x0, y0) + 0.5) * s - 0.5


def face_mouth_boxes(
    crop: FaceCrop,
    num_frames: int,
    *,
    track: OpenFaceTrack | None = None,
    cfg: DegradeConfig = DegradeConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Face and mouth boxes per frame in HR pixels: two (T, 4) int32 arrays (see module docstring)."""
    rows, valid = (None, None)
    if track is not None:
        rows, valid = track_rows(track, num_frames, cfg.min_confidence)
    if valid is not None and valid.any():
        points = to_hr(np.asarray(track.landmarks, dtype=np.float64)[rows], crop, cfg)  # (T, 68, 2)
        face = np.concatenate([points.min(axis=1), points.max(axis=1) + 1], axis=1)  # (T, 4)
        lips = points[:, MOUTH_POINTS]  # (T, 20, 2)
        lo, hi = lips.min(axis=1), lips.max(axis=1)
        pad = (hi - lo) * (cfg.mouth_margin_x, cfg.mouth_margin_y)
        mouth = np.concatenate([lo - pad, hi + pad + 1], axis=1)
        nearest = _nearest_valid(valid)
        face, mouth = face[nearest], mouth[nearest]
    else:
        if crop.face is not None:
            box = to_hr(np.asarray(crop.face).reshape(2, 2), crop, cfg).reshape(4)
        else:
            box = _centre_face_guess(cfg)
        return boxes_from_face(np.tile(box, (num_frames, 1)), cfg)
    return _clip_boxes(face, cfg), _clip_boxes(mouth, cfg)


def boxes_from_face(face: np.ndarray, cfg: DegradeConfig = DegradeConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Face boxes (T, 4) float in HR pixels, and the mouth as the fixed lower part of each
    (`mouth_in_face`): two (T, 4) int32 arrays, clipped to the frame."""
    fx0, fy0, fx1, fy1 = cfg.mouth_in_face
    w, h = face[:, 2] - face[:, 0], face[:, 3] - face[:, 1]
    mouth = np.stack([face[:, 0] + fx0 * w, face[:, 1] + fy0 * h, face[:, 0] + fx1 * w, face[:, 1] + fy1 * h], 1)
    return _clip_boxes(face, cfg), _clip_boxes(mouth, cfg)


def _centre_face_guess(cfg: DegradeConfig) -> np.ndarray:
    """Where the landmark rule would have put the face in the crop: the crop's inverse."""
    face_h = cfg.hr_height / cfg.landmark_crop_height
    cy = cfg.hr_height / 2 - cfg.landmark_centre_shift * face_h
    cx = cfg.hr_width / 2
    return np.array([cx - face_h / 2, cy - face_h / 2, cx + face_h / 2, cy + face_h / 2])


def _nearest_valid(valid: np.ndarray) -> np.ndarray:
    """For every frame the index of the nearest valid frame (itself when valid)."""
    good = np.flatnonzero(valid)
    t = np.arange(len(valid))
    pos = np.clip(np.searchsorted(good, t), 1, max(1, len(good) - 1))
    left, right = good[pos - 1], good[np.minimum(pos, len(good) - 1)]
    return np.where(np.abs(t - left) <= np.abs(right - t), left, right)


def _clip_boxes(boxes: np.ndarray, cfg: DegradeConfig) -> np.ndarray:
    out = np.empty(boxes.shape, dtype=np.int32)
    out[:, [0, 2]] = np.clip(np.rint(boxes[:, [0, 2]]), 0, cfg.hr_width)
    out[:, [1, 3]] = np.clip(np.rint(boxes[:, [1, 3]]), 0, cfg.hr_height)
    return out
