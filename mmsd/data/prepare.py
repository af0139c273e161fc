"""A RAVDESS-layout corpus -> a training cache (`mmsd prepare SRC --out CACHE`, `mmsd.commands.prepare`).

Per clip (audio+video, modality 01) it reads the frames and audio, cuts one
face-centred 5:3 crop box (`mmsd.data.degrade`), makes the HR frames (480x288) and the LR
frames (4x bicubic antialiased, 120x72), runs the LR frames through x264 at every CRF
and decodes them back (recording the kbps), and stores MFCC features, OpenFace AU
targets, face and mouth boxes and the labels, in the layout of `mmsd.data.cache`.

A clip is written to ``Actor_XX/.NAME.tmp-PID`` and renamed when complete, so a
finished clip directory is always whole; a re-run skips finished clips and deletes
temp directories that an interrupted run left. A lock file keeps two runs from
writing one cache. Each frame's MFCC vectors are cut at its own time, for a
variable-frame-rate source too (`mmsd.media.audio`); ``fps`` in meta.json is then the mean rate.
"""

from __future__ import annotations

import fcntl
import functools
import json
import multiprocessing
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import chain, islice
from pathlib import Path

import numpy as np

from mmsd.data.cache import CACHE_FORMAT, CACHE_VERSION, IMAGE_PARAMS, clip_dir, encode_image, is_done
from mmsd.data.degrade import (
    DegradeConfig,
    crop_resize,
    downsample,
    face_crop_box,
    face_mouth_boxes,
    track_rows,
    whole_frame_crop,
)
from mmsd.data.ravdess import Clip, list_corpus
from mmsd.errors import MmsdError
from mmsd.media.fileio import atomic_path
from mmsd.media.timing import FrameTiming

NUM_AUS = 17
_CHUNK = 16  # source frames resized per call


@dataclass(frozen=True)
class PrepareSettings:
    """Everything that decides a clip's cache entry; a cache holds one setting only."""

    crfs: tuple[int, ...] = (15, 32, 40)
    hr_step: int = 2
    preset: str = "medium"
    min_frames: int = 5  # 2N + 1 with N = 2
    image_format: str = "webp"  # lossless 'webp' or 'png'
    crop: str = "head"  # 'head': the paper's face-centred box; 'whole': the whole frame (other face scales)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)

    def __post_init__(self) -> None:
        crfs = tuple(int(c) for c in self.crfs)
        if not crfs or len(set(crfs)) != len(crfs) or not all(0 <= c <= 51 for c in crfs):
            raise ValueError(f"crfs must be distinct integers in 0..51, got {list(self.crfs)}")
        object.__setattr__(self, "crfs", crfs)
        if self.hr_step < 1:
            raise ValueError(f"hr_step must be >= 1, got {self.hr_step}")
        if self.min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {self.min_frames}")
        if self.image_format not in IMAGE_PARAMS:
            raise ValueError(f"image_format must be one of {sorted(IMAGE_PARAMS)}, got {self.image_format!r}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {sorted(CROPS)}, got {self.crop!r}")


@dataclass
class ClipResult:
    """What one worker did with one clip."""

    key: str
    path: str
    ok: bool
    reason: str = ""
    bytes: int = 0
    num_frames: int = 0
    crop_source: str = ""


