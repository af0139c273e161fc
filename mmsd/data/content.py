"""``mmsd content KIND --out CACHE``: caches of real-image content beside the synthetic corpus.

Kinds (each a cache in the `mmsd prepare` format, so the Dataset, `mmsd train --mix` and
`mmsd eval` take its clips like any other; clips have no audio (zero MFCC) and no AU target):

* ``portraits`` -- the real-face **validation** set: every portrait of `mmsd.data.stills.PORTRAITS`
  filmed along `clips` camera paths at two framings: ``head`` (the paper's 5:3 crop, 2x the
  Haar face box high, but never magnified: Grace Hopper's face is then at the paper crop's
  scale, the astronaut's at 0.65x) and ``wide`` (the whole photograph's height in the frame,
  as `mmsd encode` sends a whole frame: faces at 0.35-0.7x). Where the photograph is
  narrower than the 5:3 window, its sides are reflected. Actor = the portrait's position (1 astronaut, 2 grace_hopper),
  statement = framing (1 head, 2 wide), repetition = camera path. Never train on these.
* ``photos`` -- natural scenes for **training**: each photograph of `mmsd.data.stills.NATURAL`
  filmed along `clips_per_photo` random camera paths at a random zoom (always downscaling,
  so the HR frames are sharp). Actor = the photograph's position + 1.
* ``scenes`` -- the same for the photographs of `mmsd.data.stills.SCENES` (scikit-learn's and
  Debian's ``opencv-doc``'s; other camera paths than ``photos``'s).
* ``faces`` -- real faces for **training**: each photograph of `mmsd.data.stills.FACES` (not the
  portraits) filmed along `clips_per_photo` random camera paths, framed between the paper's
  head crop and one twice as loose (faces at 0.5-1x the crop's scale), mirrored on every
  second path. Face boxes move with the camera, so `--crop-focus face` finds the face.
  Actor = the photograph's position + 1.
* ``morefaces`` -- the same for the faces of `mmsd.data.stills.MORE_FACES` (photographs that PyPI
  packages ship, read from the package files of `mmsd.data.stills.archive_dir()`; other camera paths).
* ``pypifaces`` -- the same for the 22 faces of `mmsd.data.stills.PYPI_FACES` (sample photographs of five
  more PyPI packages; other camera paths).
* ``leaves`` -- moving dead-leaves clips for **training** (`mmsd.data.deadleaves`). Actor = 1 + clip // 10.
* ``realvideo`` -- real talking-head video that npm and PyPI packages ship (`mmsd.data.realvideo`), cut into
  ``--frames``-frame segments every ``--stride`` seconds along a head-following crop; ``--split train``
  (training) or ``--split val`` (validation: never train on it). Actor = the person; clips with sound
  keep it (MFCC), the others have zero MFCC.

The degradation is the paper's, done by `mmsd.data.prepare.build_cache`: 4x antialiased bicubic
down, x264 at each CRF, decoded back. Everything is deterministic in (kind, seed, clip).
"""

from __future__ import annotations

import argparse
import functools
from fractions import Fraction
from pathlib import Path

import numpy as np

from mmsd.data.degrade import DegradeConfig, boxes_from_face
from mmsd.data.prepare import NUM_AUS, ClipContent, EntryJob, PrepareSettings, build_cache
from mmsd.data.stills import (FACES, MORE_FACES, NATURAL, PORTRAITS, PYPI_FACES, SCENES, Motion, Photo, animate,
                              tint_grey)
from mmsd.errors import MmsdError
from mmsd.media.timing import FrameTiming

FPS = Fraction(30)
FRAMINGS = ("head", "wide")
KINDS = ("portraits", "photos", "scenes", "faces", "morefaces", "pypifaces", "leaves", "realvideo")
# training photographs and the salt of their camera paths
STILLS: dict[str, tuple[tuple[Photo, ...], int]] = {"photos": (NATURAL, 0x9407), "scenes": (SCENES, 0x5CE2)}
FACE_SETS: dict[str, tuple[tuple[Photo, ...], int]] = {"faces": (FACES, 0xFACE5), "morefaces": (MORE_FACES, 0xFACE6),
                                                       "pypifaces": (PYPI_FACES, 0xFACE7)}


def _content(frames: np.ndarray, face: np.ndarray | None, labels: dict, cfg: DegradeConfig) -> ClipContent:
    """A ClipContent without audio or AUs; `face` (T, 4) float HR boxes, None = the whole frame."""
    num_frames = len(frames)
    if face is None:
        face = np.tile([0.0, 0.0, cfg.hr_width, cfg.hr_height], (num_frames, 1))
    face_box, mouth_box = boxes_from_face(face, cfg)
    return ClipContent(hr=frames, timing=FrameTiming.constant(FPS), samples=np.zeros(0, np.float32),
                       au=np.zeros((num_frames, NUM_AUS), np.float32), au_mask=np.zeros(num_frames, bool),
                       face_box=face_box, mouth_box=mouth_box, labels=labels)


