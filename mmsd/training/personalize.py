"""``mmsd personalize VIDEO [VIDEO ...] --from NAME|PATH -o OUT.safetensors``: a personal model.

The person-ID prior (Sec. 4.3) for a user's own footage. In a call the receiver knows who is
speaking and often has earlier, better footage of them (a recorded call, a phone clip); a
general model fine-tuned on that footage restores this speaker better. Any size, frame rate
(variable too) and container PyAV reads, with or without sound; no OpenFace CSV, no RAVDESS
names; stretches without a face are skipped.

1. Each video is read once through: its length, timing and a Haar face box every
   `DETECT_SECONDS` (each frame takes the nearest detection within `FILL_SECONDS`, else it
   has no face).
2. Held out: stretches spread over the frames with a face (one per `HELD_EVERY_SECONDS`, up to
   `MAX_HELD_SEGMENTS`; `HELD_OUT` of those frames, at most `MAX_HELD_SECONDS`), with
   `GAP_SECONDS` on each side that nothing trains on (`split_footage`). The rest of the frames
   with a face, cut into entries of at most `SEGMENT_FRAMES` frames, is the training footage.
3. Training entries are degraded as a call is (`mmsd encode`: 4x bicubic down, x264 at every
   CRF), at the source's scale and also shrunk by each of `ZOOMS` (calls from a smaller frame):
   each is one `crop_size` box (the whole frame when it is no larger than 640x360) about the
   entry's median face, its origin on the 4-pixel grid, so its LR pixels are those `mmsd encode`
   makes of the whole frame, and its LR size even, so x264 codes its chroma in 4:2:0 as it codes
   the call's (`mmsd encode` pads an odd size to even). They go into a temporary cache
   (`mmsd.data.prepare.build_cache`).
4. The model given by `--from` is fine-tuned by the core `mmsd finetune` uses
   (`mmsd.training.finetune.tune`): L1 (+ the AU loss, masked: personal footage has no AU target),
   every CRF mixed, lr `PERSONAL_LR` decaying (cosine) to 1e-6, batch 8 of `--patch`-sized LR
   crops at the face, `DEFAULT_ITERATIONS`, held near the starting weights by L2-SP
   (`PERSONAL_L2SP`, `--l2sp`); `--tune-only PART ...` trains only those parts.
5. The held-out stretches are sent as a call is (whole frames, `mmsd.personal_score`) and
   restored by the starting model, the tuned one and Bicubic (face PSNR per CRF on per-frame face
   boxes). If the tuned model gains less than `MIN_GAIN` dB over the starting one (mean over the
   CRFs), OUT gets the starting weights and the summary says the footage did not help. OUT is
   written atomically, with in its metadata what it was tuned from and on and the held-out
   scores. Any error before that leaves nothing behind.

The emotion label of every frame is neutral: the footage has no labels, and `mmsd decode`
gives a model neutral when the stream carries no side information.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmsd.data.degrade import DegradeConfig, FaceCrop, boxes_from_face
from mmsd.errors import MmsdError
from mmsd.media.timing import FrameTiming

if TYPE_CHECKING:
    from mmsd.training.personal_score import HeldOut
    from mmsd.data.prepare import ClipContent

# chosen on the real-video protocol of scripts/personal_check.py (`real`; README, "A personal model")
DEFAULT_ITERATIONS = 400
PERSONAL_LR = 1e-3  # with L2-SP; 2e-4 without it until 2026-12-07 (docs/personal.md, "L2-SP")
PERSONAL_L2SP = 1e-3  # + this x the squared distance of the weights from the starting model's
PERSONAL_PATCH = 32  # LR crop side, as the general models train
MIN_GAIN = 0.1  # dB over the starting model on the held-out calls (mean over CRFs) for OUT to be the tuned model
DETECT_SECONDS = 0.2  # Haar face detection on one frame in this many seconds while reading
FILL_SECONDS = 0.6  # a frame takes the nearest detection up to this far away, else it has no face
HELD_OUT = 0.2  # share of the frames with a face that is held out ...
MAX_HELD_SECONDS = 6.0  # ... up to this much
HELD_EVERY_SECONDS = 10.0  # one held-out stretch per this much footage with a face (1 to MAX_HELD_SEGMENTS)
MAX_HELD_SEGMENTS = 4
GAP_SECONDS = 1.0  # on each side of a held-out stretch nothing trains (at most the stretch's length)
MIN_SECONDS = 1.0
MIN_FRAMES = 5  # 2N + 1: the shortest held-out stretch and training entry
SEGMENT_FRAMES = 100  # frames per training entry (4 s at 25 fps), one crop box each
CROP = (640, 360)  # W x H: the largest training crop of source pixels, grown to hold 1.5x the face
ZOOMS = (1.0, 0.7)  # each training entry is made of its frames at these scales (calls from a smaller frame)
ACTOR = 1  # the one speaker of the temporary cache


@dataclass(frozen=True, eq=False)
class Footage:
    """One input video, read once through: timing, length, size and a face box per frame."""

    path: Path
    timing: FrameTiming
    num_frames: int
    width: int
    height: int
    has_audio: bool
    faces: np.ndarray = field(repr=False)  # (T, 4) float x0 y0 x1 y1 in source pixels; NaN: no face near

    @property
    def seconds(self) -> float:
        return float(self.timing.seconds(self.num_frames - 1) + self.timing.period)

    @property
    def fps(self) -> float:
        return float(self.timing.fps)

    @property
    def found(self) -> np.ndarray:
        """(T,) bool: frames with a face."""
        return ~np.isnan(self.faces[:, 0])


@dataclass(frozen=True)
class Span:
    """Frames [start, stop) of video `video` (0-based index into the footage)."""

    video: int
    start: int
    stop: int


def read_footage(path: Path, cfg: DegradeConfig = DegradeConfig()) -> Footage:
    """Check a video (decodes every frame) and find its face through time; MmsdError if unusable."""
    from mmsd.media import codec
    from mmsd.data.degrade import detect_faces

    timing = codec.frame_timing(path)
    step = max(1, round(DETECT_SECONDS * float(timing.fps)))
    detected: dict[int, tuple[float, ...]] = {}
    count, size = 0, None
    for t, frame in enumerate(codec.read_frames(path)):  # a damaged file raises here, before any work
        if size is None:
            size = frame.shape[:2]
        elif frame.shape[:2] != size:
            raise MmsdError(f"{path}: frame size changes mid-stream ({size[1]}x{size[0]} -> "
                            f"{frame.shape[1]}x{frame.shape[0]})")
        if t % step == 0 and (faces := detect_faces(frame, cfg)):
            detected[t] = max(faces, key=lambda f: (f[2] - f[0]) * (f[3] - f[1]))
        count += 1
    if not detected:
        raise MmsdError(f"{path}: no face found")
    found = np.array(sorted(detected))
    nearest = found[np.abs(np.arange(count)[:, None] - found[None, :]).argmin(axis=1)]  # (T,)
    faces = np.array([detected[t] for t in nearest], dtype=np.float64)  # (T, 4)
    faces[np.abs(nearest - np.arange(count)) > max(step, FILL_SECONDS * float(timing.fps))] = np.nan
    footage = Footage(path=path, timing=timing, num_frames=count, width=size[1], height=size[0],
                      has_audio=codec.probe(path).has_audio, faces=faces)
    if footage.seconds < MIN_SECONDS or count < 2 * MIN_FRAMES:
        raise MmsdError(f"{path}: {footage.seconds:.2f} s, {count} frames of footage; need at least "
                        f"{MIN_SECONDS:g} s and {2 * MIN_FRAMES} frames")
    return footage


def split_footage(footage: Sequence[Footage]) -> tuple[list[Span], list[Span]]:
    """(training entries, held-out stretches). The stretches sit at even quantiles of the frames whose
    whole stretch has a face (else of all the frames with a face); `GAP_SECONDS` about each is used by
    neither; MmsdError when either side would be empty."""
    faced = sum(int(video.found.sum()) for video in footage)
    seconds = sum(video.found.sum() / video.fps for video in footage)
    count = int(np.clip(round(seconds / HELD_EVERY_SECONDS), 1, MAX_HELD_SEGMENTS))
    lengths = [max(MIN_FRAMES, round(min(HELD_OUT * faced, MAX_HELD_SECONDS * video.fps) / count)) for video in footage]
    centres = [(i, t) for i, video in enumerate(footage) for t in np.flatnonzero(_all_found(video.found, lengths[i]))]
    centres = centres or [(i, t) for i, video in enumerate(footage) for t in np.flatnonzero(video.found)]
    held = []
    for k in range(count):
        i, centre = centres[int((k + 0.5) / count * len(centres))]
        start = int(np.clip(centre - lengths[i] // 2, 0, max(0, footage[i].num_frames - lengths[i])))
        held.append(Span(i, start, min(footage[i].num_frames, start + lengths[i])))
    train = []
    for i, video in enumerate(footage):
        usable = video.found.copy()
        for span in held:
            if span.video == i:
                gap = min(round(GAP_SECONDS * video.fps), span.stop - span.start)
                usable[max(0, span.start - gap): span.stop + gap] = False
        for start, stop in _runs(usable):
            for a, b in _ranges(start, stop):
                if b - a >= MIN_FRAMES:
                    train.append(Span(i, a, b))
    if not train:
        raise MmsdError(f"too little footage with a face ({seconds:.1f} s): nothing left to train on besides the "
                        f"held-out {sum(s.stop - s.start for s in held)} frames")
    return train, held


def _all_found(found: np.ndarray, length: int) -> np.ndarray:
    """(T,) bool: frames t whose stretch of `length` frames centred on t has a face throughout."""
    if length > len(found):
        return np.zeros(len(found), bool)
    window = np.convolve(found.astype(int), np.ones(length, int), mode="valid") == length  # (T - length + 1,)
    centred = np.zeros(len(found), bool)
    centred[length // 2: length // 2 + len(window)] = window
    return centred


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a (T,) bool mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _ranges(start: int, stop: int) -> list[tuple[int, int]]:
    """start..stop cut into near-equal parts of at most SEGMENT_FRAMES frames."""
    parts = math.ceil((stop - start) / SEGMENT_FRAMES)
    edges = np.linspace(start, stop, parts + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def zoomed_size(video: Footage, zoom: float, scale: int = 4) -> tuple[int, int]:
    """(W, H) of the video's frames shrunk by `zoom`, on the `scale` grid."""
    return int(video.width * zoom) // scale * scale, int(video.height * zoom) // scale * scale