@dataclass
class PrepareReport:
    """Summary of one `prepare_corpus` run."""

    out: Path
    listed: int = 0  # usable clips found in the corpus
    prepared: int = 0  # written by this run
    already_done: int = 0  # finished by an earlier run (resume)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    malformed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) from the listing
    seconds: float = 0.0
    bytes_written: int = 0
    frames_written: int = 0

    @property
    def clips_per_second(self) -> float:
        return self.prepared / self.seconds if self.seconds > 0 else 0.0

    @property
    def bytes_per_clip(self) -> float:
        return self.bytes_written / self.prepared if self.prepared else 0.0

    def summary(self) -> str:
        lines = [
            f"{self.out}: {self.prepared} clips prepared, {self.already_done} already done, "
            f"{len(self.failed)} skipped as bad, {len(self.malformed)} malformed names",
        ]
        if self.prepared:
            lines.append(
                f"{self.bytes_per_clip / 2**20:.2f} MiB per clip "
                f"({self.bytes_written / max(self.frames_written, 1) / 1024:.1f} KiB per frame), "
                f"{self.clips_per_second:.2f} clips/s over {self.seconds:.1f} s"
            )
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "listed": self.listed,
            "prepared": self.prepared,
            "already_done": self.already_done,
            "failed": [list(f) for f in self.failed],
            "malformed": [list(m) for m in self.malformed],
            "seconds": round(self.seconds, 3),
            "bytes_written": self.bytes_written,
            "clips_per_second": round(self.clips_per_second, 4),
            "bytes_per_clip": round(self.bytes_per_clip),
        }


# --------------------------------------------------------------------------- cache files


def settings_json(settings: PrepareSettings, mfcc_cfg) -> dict:
    return {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "crfs": list(settings.crfs),
        "hr_step": settings.hr_step,
        "preset": settings.preset,
        "min_frames": settings.min_frames,
        "image_format": settings.image_format,
        "crop": settings.crop,
        "hr_size": [settings.degrade.hr_width, settings.degrade.hr_height],
        "lr_size": [settings.degrade.lr_width, settings.degrade.lr_height],
        "scale": settings.degrade.scale,
        "degrade": _jsonable(asdict(settings.degrade)),
        "mfcc": _jsonable(asdict(mfcc_cfg)),
    }


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# --------------------------------------------------------------------------- one clip


@dataclass
class ClipContent:
    """Everything a cache entry is made from, whatever the source (a corpus video, a
    still photograph set in motion, procedural content): HR frames and what goes with them.

    `labels` fills meta.json: key, name, actor, emotion, emotion_name, channel, statement,
    repetition, crop_box, crop_source, source_size, source, notes.
    """

    hr: np.ndarray  # (T, hr_height, hr_width, 3) uint8
    timing: FrameTiming  # every frame's time (constant or variable rate)
    samples: np.ndarray  # (S,) float32 mono audio at the MFCC rate; empty = no audio (zero MFCC)
    au: np.ndarray  # (T, 17) float32
    au_mask: np.ndarray  # (T,) bool, False where there is no AU target
    face_box: np.ndarray  # (T, 4) int32 HR xyxy, x1/y1 exclusive
    mouth_box: np.ndarray  # (T, 4) int32
    labels: dict


def prepare_clip(clip: Clip, out: Path, settings: PrepareSettings, mfcc_cfg=None) -> ClipResult:
    """Write one corpus clip's cache entry (temp dir, then rename); never raises for a bad clip."""
    return write_entry(functools.partial(_read_clip, clip, settings, mfcc_cfg), clip.key, str(clip.path), out,
                       settings, mfcc_cfg)


def write_entry(make_content, key: str, source: str, out: Path, settings: PrepareSettings,
                mfcc_cfg=None) -> ClipResult:
    """Write the cache entry `out/key` from `make_content()` -> ClipContent, atomically:
    built in a temp dir and renamed when whole; a failure leaves nothing and is reported,
    not raised."""
    result = ClipResult(key=key, path=source, ok=False)
    final = clip_dir(out, key)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        meta = _write_content(make_content(), tmp, settings, mfcc_cfg)
        if final.exists():  # a directory without meta.json is not a finished entry
            shutil.rmtree(final)
        os.rename(tmp, final)
    except Exception as exc:  # noqa: BLE001 - one bad clip must never abort the corpus
        shutil.rmtree(tmp, ignore_errors=True)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        result.reason = reason.removeprefix(f"{source}: ")
        return result
    result.ok = True
    result.bytes = sum(p.stat().st_size for p in final.iterdir())
    result.num_frames = meta["num_frames"]
    result.crop_source = meta["crop_source"]
    return result


