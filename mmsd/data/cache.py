"""The training cache on disk: its layout, its format and version, and the lossless frame images.
`mmsd.data.prepare` writes it, `mmsd.data.dataset` reads it.

Cache layout (format ``mmsd-cache`` version 1)::

    CACHE/
      cache.json          format, version and the settings every clip was made with
                          (crfs, hr_step, image format, degradation and MFCC configs)
      report.json         the last run's summary, with every skipped clip and why
      Actor_05/01-01-03-02-01-01-05/       one finished clip
        meta.json         key, codes, actor, emotion id, statement, num_frames T, fps
                          ("30000/1001"), has_audio, has_au, kbps per CRF, crop box
                          and its source ('landmarks', 'haar', 'centre'), source size
        arrays.npz        mfcc (T, K, M) float32 (zeros without audio), au (T, 17)
                          float32, au_mask (T,) bool, face_box and mouth_box (T, 4)
                          int32 HR xyxy (x1, y1 exclusive), hr_frames (n,) int32,
                          lr_index (C, T, 2), lr_clean_index (T, 2) and hr_index
                          (n, 2) int64 (offset, length) into frames.bin
        frames.bin        the frames as lossless WebP images (RGB, opened by any
                          image viewer), back to back: decoded LR of crfs[0] frames
                          0..T-1, of crfs[1], ..., the clean LR (before x264) frames
                          0..T-1, then the HR frames listed in hr_frames

A reader seeks to one image and decodes just that frame (``cv2.imdecode``), so the
corpus is never loaded into RAM. Lossless WebP keeps the frames bit-exact at a
quarter to a half of their raw size: HR ~110 KB of 415 KB and LR ~6.5 KB of 26 KB on
synthetic talking heads, ~175 KB and ~10 KB on a photographic face. HR frames are
stored for every ``hr_step``-th frame only (t % hr_step == 0; default 2): a 75-frame
clip at 3 CRFs then takes ~5.6 MiB, so 720 such clips take ~4 GiB (budget 6 GB);
``--hr-step 3`` saves another third of the HR. LR frames of every CRF are stored for
all frames, since every centre frame needs its 2N+1 neighbours, and so is the clean
LR (to re-code a clip at any other CRF without the source). Training and evaluation
use the frames that have HR as centre frames.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np

from mmsd.errors import MmsdError

CACHE_FORMAT = "mmsd-cache"
CACHE_VERSION = 1


def clip_dir(out: Path, key: str) -> Path:
    return out / key


def is_done(out: Path, key: str) -> bool:
    return (clip_dir(out, key) / "meta.json").is_file()


IMAGE_PARAMS = {"webp": (".webp", (101,)), "png": (".png", (1,))}


@functools.cache
def _pillow_webp():
    """Pillow's WebP module when installed with WebP support, else None."""
    try:
        from PIL import Image, features
    except ImportError:
        return None
    return Image if features.check("webp") else None


def encode_image(frame: np.ndarray, image_format: str = "webp") -> bytes:
    """One RGB uint8 frame as lossless image bytes.

    WebP goes through Pillow at its fastest lossless effort when Pillow is installed
    (about 10x faster than OpenCV's fixed effort, files ~20 % larger), else through
    OpenCV (quality > 100 means lossless). Both are lossless, so the decoded frames
    are the same either way; only size and speed differ.
    """
    import cv2

    frame = np.ascontiguousarray(frame)
    pillow = _pillow_webp() if image_format == "webp" else None
    if pillow is not None:
        buf = io.BytesIO()
        pillow.fromarray(frame).save(buf, "WEBP", lossless=True, method=0, quality=0)
        return buf.getvalue()
    suffix, (value,) = IMAGE_PARAMS[image_format]
    flag = cv2.IMWRITE_WEBP_QUALITY if image_format == "webp" else cv2.IMWRITE_PNG_COMPRESSION
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [flag, value])
    if not ok:
        raise MmsdError(f"cannot encode a {frame.shape} frame as {image_format}")
    return buf.tobytes()


def decode_image(data: bytes | np.ndarray) -> np.ndarray:
    """Bytes from `encode_image` -> (H, W, 3) uint8 RGB."""
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MmsdError("corrupt frame image in the cache")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