def crop_size(footage: Sequence[Footage], zooms: Sequence[float] = ZOOMS, scale: int = 4) -> tuple[int, int]:
    """(W, H) of the training crops: `CROP` grown to 1.5x the largest median face high (and 5:3 wide), cut
    to the smallest video at the smallest zoom, on the `scale` grid, W / scale and H / scale even (4:2:0, as
    `mmsd encode` sends every call): every entry of the cache has one size."""
    face = max(float(np.nanmedian(v.faces[:, 3] - v.faces[:, 1])) for v in footage)
    height = max(CROP[1], 1.5 * face)
    width = max(CROP[0], height * 5 / 3)
    sizes = [zoomed_size(v, zoom, scale) for v in footage for zoom in zooms]
    width, height = min(width, *(w for w, _ in sizes)), min(height, *(h for _, h in sizes))
    # x264 would code an LR frame of odd size as 4:4:4 (`mmsd.media.codec`)
    return tuple(int(side) // (2 * scale) * (2 * scale) for side in (width, height))


def grid_box(faces: np.ndarray, size: tuple[int, int], frame: tuple[int, int], scale: int = 4) -> FaceCrop:
    """A size = (W, H) box about the median of `faces` (N, 4), inside a frame = (W, H), its origin a
    multiple of `scale`: cut from it, the LR pixels are those of the whole frame 4x down."""
    face = np.nanmedian(faces, axis=0)
    origin = []
    for centre, side, whole in (((face[0] + face[2]) / 2, size[0], frame[0]), ((face[1] + face[3]) / 2, size[1], frame[1])):
        origin.append(int(np.clip(centre - side / 2, 0, whole - side)) // scale * scale)
    x0, y0 = origin
    return FaceCrop(box=(x0, y0, x0 + size[0], y0 + size[1]), source="haar", face=tuple(float(v) for v in face))


class FrameCursor:
    """The frames of one video read forward across consecutive entries (re-opened to go back)."""

    def __init__(self, path: Path) -> None:
        self.path, self._frames, self._next = path, None, 0
        self._last: tuple[int, int, list[np.ndarray]] = (0, 0, [])

    def take(self, start: int, stop: int) -> list[np.ndarray]:
        """Frames [start, stop) (the last range again without reading)."""
        from mmsd.media import codec

        if self._last[:2] == (start, stop):
            return self._last[2]
        if self._frames is None or start < self._next:
            self._frames, self._next = codec.read_frames(self.path), 0
        frames = list(islice(self._frames, start - self._next, stop - self._next))
        self._next, self._last = stop, (start, stop, frames)
        return frames


def segment_timing(timing: FrameTiming, start: int, stop: int) -> FrameTiming:
    """The timing of frames start..stop-1 of a video, from 0."""
    if not timing.variable:
        return timing
    ticks = [timing.ticks(t) - timing.ticks(start) for t in range(start, stop)]
    return FrameTiming.from_pts(ticks, timing.time_base, rates=())


def segment_samples(footage: Footage, start: int, stop: int, rate: int) -> np.ndarray:
    """The sound of frames start..stop-1 at `rate` Hz, float32 mono; empty without sound."""
    if not footage.has_audio:
        return np.zeros(0, np.float32)
    first = round(footage.timing.seconds(start) * rate)
    last = round((footage.timing.seconds(stop - 1) + footage.timing.period) * rate)
    return _sound(footage.path, rate)[first:last]


@functools.lru_cache(maxsize=1)
def _sound(path: Path, rate: int) -> np.ndarray:
    """A file's whole sound, read once for all its entries."""
    from mmsd.media import codec

    return codec.read_audio(path, sample_rate=rate)


def segment_content(footage: Footage, cursor: FrameCursor, span: Span, key: str, part: int, cfg: DegradeConfig,
                    zoom: float = 1.0) -> ClipContent:
    """The cache entry of a training span: HR frames of one `grid_box` at the source's scale shrunk by `zoom`
    (the box's size is cfg's HR size), its face boxes per frame, its sound (neutral, no AU target)."""
    from mmsd.media import audio
    from mmsd.data.degrade import resize
    from mmsd.data.prepare import NUM_AUS, ClipContent

    frames = np.stack(cursor.take(span.start, span.stop))  # (T, H, W, 3)
    width, height = zoomed_size(footage, zoom, cfg.scale)
    faces = footage.faces[span.start: span.stop] * np.tile((width / footage.width, height / footage.height), 2)  # (T, 4)
    if (width, height) != (footage.width, footage.height):
        frames = resize(frames, width, height)
    crop = grid_box(faces, (cfg.hr_width, cfg.hr_height), (width, height), cfg.scale)
    x0, y0, x1, y1 = crop.box
    hr = frames[:, y0:y1, x0:x1]  # (T, H, W, 3)
    faces = np.where(np.isnan(faces), np.asarray(crop.face), faces) - (x0, y0, x0, y0)
    face_box, mouth_box = boxes_from_face(faces, cfg)
    num_frames = len(hr)
    labels = {"key": key, "name": key.split("/")[1], "actor": ACTOR, "emotion": 0, "emotion_name": "neutral",
              "channel": 1, "statement": 1, "repetition": part, "crop_box": list(crop.box), "crop_source": "haar",
              "source_size": [footage.width, footage.height], "source": str(footage.path),
              "notes": [f"frames {span.start}-{span.stop - 1}"]}
    return ClipContent(hr=hr, timing=segment_timing(footage.timing, span.start, span.stop),
                       samples=segment_samples(footage, span.start, span.stop, audio.MfccConfig().sample_rate),
                       au=np.zeros((num_frames, NUM_AUS), np.float32), au_mask=np.zeros(num_frames, bool),
                       face_box=face_box, mouth_box=mouth_box, labels=labels)


def entry_jobs(footage: Sequence[Footage], train: Sequence[Span], cfg: DegradeConfig) -> tuple[list, list[str]]:
    """(cache jobs, their keys) of the training spans, in reading order."""
    from mmsd.data.prepare import EntryJob

    cursors = [FrameCursor(video.path) for video in footage]
    jobs, keys = [], []
    for part, span in enumerate(sorted(train, key=lambda s: (s.video, s.start)), start=1):
        for zoom in ZOOMS:
            key = f"Actor_{ACTOR:02d}/video{span.video + 1:02d}-train-{part:03d}-zoom{zoom:g}"
            video = footage[span.video]
            jobs.append(EntryJob(key, str(video.path), functools.partial(
                segment_content, video, cursors[span.video], span, key, part, cfg, zoom)))
            keys.append(key)
    return jobs, keys


def held_out(footage: Sequence[Footage], held: Sequence[Span]) -> Iterator[HeldOut]:
    """The held-out stretches as `mmsd.personal_score` scores them (each video read once)."""
    from mmsd.media.audio import MfccConfig
    from mmsd.training.personal_score import held_out_call

    for i, video in enumerate(footage):
        cursor = FrameCursor(video.path)
        for span in sorted((s for s in held if s.video == i), key=lambda s: s.start):
            rate = MfccConfig().sample_rate
            yield held_out_call(np.stack(cursor.take(span.start, span.stop)),
                                segment_timing(video.timing, span.start, span.stop),
                                segment_samples(video, span.start, span.stop, rate), rate)


@dataclass(frozen=True)
class Personalized:
    """What `personalize` made: the output file and the held-out scores (face PSNR, dB, per CRF)."""

    out: Path
    general: dict[int, float]
    tuned: dict[int, float]
    bicubic: dict[int, float]
    held_out_frames: int
    held_out_stretches: int

    @property
    def gain(self) -> float:
        """Mean gain of the tuned model over the starting one on the held-out calls (dB)."""
        return float(np.mean([self.tuned[crf] - self.general[crf] for crf in self.tuned]))

    @property
    def helped(self) -> bool:
        return self.gain >= MIN_GAIN

    def summary(self) -> str:
        lines = [f"held-out footage ({self.held_out_frames} frames with a face in {self.held_out_stretches} "
                 f"stretches), sent as `mmsd encode` sends a call: face PSNR of the tuned model"]
        for crf in sorted(self.tuned):
            lines.append(f"  CRF {crf}: {self.tuned[crf]:.2f} dB, {self.tuned[crf] - self.general[crf]:+.2f} dB "
                         f"over the starting model ({self.general[crf]:.2f}), "
                         f"{self.tuned[crf] - self.bicubic[crf]:+.2f} dB over Bicubic ({self.bicubic[crf]:.2f})")
        if self.helped:
            lines.append(f"{self.out}: the tuned model ({self.gain:+.2f} dB on average)")
        else:
            lines.append(f"{self.out}: the footage did not help ({self.gain:+.2f} dB on average, under "
                         f"+{MIN_GAIN:g}): it holds the starting model's weights")
        return "\n".join(lines)


def resolve_output(out: Path, videos: Sequence[Path]) -> Path:
    """`out` if a model file can be written there, else MmsdError (before any work is done)."""
    out = Path(out)
    if any(out.resolve() == Path(v).resolve() for v in videos):
        raise MmsdError(f"-o {out} is one of the input videos")
    if not out.parent.is_dir():
        raise MmsdError(f"-o {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise MmsdError(f"-o {out} is a folder; give a file name (e.g. me.safetensors)")
    return out


def personalize(videos: Sequence[Path], *, base: str, out: Path, iterations: int = DEFAULT_ITERATIONS,
                lr: float = PERSONAL_LR, patch: int = PERSONAL_PATCH, crfs: Sequence[int] = (15, 32, 40),
                device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
                l2sp: float = PERSONAL_L2SP, **train_options) -> Personalized:
    """Fine-tune model `base` (a name or a file) on `videos` of one speaker and write the personal model
    to `out` (the starting weights when the held-out calls gain under MIN_GAIN). patch: side of the LR
    training crops; train_options: further `TrainConfig` fields (e.g. batch_size, tune_only, num_workers)."""
    from mmsd.training import finetune
    from mmsd.models import weights
    from mmsd.training.personal_score import score_calls
    from mmsd.data.prepare import PrepareSettings, build_cache
    from mmsd.training.train import check_parts

    if not videos:
        raise MmsdError("no video given")
    if iterations < 1:
        raise MmsdError(f"--iterations must be >= 1, got {iterations}")
    if patch < 8:
        raise MmsdError(f"--patch must be >= 8, got {patch}")
    base_path = finetune.general_model(base)
    out = resolve_output(out, videos)
    name, config, state, _ = weights.read_model(base_path)
    if name == "bicubic":
        raise MmsdError(f"--from {base}: bicubic has nothing to fine-tune")
    check_parts(train_options.get("tune_only", ()), list(dict.fromkeys(key.split(".")[0] for key in state)))
    footage = [read_footage(Path(v)) for v in videos]
    train, held = split_footage(footage)
    width, height = crop_size(footage)
    if min(width, height) < 4 * patch:
        raise MmsdError(f"--patch {patch}: the footage's {width}x{height} crops hold no {4 * patch}-pixel patch")
    cfg = DegradeConfig(hr_width=width, hr_height=height)
    jobs, train_keys = entry_jobs(footage, train, cfg)
    with tempfile.TemporaryDirectory(prefix="mmsd-personalize-") as work:
        cache, run = Path(work) / "cache", Path(work) / "run"
        report = build_cache(cache, jobs, PrepareSettings(crfs=tuple(crfs), degrade=cfg), progress=progress,
                             log=lambda line: None)
        if report.failed:
            path, reason = report.failed[0]
            raise MmsdError(f"{path}: {reason}")
        tuned_path = finetune.tune(
            weights=base_path, cache=cache, out=run, actors=(ACTOR,), train_keys=train_keys,
            val_keys=train_keys[:1], iterations=iterations, lr=lr, seed=seed, device=device, precision=precision,
            lr_schedule="cosine", patch=patch, val_frame_step=1_000_000, progress=progress, l2sp=l2sp,
            **train_options)
        calls = list(held_out(footage, held))
        psnr = score_calls({"general": str(base_path), "tuned": str(tuned_path), "bicubic": "bicubic"}, calls,
                           crfs=crfs, work=Path(work), precision=precision)
        _, _, tensors, run_info = weights.read_model(tuned_path)
    result = Personalized(out=out, general=psnr["general"], tuned=psnr["tuned"], bicubic=psnr["bicubic"],
                          held_out_frames=sum(int(c.scored.sum()) for c in calls), held_out_stretches=len(calls))
    info = {"personalized": {
        "from": base, "from_file": str(base_path), "helped": result.helped,
        "weights": "tuned" if result.helped else f"starting ({base}): the footage did not help",
        "videos": [{"file": v.path.name, "frames": v.num_frames, "seconds": round(v.seconds, 3),
                    "frames_with_face": int(v.found.sum())} for v in footage],
        "held_out": [{"video": s.video, "frames": [s.start, s.stop]} for s in held],
        "gap_seconds": GAP_SECONDS, "crop_size": [width, height], "iterations": iterations, "lr": lr, "l2sp": l2sp,
        "crfs": list(crfs), "min_gain_db": MIN_GAIN, "gain_db": result.gain,
        "held_out_face_psnr": {str(crf): {"general": psnr["general"][crf], "tuned": psnr["tuned"][crf],
                                          "bicubic": psnr["bicubic"][crf],
                                          "gain_db": psnr["tuned"][crf] - psnr["general"][crf]} for crf in crfs},
        "train_config": run_info.get("train_config", {}), "wall_seconds": run_info.get("wall_seconds"),
    }}
    weights.save_model(out, name=name, config=config, state=tensors if result.helped else state, info=info)
    return result


# --------------------------------------------------------------------------- CLI