CROPS = {"head": face_crop_box, "whole": whole_frame_crop}


def _read_clip(clip: Clip, settings: PrepareSettings, mfcc_cfg) -> ClipContent:
    from mmsd.media import audio, codec

    cfg = settings.degrade
    mfcc_cfg = mfcc_cfg or audio.MfccConfig()
    info = codec.probe(clip.path)
    track, csv_note = None, ""
    if clip.csv is not None:
        from mmsd.data import openface

        try:
            track = openface.read_csv(clip.csv)
        except (MmsdError, ValueError, OSError) as exc:
            csv_note = f"OpenFace CSV ignored: {exc}"

    # 1. crop box, then HR frames, streaming the source
    frames = codec.read_frames(clip.path)
    head = list(islice(frames, cfg.haar_frames))
    if not head:
        raise codec.CodecError(f"{clip.path}: no video frame could be decoded")
    src_h, src_w = head[0].shape[:2]
    crop = CROPS[settings.crop](head, width=src_w, height=src_h, track=track, cfg=cfg)
    hr = hr_frames(chain(head, frames), crop, cfg, (src_h, src_w))
    num_frames = len(hr)

    # 2. audio (a clip without audio keeps zero MFCC)
    samples, audio_note = np.zeros(0, np.float32), ""
    if info.has_audio:
        try:
            samples = codec.read_audio(clip.path, sample_rate=mfcc_cfg.sample_rate)
        except codec.CodecError as exc:
            audio_note = f"audio ignored: {exc}"

    # 3. AU targets and boxes
    au = np.zeros((num_frames, NUM_AUS), np.float32)
    au_mask = np.zeros(num_frames, bool)
    if track is not None:
        rows, valid = track_rows(track, num_frames, cfg.min_confidence)
        au[valid] = np.asarray(track.au_intensity, np.float32)[rows[valid]]
        au_mask = valid
    face_box, mouth_box = face_mouth_boxes(crop, num_frames, track=track, cfg=cfg)
    name = clip.name
    labels = {
        "key": clip.key,
        "name": str(name),
        "actor": name.actor,
        "emotion": name.state.id,
        "emotion_name": name.state.name,
        "channel": name.channel,
        "statement": name.statement,
        "repetition": name.repetition,
        "crop_box": list(crop.box),
        "crop_source": crop.source,
        "source_size": [src_w, src_h],
        "source": str(clip.path),
        "notes": [n for n in (csv_note, audio_note) if n],
    }
    return ClipContent(hr=hr, timing=codec.frame_timing(clip.path), samples=samples, au=au, au_mask=au_mask, face_box=face_box,
                       mouth_box=mouth_box, labels=labels)


