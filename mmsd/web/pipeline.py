"""What one upload of the page goes through, as a plain function: `handle_upload`.

1. Check the file: not empty, within the size limit, a video with a video stream.
2. Decide what it is. An ``original`` is sent as `mmsd encode` sends it (4x smaller, x264 at
   the page's CRF, AAC, the emotion chosen or read by the shipped classifier as side
   information); a ``low`` bit-rate one is restored as it is. ``auto`` takes a file that
   carries mmsd side information, or is at most 320x240 pixels, as low bit-rate.
3. Restore the sent file with Bicubic and with the chosen model, as `mmsd decode` does
   (`mmsd.restore.Restorer`); the model's mp4 is the download.
4. With an original: a copy of it that any browser plays (H.264 4:2:0 and AAC) at the restored
   size, and the face PSNR/SSIM of Bicubic and the model against it (`mmsd.metrics`) in the
   Haar face box of its first frames (`mmsd.degrade.detect_face`; the whole frame if none).
5. The middle frame of each video as a PNG, for the page's wipe comparison.

Every file is written into ``out_dir`` under a name made here (`FILES`); the upload's own name
is only ever shown, never used as a path. Bad input raises `UploadError`, one line that names
no server path, and removes ``out_dir`` with everything in it (the upload too, when it lies
there): fed a broken file, `handle_upload` returns a `Result` or raises `UploadError`, and
anything else is a bug. It is what a fuzzer should call.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mmsd import emotions
from mmsd.evaluation import metrics
from mmsd.media import sideinfo
from mmsd.media.codec import (VideoInfo, VideoWriter, frame_timing, probe, read_audio, read_frames,
                        stream_bitrates)
from mmsd.data.degrade import DegradeConfig, detect_face, resize
from mmsd.sender.encode import auto_emotion, encode_file
from mmsd.errors import MmsdError
from mmsd.restore.files import DecodeReport
from mmsd.restore.loading import BUILTIN, DEFAULT_MODEL, shipped_models
from mmsd.restore.restorer import MAX_OUTPUT_PIXELS, Restorer

AUTO = "auto"
KINDS = (AUTO, "original", "low")
SCALE = 4  # what `mmsd encode` sends by default, and what the shipped models restore
LOW_MAX_WIDTH, LOW_MAX_HEIGHT = 320, 240  # auto: at most this (W x H), a file was already sent
MIN_SENT_SIDE = 8  # pixels a side of the sent frames, at the least
DEFAULT_CRF = 40
MEASURED_FRAMES = 300  # at most this many frames are scored; longer videos every k-th frame
ORIGINAL_CRF = 18  # the browser's copy of the original: visually lossless, next to CRF 12 restorations
# Output names, made here: a request can only ever reach these.
FILES = {
    "original": "original.mp4",
    "sent": "sent.mp4",
    "bicubic": "bicubic.mp4",
    "restored": "restored.mp4",
    "frame-original": "frame-original.png",
    "frame-bicubic": "frame-bicubic.png",
    "frame-restored": "frame-restored.png",
}

Progress = Callable[[str, int, "int | None"], None]  # (stage, done, total or None), called from the work's thread


class UploadError(MmsdError):
    """An upload that cannot be restored; one line, for the page."""


@dataclass(frozen=True)
class Options:
    """What the page lets the user choose; checked here, since they come from a request."""

    kind: str = AUTO  # "auto", "original" (send it first) or "low" (restore it as it is)
    crf: float = DEFAULT_CRF  # x264 CRF of the sending, for an original
    emotion: str = AUTO  # a state name, or auto: the classifier (an original), the side information (low)
    model: str = DEFAULT_MODEL  # a name `Restorer` finds (shipped or in $MMSD_MODELS); never a path

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UploadError(f"unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not 0 <= self.crf <= 51:  # also false for NaN
            raise UploadError(f"CRF must be in 0..51, got {self.crf}")
        if self.emotion != AUTO:
            try:
                emotions.parse(self.emotion)
            except ValueError as exc:
                raise UploadError(str(exc)) from None
        names = shipped_models()
        if self.model not in names:
            raise UploadError(f"no model {self.model!r}; available: {', '.join(names)}")


@dataclass(frozen=True)
class Bitrates:
    """Bits per second of the sent file's parts, and of the original's video when there is one."""

    video: float
    audio: float
    side: float
    original_video: float | None = None


@dataclass(frozen=True)
class Score:
    """Mean PSNR (dB; inf when every measured frame is identical) and SSIM over the measured frames."""

    psnr: float
    ssim: float


@dataclass(frozen=True)
class Result:
    """What `handle_upload` made. Sizes are W x H; ``files`` maps a role (`FILES`) to a name in out_dir."""

    kind: str  # "original" or "low": how the upload was taken
    reason: str  # why, in a few words
    model: str
    emotion: str  # what the restoration used, in words
    sent_width: int
    sent_height: int
    width: int  # of the restored video
    height: int
    frames: int
    rate: str  # `FrameTiming.describe`
    bitrates: Bitrates
    files: dict[str, str]
    still: int  # the frame index of the PNGs
    scores: dict[str, Score] = field(default_factory=dict)  # "bicubic" and the model -> against the original
    region: str = ""  # where the scores were taken
    measured: int = 0  # frames scored
    warnings: tuple[str, ...] = ()


def handle_upload(path: str | os.PathLike, out_dir: str | os.PathLike, options: Options = Options(), *,
                  name: str | None = None, max_bytes: int | None = None,
                  progress: Progress | None = None) -> Result:
    """Restore the video at `path` as the page does, writing into `out_dir` (created; removed on failure).

    `name` is the file name to show in messages (default: the path's own name); `max_bytes` the
    size limit; `progress(stage, done, total)` is called as the work goes on, and an exception it
    raises stops the work (the job queue cancels so).
    """
    path, out_dir = Path(path), Path(out_dir)
    shown = name or path.name
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return _handle(path, out_dir, options, shown, max_bytes, progress or _silent)
    except (MmsdError, ValueError, OSError) as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise UploadError(public_message(exc, {path: shown, out_dir: ""})) from None
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


def public_message(exc: BaseException, paths: dict[Path, str]) -> str:
    """The exception's text on one line, each of `paths` (and anything under it) replaced by its public name."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for path, shown in sorted(paths.items(), key=lambda item: -len(str(item[0]))):
        for form in {str(path), str(path.resolve())}:
            text = text.replace(form + os.sep, shown + "/" if shown else "").replace(form, shown or "the folder")
    return text


def _silent(stage: str, done: int, total: int | None) -> None:
    pass


def _handle(path: Path, out_dir: Path, options: Options, shown: str, max_bytes: int | None,
            progress: Progress) -> Result:
    size = path.stat().st_size
    if size == 0:
        raise UploadError(f"{shown}: the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise UploadError(too_large(size, max_bytes))
    progress("checking the file", 0, None)
    info = probe(path)
    kind, reason = _kind(options.kind, info)
    total = info.num_frames or (round(info.duration * info.fps) if info.duration else None)
    sent_w, sent_h = (info.width // SCALE, info.height // SCALE) if kind == "original" else (info.width, info.height)
    if SCALE * sent_w * SCALE * sent_h > MAX_OUTPUT_PIXELS:
        hint = "; if it is an original, send it first" if kind == "low" else ""
        raise UploadError(f"{shown}: {info.width}x{info.height} would be restored to {SCALE * sent_w}x"
                          f"{SCALE * sent_h}, more than 4K (3840x2160){hint}")
    warned: list[str] = []
    if kind == "original":
        if min(sent_w, sent_h) < MIN_SENT_SIDE:
            raise UploadError(f"{shown}: {info.width}x{info.height} is too small to send {SCALE}x smaller; "
                              "if it is already low bit-rate, restore it as it is")
        sent = out_dir / FILES["sent"]
        side, emotion = _side_information(path, sent, options.emotion, progress)
        progress(f"sending: {SCALE}x smaller, x264 at CRF {options.crf:g}", 0, None)
        encoded = encode_file(path, sent, side=side, crf=options.crf, scale=SCALE, progress=False)
        original = stream_bitrates(path)
        bitrates = Bitrates(encoded.video_bps, encoded.audio_bps, encoded.side_bps,
                            original_video=original.video_bits / original.duration)
        decode_emotion = None  # the side information just written
    else:
        sent, bitrates, emotion = path, _sent_bitrates(path, info), ""
        decode_emotion = None if options.emotion == AUTO else options.emotion

    _restore(BUILTIN, sent, out_dir / FILES["bicubic"], total, decode_emotion, progress, warned)
    report = _restore(options.model, sent, out_dir / FILES["restored"], total, decode_emotion, progress, warned)
    emotion = emotion or _decode_emotion(report, options, info)
    files = {role: FILES[role] for role in ("bicubic", "restored")}
    columns = {"bicubic": out_dir / FILES["bicubic"], options.model: out_dir / FILES["restored"]}
    comparison = _Comparison({}, "", 0)
    if kind == "original":
        files["sent"] = FILES["sent"]
        files["original"] = FILES["original"]
        comparison = _compare(path, columns, out_dir / FILES["original"], (report.width, report.height),
                              report.frames, progress)
    still = report.frames // 2
    progress("taking the frame to compare", 0, None)
    for role in ("original", "bicubic", "restored"):
        if role in files:
            files[f"frame-{role}"] = _still(out_dir / files[role], still, out_dir / FILES[f"frame-{role}"])
    sent_info = probe(sent)
    return Result(kind=kind, reason=reason, model=options.model, emotion=emotion, sent_width=sent_info.width,
                  sent_height=sent_info.height, width=report.width, height=report.height, frames=report.frames,
                  rate=report.timing.describe(), bitrates=bitrates, files=files, still=still,
                  scores=comparison.scores, region=comparison.region, measured=comparison.measured,
                  warnings=tuple(public_message(Exception(w), {path: shown, out_dir: ""})
                                 for w in dict.fromkeys(warned)))


def too_large(size: int, max_bytes: int) -> str:
    return f"the file is {size / 1e6:.1f} MB, over this server's limit of {max_bytes / 1e6:g} MB"


def _kind(choice: str, info: VideoInfo) -> tuple[str, str]:
    """("original" or "low", why)."""
    if choice != AUTO:
        return choice, "as chosen"
    try:
        side = sideinfo.from_metadata(info.metadata)
    except sideinfo.SideInfoError:
        side = None
    if side is not None:
        return "low", "it carries mmsd side information"
    if info.width <= LOW_MAX_WIDTH and info.height <= LOW_MAX_HEIGHT:
        return "low", f"it is only {info.width}x{info.height} pixels"
    return "original", f"it is {info.width}x{info.height} pixels"


def _side_information(src: Path, dst: Path, emotion: str, progress: Progress) -> tuple[sideinfo.SideInfo, str]:
    """The side information to send, and the emotion in words."""
    if emotion != AUTO:
        state = emotions.parse(emotion)
        return sideinfo.SideInfo(scale=SCALE, segments=((0, state.id),)), f"{state.name} (chosen)"
    progress("reading the speaker's emotion", 0, None)
    track = auto_emotion(src, dst, progress=False)
    return sideinfo.SideInfo(scale=SCALE, segments=track.segments), f"read from the face: {track.describe()}"


def _sent_bitrates(path: Path, info: VideoInfo) -> Bitrates:
    bits = stream_bitrates(path)
    try:
        side = sideinfo.from_metadata(info.metadata)
    except sideinfo.SideInfoError:
        side = None
    return Bitrates(bits.video_bits / bits.duration, bits.audio_bits / bits.duration,
                    side.bits / bits.duration if side is not None else 0.0)


def _decode_emotion(report: DecodeReport, options: Options, info: VideoInfo) -> str:
    """The emotion the model restored a low bit-rate upload with, in words."""
    if report.emotion_source == "unused":
        return f"not used by {options.model}"
    if report.emotion_source == "argument":
        return f"{emotions.parse(options.emotion).name} (chosen)"
    if report.emotion_source == "side information":
        side = sideinfo.from_metadata(info.metadata)
        return "from its side information: " + ", ".join(emotions.STATES[s].name for _, s in side.segments)
    return "neutral (it carries no emotion side information)"


class _CountingRestorer(Restorer):
    """A `Restorer` that reports each restored frame to `on_frame` (the page's progress, and its cancel point)."""

    def __init__(self, model: str, *, on_frame: Callable[[int], None]) -> None:
        super().__init__(model)
        self._on_frame = on_frame

    def restore_frames(self, frames, **kwargs) -> Iterator[np.ndarray]:
        for done, frame in enumerate(super().restore_frames(frames, **kwargs), 1):
            self._on_frame(done)
            yield frame


def _restore(model: str, src: Path, dst: Path, total: int | None, emotion: str | None, progress: Progress,
             warned: list[str]) -> DecodeReport:
    stage = f"restoring with {'Bicubic' if model == BUILTIN else model}"
    progress(stage, 0, total)
    restorer = _CountingRestorer(model, on_frame=lambda done: progress(stage, done, total))
    return restorer.restore_file(src, dst, emotion=emotion, progress=False, on_warning=warned.append)


@dataclass(frozen=True)
class _Comparison:
    scores: dict[str, Score]
    region: str
    measured: int


def _compare(original: Path, columns: dict[str, Path], copy: Path, size: tuple[int, int], total: int,
             progress: Progress) -> _Comparison:
    """One pass over the original: its browser copy at `size` (W x H) into `copy`, and each column's
    face PSNR/SSIM against it (every k-th frame past `MEASURED_FRAMES`)."""
    width, height = size
    info = probe(original)
    step = max(1, math.ceil(total / MEASURED_FRAMES))
    frames = (_fit(frame, width, height) for frame in read_frames(original))
    first = list(itertools.islice(frames, DegradeConfig().haar_frames))
    face = detect_face(first)
    box = (0, 0, width, height)
    region = f"whole frame, {width}x{height} (no face found)"
    if face is not None:
        x0, y0, x1, y1 = (round(v) for v in face)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if min(x1 - x0, y1 - y0) >= 11:  # SSIM's window
            box, region = (x0, y0, x1, y1), f"face, {x1 - x0}x{y1 - y0} (Haar box of the first frames)"
    readers = {label: read_frames(path) for label, path in columns.items()}
    sums = {label: np.zeros(2) for label in columns}
    measured = 0
    stage = "measuring and preparing the original for the browser"
    try:
        with VideoWriter(copy, width=width, height=height, timing=frame_timing(original), crf=ORIGINAL_CRF,
                         preset="veryfast", audio_rate=info.audio_rate if info.has_audio else None,
                         audio_bitrate=128000) as writer:
            if info.has_audio:
                writer.write_audio(read_audio(original, info.audio_rate))
            for t, frame in enumerate(itertools.chain(first, frames)):
                writer.write(frame)
                decoded = {label: next(reader, None) for label, reader in readers.items()}
                if t % step == 0 and all(image is not None for image in decoded.values()):
                    reference = metrics.region(frame, box)
                    for label, image in decoded.items():
                        image = metrics.region(image, box)
                        sums[label] += (metrics.psnr(image, reference), metrics.ssim(image, reference))
                    measured += 1
                progress(stage, t + 1, total)
    finally:
        for reader in readers.values():
            reader.close()
    scores = {label: Score(float(s[0] / measured), float(s[1] / measured)) for label, s in sums.items()}
    return _Comparison(scores, region, measured)


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frame at width x height (`mmsd encode` floors a size not divisible by the scale)."""
    return frame if frame.shape[:2] == (height, width) else resize(frame, width, height)


def _still(video: Path, index: int, png: Path) -> str:
    """Frame `index` of `video` saved as `png`; returns its name."""
    frames = read_frames(video)
    try:
        frame = next(itertools.islice(frames, index, None))
    finally:
        frames.close()
    Image.fromarray(frame).save(png)
    return png.name