def _labels(key: str, name: str, actor: int, statement: int, repetition: int, source: str, size) -> dict:
    return {"key": key, "name": name, "actor": actor, "emotion": 0, "emotion_name": "neutral", "channel": 1,
            "statement": statement, "repetition": repetition, "crop_box": [0, 0, int(size[0]), int(size[1])],
            "crop_source": "whole", "source_size": [int(size[0]), int(size[1])], "source": source, "notes": []}


# --------------------------------------------------------------------------- the kinds


def portrait_clip(index: int, framing: str, path: int, num_frames: int, seed: int) -> ClipContent:
    """Portrait `index` of PORTRAITS, filmed at `framing` along camera path `path`."""
    cfg = DegradeConfig()
    photo = PORTRAITS[index]
    image = photo.load()
    x0, y0, x1, y1 = photo.face
    face_h = y1 - y0
    if framing == "head":  # the Haar-box rule of mmsd.data.degrade: 2x the box high, centred 0.2 box above
        centre, crop_h = ((x0 + x1) / 2, (y0 + y1) / 2 + cfg.haar_centre_shift * face_h), cfg.haar_crop_height * face_h
    else:
        centre, crop_h = (image.shape[1] / 2, image.shape[0] / 2), float(image.shape[0])
    rng = np.random.default_rng([seed, 0xFACE, index, FRAMINGS.index(framing), path])
    frames, boxes = animate(image, centre=centre, crop_height=crop_h, num_frames=num_frames, rng=rng,
                            width=cfg.hr_width, height=cfg.hr_height, fps=float(FPS), face=photo.face)
    name = f"{photo.name}-{framing}-{path}"
    key = f"Actor_{index + 1:02d}/{name}"
    labels = _labels(key, name, index + 1, FRAMINGS.index(framing) + 1, path, str(photo.path), image.shape[1::-1])
    return _content(frames, boxes, labels, cfg)


def photo_clip(index: int, clip: int, num_frames: int, seed: int, kind: str = "photos") -> ClipContent:
    """Photograph `index` of the `kind`'s stills (`STILLS`) along random camera path `clip`."""
    cfg = DegradeConfig()
    stills, salt = STILLS[kind]
    photo = stills[index]
    rng = np.random.default_rng([seed, salt, index, clip])
    image = tint_grey(photo.load(), rng)
    h, w = image.shape[:2]
    crop_h = rng.uniform(1.0, 2.5) * cfg.hr_height  # always downscaled: sharp HR frames
    centre = (rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h)
    motion = Motion(pan=rng.uniform(0.02, 0.08), zoom=rng.uniform(0.02, 0.08), roll=rng.uniform(0.5, 3.0))
    frames, _ = animate(image, centre=centre, crop_height=crop_h, num_frames=num_frames, rng=rng,
                        width=cfg.hr_width, height=cfg.hr_height, fps=float(FPS), motion=motion)
    name = f"{photo.name}-{clip}"
    key = f"Actor_{index + 1:02d}/{name}"
    return _content(frames, None, _labels(key, name, index + 1, 1, clip, str(photo.path), (w, h)), cfg)


def face_clip(index: int, clip: int, num_frames: int, seed: int, kind: str = "faces") -> ClipContent:
    """Real face `index` of FACES (kind 'faces'), MORE_FACES ('morefaces') or PYPI_FACES ('pypifaces') along
    random camera path `clip` (mirrored when `clip` is even)."""
    cfg = DegradeConfig()
    photos, salt = FACE_SETS[kind]
    photo = photos[index]
    rng = np.random.default_rng([seed, salt, index, clip])
    image, (x0, y0, x1, y1) = photo.load(), photo.face
    if clip % 2 == 0:
        image, (x0, x1) = image[:, ::-1], (image.shape[1] - x1, image.shape[1] - x0)
    face_h = y1 - y0
    # the paper's head crop, 0.7-1.5x as high: faces at 0.67-1.43x its scale (a narrow photo's sides reflected)
    crop_h = rng.uniform(0.7, 1.5) * cfg.haar_crop_height * face_h
    centre = ((x0 + x1) / 2, (y0 + y1) / 2 + cfg.haar_centre_shift * face_h)
    motion = Motion(pan=rng.uniform(0.02, 0.06), zoom=rng.uniform(0.02, 0.08), roll=rng.uniform(0.5, 3.0))
    frames, boxes = animate(np.ascontiguousarray(image), centre=centre, crop_height=crop_h, num_frames=num_frames,
                            rng=rng, width=cfg.hr_width, height=cfg.hr_height, fps=float(FPS), motion=motion,
                            face=(x0, y0, x1, y1))
    name = f"{photo.name}-{clip}"
    key = f"Actor_{index + 1:02d}/{name}"
    labels = _labels(key, name, index + 1, 1, clip, str(photo.path), image.shape[1::-1])
    return _content(frames, boxes, labels, cfg)