def _write_content(content: ClipContent, tmp: Path, settings: PrepareSettings, mfcc_cfg) -> dict:
    """LR frames, their x264 round trips, MFCC, then frames.bin, arrays.npz, meta.json into tmp."""
    from mmsd.media import audio, codec

    cfg = settings.degrade
    mfcc_cfg = mfcc_cfg or audio.MfccConfig()
    hr, fps = content.hr, content.timing.fps
    num_frames = len(hr)
    if hr.shape[1:] != (cfg.hr_height, cfg.hr_width, 3):
        raise MmsdError(f"HR frames must be {cfg.hr_width}x{cfg.hr_height}, got {hr.shape[2]}x{hr.shape[1]}")
    if num_frames < settings.min_frames:
        raise MmsdError(f"only {num_frames} frames, need at least {settings.min_frames} (2N+1)")

    # 1. LR frames and their x264 round trips
    lr = downsample(hr, cfg.scale)  # (T, 72, 120, 3)
    lr_coded, kbps = [], {}
    for crf in settings.crfs:
        decoded, rate = codec.encode_decode(list(lr), fps=fps, crf=crf, preset=settings.preset)
        lr_coded.append(decoded)
        kbps[str(crf)] = round(rate, 3)

    # 2. audio features: each frame's vectors at its own time, at a constant or a variable frame rate
    has_audio = content.samples.size > 0
    mfcc = audio.mfcc_for_frames(content.samples, num_frames, content.timing, mfcc_cfg).astype(np.float32)

    # 3. frames.bin + index, arrays.npz, meta.json (meta last: it marks a whole entry)
    hr_frames = np.arange(0, num_frames, settings.hr_step, dtype=np.int32)
    streams = [*lr_coded, lr, hr[hr_frames]]  # C coded LR streams, clean LR, HR
    spans = [np.zeros((len(frames), 2), np.int64) for frames in streams]
    offset = 0
    with open(tmp / "frames.bin", "wb") as f:
        for frames, span in zip(streams, spans):
            for i, frame in enumerate(frames):
                data = encode_image(frame, settings.image_format)
                f.write(data)
                span[i] = offset, len(data)
                offset += len(data)
    np.savez(
        tmp / "arrays.npz",
        mfcc=mfcc,
        au=content.au,
        au_mask=content.au_mask,
        face_box=content.face_box,
        mouth_box=content.mouth_box,
        hr_frames=hr_frames,
        lr_index=np.stack(spans[: len(lr_coded)]),
        lr_clean_index=spans[-2],
        hr_index=spans[-1],
    )
    labels = content.labels
    meta = {
        **{k: labels[k] for k in ("key", "name", "actor", "emotion", "emotion_name", "channel", "statement",
                                  "repetition")},
        "num_frames": num_frames,
        "fps": f"{fps.numerator}/{fps.denominator}",
        "has_audio": bool(has_audio),
        "has_au": bool(content.au_mask.any()),
        "kbps": kbps,
        "crfs": list(settings.crfs),
        "hr_step": settings.hr_step,
        **{k: labels[k] for k in ("crop_box", "crop_source", "source_size", "source", "notes")},
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def hr_frames(frames: Iterator[np.ndarray], crop, cfg: DegradeConfig, size: tuple[int, int]) -> np.ndarray:
    """Crop + resize the streamed source frames in chunks: (T, hr_height, hr_width, 3) uint8."""
    out = []
    while chunk := list(islice(frames, _CHUNK)):
        for frame in chunk:
            if frame.shape[:2] != size:
                got = f"{frame.shape[1]}x{frame.shape[0]}"
                raise MmsdError(f"frame size changes mid-stream ({size[1]}x{size[0]} -> {got})")
        out.append(crop_resize(np.stack(chunk), crop, cfg))
    return np.concatenate(out) if out else np.zeros((0, cfg.hr_height, cfg.hr_width, 3), np.uint8)


# --------------------------------------------------------------------------- the corpus


def _worker_init() -> None:
    import cv2
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which ends the pool
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


@dataclass(frozen=True)
class EntryJob:
    """One cache entry to write: its key, where it comes from, and a picklable
    `make_content() -> ClipContent` (a module-level function or a functools.partial of one)."""

    key: str
    source: str
    make_content: Callable[[], ClipContent]


def _worker(job: tuple[EntryJob, Path, PrepareSettings]) -> ClipResult:
    entry, out, settings = job
    return write_entry(entry.make_content, entry.key, entry.source, out, settings)


def prepare_corpus(
    src: str | Path,
    out: str | Path,
    *,
    crfs: tuple[int, ...] = (15, 32, 40),
    workers: int = 1,
    hr_step: int = 2,
    min_frames: int = 5,
    preset: str = "medium",
    image_format: str = "webp",
    crop: str = "head",
    limit: int | None = None,
    progress: bool = True,
    log=None,
) -> PrepareReport:
    """Build or resume the cache of corpus `src` in `out`; bad clips are skipped and counted.

    log: called with one line per skipped clip (default: stderr, above the progress bar).
    """
    settings = PrepareSettings(
        crfs=tuple(crfs), hr_step=hr_step, min_frames=min_frames, preset=preset, image_format=image_format,
        crop=crop,
    )
    src = Path(src)
    clips, malformed = list_corpus(src)
    if limit is not None:
        clips = clips[:limit]
    jobs = [EntryJob(c.key, str(c.path), functools.partial(_read_clip, c, settings, None)) for c in clips]
    return build_cache(out, jobs, settings, workers=workers, progress=progress, log=log,
                       malformed=[(str(p), r) for p, r in malformed])


def build_cache(out: str | Path, jobs: Sequence[EntryJob], settings: PrepareSettings, *, workers: int = 1,
                progress: bool = True, log=None, malformed: Sequence[tuple[str, str]] = ()) -> PrepareReport:
    """Write the missing entries of `jobs` into cache `out` (locked, resumable, settings checked);
    bad entries are skipped, logged and counted. Every kind of content goes through here."""
    from tqdm import tqdm

    from mmsd.media.audio import MfccConfig

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    out.mkdir(parents=True, exist_ok=True)
    report = PrepareReport(out=out, listed=len(jobs), malformed=list(malformed))
    for path, reason in malformed:
        log(f"mmsd prepare: skipped {path}: {reason}")
    with _lock(out):
        _check_settings(out, settings_json(settings, MfccConfig()))
        _remove_temp_dirs(out)
        todo = [j for j in jobs if not is_done(out, j.key)]
        report.already_done = len(jobs) - len(todo)
        start = time.perf_counter()
        for result in _run(todo, out, settings, workers, progress):
            if result.ok:
                report.prepared += 1
                report.bytes_written += result.bytes
                report.frames_written += result.num_frames
            else:
                report.failed.append((result.path, result.reason))
                log(f"mmsd prepare: skipped {result.path}: {result.reason}")
        report.seconds = time.perf_counter() - start
        with atomic_path(out / "report.json") as tmp:
            tmp.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    return report


def _run(todo: list[EntryJob], out: Path, settings: PrepareSettings, workers: int, progress: bool
         ) -> Iterator[ClipResult]:
    from tqdm import tqdm

    jobs = [(entry, out, settings) for entry in todo]
    with tqdm(total=len(todo), unit="clip", desc="prepare", disable=not progress or not todo, file=sys.stderr) as bar:
        if workers == 1 or len(todo) <= 1:
            for result in map(_worker, jobs):
                bar.update(1)
                yield result
            return
        # spawn, not fork: torch and OpenCV thread pools do not survive a fork
        with multiprocessing.get_context("spawn").Pool(min(workers, len(todo)), initializer=_worker_init) as pool:
            for result in pool.imap_unordered(_worker, jobs):
                bar.update(1)
                yield result


class _lock:
    """An exclusive lock on CACHE/.lock for the run (released when the process dies)."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".lock"

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise MmsdError(f"another `mmsd prepare` is writing {self.path.parent}") from None

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _check_settings(out: Path, wanted: dict) -> None:
    path = out / "cache.json"
    if path.is_file():
        have = json.loads(path.read_text())
        if have.get("format") != CACHE_FORMAT:
            raise MmsdError(f"{out} is not an mmsd cache (cache.json format {have.get('format')!r})")
        diff = [k for k in wanted if have.get(k) != wanted[k]]
        if diff:
            shown = ", ".join(f"{k} {have.get(k)} (asked {wanted[k]})" for k in diff)
            raise MmsdError(f"{out} was built with other settings: {shown}; use another --out or the same options")
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(wanted, indent=1) + "\n")


def _remove_temp_dirs(out: Path) -> None:
    for actor_dir in out.iterdir():
        if actor_dir.is_dir() and actor_dir.name.startswith("Actor_"):
            for entry in actor_dir.iterdir():
                if entry.name.startswith(".") and ".tmp-" in entry.name:
                    shutil.rmtree(entry, ignore_errors=True)