@functools.cache
def _leaf_sources(seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(palette (N, 3) uint8 of natural-photo pixels, the natural photos as textures)."""
    rng = np.random.default_rng([seed, 0x1EAF])
    photos = [tint_grey(p.load(), rng) for p in NATURAL]
    palette = np.concatenate([p.reshape(-1, 3)[rng.integers(0, p.shape[0] * p.shape[1], 400)] for p in photos])
    return palette, photos


def leaves_clip(clip: int, num_frames: int, seed: int) -> ClipContent:
    """Moving dead-leaves clip number `clip`."""
    from mmsd.data import deadleaves

    cfg = DegradeConfig()
    palette, textures = _leaf_sources(seed)
    rng = np.random.default_rng([seed, 0xDEAD, clip])
    frames = deadleaves.leaves_clip(rng, num_frames=num_frames, palette=palette, textures=textures,
                                    width=cfg.hr_width, height=cfg.hr_height, fps=float(FPS))
    actor = 1 + clip // 10
    name = f"leaves-{clip:03d}"
    key = f"Actor_{actor:02d}/{name}"
    return _content(frames, None, _labels(key, name, actor, 1, clip, "dead leaves", (cfg.hr_width, cfg.hr_height)), cfg)


def jobs(kind: str, *, clips: int, frames: int, seed: int = 0) -> list[EntryJob]:
    """The cache entries of one kind; `clips` = camera paths per portrait and framing, clips per
    photograph (or face), or dead-leaves clips."""
    if kind == "portraits":
        return [EntryJob(f"Actor_{i + 1:02d}/{p.name}-{framing}-{path}", str(p.path),
                         functools.partial(portrait_clip, i, framing, path, frames, seed))
                for i, p in enumerate(PORTRAITS) for framing in FRAMINGS for path in range(1, clips + 1)]
    if kind in STILLS:
        return [EntryJob(f"Actor_{i + 1:02d}/{p.name}-{c}", str(p.path),
                         functools.partial(photo_clip, i, c, frames, seed, kind))
                for i, p in enumerate(STILLS[kind][0]) for c in range(1, clips + 1)]
    if kind in FACE_SETS:
        return [EntryJob(f"Actor_{i + 1:02d}/{p.name}-{c}", str(p.path),
                         functools.partial(face_clip, i, c, frames, seed, kind))
                for i, p in enumerate(FACE_SETS[kind][0]) for c in range(1, clips + 1)]
    if kind == "leaves":
        return [EntryJob(f"Actor_{1 + c // 10:02d}/leaves-{c:03d}", "dead leaves",
                         functools.partial(leaves_clip, c, frames, seed)) for c in range(clips)]
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


# --------------------------------------------------------------------------- CLI

DEFAULT_CLIPS = {"portraits": 2, "photos": 4, "scenes": 4, "faces": 8, "morefaces": 8, "pypifaces": 8, "leaves": 40,
                 "realvideo": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="portraits: real-face validation set (never train on it); "
                                                   "photos, scenes, faces, morefaces, pypifaces, leaves: real-image "
                                                   "content for training (scenes and faces need Debian's "
                                                   "opencv-doc, morefaces and pypifaces package files: see "
                                                   "mmsd.data.stills); realvideo: real talking-head video "
                                                   "(--split train or val; package files: see mmsd.data.realvideo)")
    parser.add_argument("--out", type=Path, required=True, help="cache directory (created; re-runs resume)")
    parser.add_argument("--clips", type=int, default=None,
                        help="camera paths per portrait and framing (default 2), clips per photograph (photos "
                             "and scenes 4, face sets 8), dead-leaves clips (40)")
    parser.add_argument("--frames", type=int, default=60, help="frames per clip (default 60, 2 s)")
    parser.add_argument("--split", choices=("train", "val"), default="train",
                        help="realvideo: the training or the validation sources (default train)")
    parser.add_argument("--stride", type=float, default=4.0,
                        help="realvideo: seconds from one segment's start to the next (default 4)")
    parser.add_argument("--crop", choices=("head", "native"), default="head",
                        help="realvideo: the paper's head crop (shrunk to 480x288 when the head is large), or "
                             "480x288 at the source's own scale, the face as large as in a whole-frame call "
                             "(default head)")
    parser.add_argument("--crf", type=int, nargs="+", default=[15, 32, 40], help="x264 CRFs (default 15 32 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    clips = DEFAULT_CLIPS[args.kind] if args.clips is None else args.clips
    if clips < 1 or args.frames < 5:
        raise MmsdError(f"need --clips >= 1 and --frames >= 5, got {clips} and {args.frames}")
    for photo in {**STILLS, **FACE_SETS}.get(args.kind, ((),))[0]:
        photo.check()
    if args.kind == "realvideo":
        from mmsd.data import realvideo

        realvideo.check(args.split)
        todo = [EntryJob(key, source, make) for key, source, make in
                realvideo.entries(args.split, frames=args.frames, stride_seconds=args.stride, crop=args.crop)]
    else:
        todo = jobs(args.kind, clips=clips, frames=args.frames, seed=args.seed)
    report = build_cache(args.out, todo,
                         PrepareSettings(crfs=tuple(args.crf), crop="whole"), workers=args.workers,
                         progress=not args.no_progress)
    print(report.summary())
    return 0 if not report.failed else 1
