"""``mmsd personalize VIDEO [VIDEO ...] --from NAME|PATH -o OUT.safetensors``: a personal model.

The person-ID prior (Sec. 4.3) for a user's own footage. In a call the receiver knows who is
speaking and often has earlier, better footage of them (a recorded call, a phone clip); a
general model fine-tuned on that footage restores this speaker better. Any size, frame rate
(variable too) and container PyAV reads, with or without sound; no OpenFace CSV, no RAVDESS
names.

1. Each video gets one crop about the Haar face box of its first frames. By default (`--crop
   head`) the paper's head crop, as `mmsd prepare` cuts one without landmarks (2x the box
   high, shrunk to 480x288 when larger), except that it is never magnified: a crop under 288
   rows grows to 480x288 source pixels, so a small face keeps its scale and sharpness
   (`mmsd.data.degrade.unmagnified`), and a video too small to hold 480x288 pixels (CIF, 352x288)
   gets them with reflected sides (`native`) instead of being magnified 1.37x, which cost a
   CIF call of the astronaut 2.65 dB at CRF 32 (`--crop head-zoom` scales the head crop up
   as `prepare` does). `--crop native` (`mmsd.data.degrade.native`) takes 480x288 pixels of the source,
   neither magnified nor shrunk (a video smaller than that has its sides filled by
   reflection): the face is learnt at the exact size at which `mmsd decode` restores a call
   from the same camera, sent as whole frames by `mmsd encode`. On such calls of real faces
   it gained 1.75 and 2.39 dB more than the head crop at CRF 32, but on footage whose scale
   differs from the one it is restored at by 1.2x (synthetic actors scored on head crops)
   it lost 0.4-1.0 dB to the general model: fine-tuning this hard learns one scale (docs/personal.md).
   `--crop whole` takes the largest centred 5:3 part of the frame. The face and mouth boxes
   the metrics use come from the same face box.
2. The last `HELD_OUT` of each video (in time) is held out; the rest is the training
   footage. Both are degraded by `mmsd.data.prepare.build_cache` (4x bicubic down, x264 at every
   CRF) into a temporary cache, in entries of at most `SEGMENT_FRAMES` frames.
3. The model given by `--from` is fine-tuned by the core `mmsd finetune` uses
   (`mmsd.training.finetune.tune`): L1 (+ the AU loss, masked: personal footage has no AU target),
   every CRF mixed, lr `PERSONAL_LR` decaying (cosine) to 1e-6, batch 8 of `--patch`-sized
   LR crops at the face; `--tune-only PART ...` trains only those parts of the network. It
   is validated on the held-out slice at the start and `VALIDATIONS` times during the run,
   and the best-validating weights are kept (the starting ones too: a run that only
   overfits returns the general model).
4. General and tuned models are scored on the held-out slice (face PSNR per CRF, with
   Bicubic) and OUT is written, atomically, with in its metadata what it was tuned from
   and on. Any error before that leaves nothing behind.

The emotion label of every frame is neutral: the footage has no labels, and `mmsd decode`
gives a model neutral when the stream carries no side information.

The held-out gain is measured on the frames that picked the checkpoint, so it is a little
optimistic; it tells the user whether the footage helped at all.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmsd.data.degrade import DegradeConfig, FaceCrop, face_mouth_boxes, native, unmagnified
from mmsd.errors import MmsdError
from mmsd.media.timing import FrameTiming

if TYPE_CHECKING:
    from mmsd.data.prepare import ClipContent

# chosen on a synthetic actor of an unseen seed and real training faces (docs/personal.md): 600 iterations at 1e-4, 6e-4
# and 1e-3 gained 0.89, 0.49 and 0.26 dB less at CRF 32 on the actor than 900 at 2e-3 (600 at 2e-3: 0.18 less)
DEFAULT_ITERATIONS = 900  # ~4-6 min of training on one idle core with bf16 (MMSD small, batch 8)
PERSONAL_LR = 2e-3
PERSONAL_PATCH = 32  # LR crop side, as the general models train
HELD_OUT = 0.2  # share of each video, at its end, held out for validation
MIN_SECONDS = 1.0
MIN_FRAMES = 5  # 2N + 1 on each side of the split
# --crop: the `mmsd.data.prepare.CROPS` box each starts from ('head' is then never magnified)
PREPARE_CROP = {"head": "head", "head-zoom": "head", "native": "head", "whole": "whole"}
SEGMENT_FRAMES = 300  # frames per cache entry (10 s at 30 fps: ~125 MB of HR frames in memory)
VALIDATIONS = 8  # during the run, besides the one of the starting weights
VAL_FRAMES = 16  # held-out frames per CRF (about) in each validation ...
SCORE_FRAMES = 16  # ... and in the final score
ACTOR = 1  # the one speaker of the temporary cache


@dataclass(frozen=True)
class Footage:
    """One input video, read once through: its crop, timing and length."""

    path: Path
    crop: FaceCrop
    timing: FrameTiming
    num_frames: int
    width: int
    height: int
    has_audio: bool

    @property
    def seconds(self) -> float:
        return float(self.timing.seconds(self.num_frames - 1) + self.timing.period)

    def split(self) -> int:
        """Frames [0, split) train, [split, num_frames) are held out."""
        held = max(MIN_FRAMES, round(HELD_OUT * self.num_frames))
        return self.num_frames - held


def read_footage(path: Path, crop: str = "head", cfg: DegradeConfig = DegradeConfig()) -> Footage:
    """Check a video (decodes every frame), find its face and its crop (`CROPS`); MmsdError if unusable."""
    from mmsd.data.prepare import CROPS
    from mmsd.media import codec

    frames = codec.read_frames(path)
    head = list(islice(frames, cfg.haar_frames))
    count = len(head) + sum(1 for _ in frames)  # a damaged file raises here, before any work
    height, width = head[0].shape[:2]
    box = CROPS[PREPARE_CROP[crop]](head, width=width, height=height, cfg=cfg)
    if crop == "head":
        box = unmagnified(box, width=width, height=height, cfg=cfg)
    elif crop == "native":
        box = native(box, width=width, height=height, cfg=cfg)
    if box.face is None:
        raise MmsdError(f"{path}: no face found in the first {len(head)} frames")
    footage = Footage(path=path, crop=box, timing=codec.frame_timing(path), num_frames=count, width=width,
                      height=height, has_audio=codec.probe(path).has_audio)
    if footage.seconds < MIN_SECONDS or count < 2 * MIN_FRAMES:
        raise MmsdError(f"{path}: {footage.seconds:.2f} s, {count} frames of footage; need at least "
                        f"{MIN_SECONDS:g} s and {2 * MIN_FRAMES} frames")
    return footage


def _segment_timing(timing: FrameTiming, start: int, stop: int) -> FrameTiming:
    """The timing of frames start..stop-1 of a video, from 0."""
    if not timing.variable:
        return timing
    ticks = [timing.ticks(t) - timing.ticks(start) for t in range(start, stop)]
    return FrameTiming.from_pts(ticks, timing.time_base, rates=())


def segment_content(footage: Footage, start: int, stop: int, key: str, held_out: bool, part: int) -> ClipContent:
    """The cache entry content of frames start..stop-1 of `footage`, its `part`-th training or held-out
    entry (neutral, no AU target)."""
    from mmsd.data.prepare import NUM_AUS, ClipContent, hr_frames
    from mmsd.media import audio, codec

    cfg = DegradeConfig()
    hr = hr_frames(islice(codec.read_frames(footage.path), start, stop), footage.crop, cfg,
                   (footage.height, footage.width))
    num_frames = len(hr)
    samples = np.zeros(0, np.float32)
    if footage.has_audio:
        rate = audio.MfccConfig().sample_rate
        samples = codec.read_audio(footage.path, sample_rate=rate)[round(footage.timing.seconds(start) * rate):]
    face_box, mouth_box = face_mouth_boxes(footage.crop, num_frames, cfg=cfg)
    name = key.split("/")[1]
    labels = {"key": key, "name": name, "actor": ACTOR, "emotion": 0, "emotion_name": "neutral", "channel": 1,
              "statement": 2 if held_out else 1, "repetition": part,
              "crop_box": list(footage.crop.box), "crop_source": footage.crop.source,
              "source_size": [footage.width, footage.height], "source": str(footage.path),
              "notes": [f"frames {start}-{stop - 1}"]}
    return ClipContent(hr=hr, timing=_segment_timing(footage.timing, start, stop), samples=samples,
                       au=np.zeros((num_frames, NUM_AUS), np.float32), au_mask=np.zeros(num_frames, bool),
                       face_box=face_box, mouth_box=mouth_box, labels=labels)


def _ranges(start: int, stop: int) -> list[tuple[int, int]]:
    """start..stop cut into near-equal parts of at most SEGMENT_FRAMES frames."""
    parts = math.ceil((stop - start) / SEGMENT_FRAMES)
    edges = np.linspace(start, stop, parts + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def entry_jobs(footage: Sequence[Footage]) -> tuple[list, list[str], list[str]]:
    """(cache jobs, training keys, held-out keys) of the footage."""
    from mmsd.data.prepare import EntryJob

    jobs, train, held = [], [], []
    for i, video in enumerate(footage, start=1):
        split = video.split()
        for keys, held_out, span in [(train, False, (0, split)), (held, True, (split, video.num_frames))]:
            for part, (start, stop) in enumerate(_ranges(*span), start=1):
                key = f"Actor_{ACTOR:02d}/video{i:02d}-{'heldout' if held_out else 'train'}-{part:02d}"
                jobs.append(EntryJob(key, str(video.path),
                                     functools.partial(segment_content, video, start, stop, key, held_out, part)))
                keys.append(key)
    return jobs, train, held


@dataclass(frozen=True)
class Personalized:
    """What `personalize` made: the output file and the held-out scores (face PSNR, dB, per CRF)."""

    out: Path
    best_iteration: int
    general: dict[int, float]
    tuned: dict[int, float]
    bicubic: dict[int, float]
    held_out_frames: int

    def summary(self) -> str:
        lines = [f"{self.out}: best on the held-out footage at iteration {self.best_iteration}; face PSNR there "
                 f"({self.held_out_frames} frames per CRF):"]
        for crf in sorted(self.tuned):
            lines.append(f"  CRF {crf}: {self.tuned[crf]:.2f} dB, {self.tuned[crf] - self.general[crf]:+.2f} dB "
                         f"over the starting model ({self.general[crf]:.2f}), "
                         f"{self.tuned[crf] - self.bicubic[crf]:+.2f} dB over Bicubic ({self.bicubic[crf]:.2f})")
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
                crop: str = "head",
                device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
                validations: int = VALIDATIONS, **train_options) -> Personalized:
    """Fine-tune model `base` (a name or a file) on `videos` of one speaker and write the personal model
    to `out`. patch: side of the LR training crops; crop: 'head' (the paper's framing, never
    magnified), 'head-zoom' (magnified up to 480x288 when smaller), 'native' (480x288 source pixels about
    the face, `mmsd.data.degrade.native`) or 'whole' (the largest centred 5:3 part of the frame);
    validations: how often the held-out footage is scored during the run; train_options: further
    `TrainConfig` fields (e.g. batch_size, tune_only, num_workers)."""
    from mmsd.data.prepare import PrepareSettings, build_cache
    from mmsd.evaluation.tables import group_means
    from mmsd.models import weights
    from mmsd.training import finetune
    from mmsd.training.train import check_parts

    if not videos:
        raise MmsdError("no video given")
    if iterations < 1:
        raise MmsdError(f"--iterations must be >= 1, got {iterations}")
    if patch < 8:
        raise MmsdError(f"--patch must be >= 8, got {patch}")
    if crop not in PREPARE_CROP:
        raise MmsdError(f"--crop must be one of {', '.join(sorted(PREPARE_CROP))}, got {crop!r}")
    base_path = finetune.general_model(base)
    out = resolve_output(out, videos)
    name, config, state, _ = weights.read_model(base_path)
    if name == "bicubic":
        raise MmsdError(f"--from {base}: bicubic has nothing to fine-tune")
    check_parts(train_options.get("tune_only", ()), list(dict.fromkeys(key.split(".")[0] for key in state)))
    footage = [read_footage(Path(v), crop) for v in videos]
    jobs, train_keys, held_keys = entry_jobs(footage)
    with tempfile.TemporaryDirectory(prefix="mmsd-personalize-") as work:
        cache, run = Path(work) / "cache", Path(work) / "run"
        report = build_cache(cache, jobs, PrepareSettings(crfs=tuple(crfs), crop=PREPARE_CROP[crop]), progress=progress,
                             log=lambda line: None)
        if report.failed:
            path, reason = report.failed[0]
            raise MmsdError(f"{path}: {reason}")
        held_hr = sum(v.num_frames - v.split() for v in footage) / 2  # HR is stored for every 2nd frame
        tuned_path = finetune.tune(
            weights=base_path, cache=cache, out=run, actors=(ACTOR,), train_keys=train_keys, val_keys=held_keys,
            iterations=iterations, lr=lr, val_every=max(1, iterations // validations), keep_best=True, seed=seed,
            device=device, precision=precision, lr_schedule="cosine", patch=patch,
            val_frame_step=max(1, round(held_hr / VAL_FRAMES)), **train_options)
        rows = finetune.compare(cache, {"general": base_path, "tuned": tuned_path, "bicubic": "bicubic"},
                                actors=(ACTOR,), keys=held_keys, frames_per_clip=max(1, SCORE_FRAMES // len(held_keys)),
                                progress=progress, precision=precision)
        means = group_means(rows, ("model", "crf"))
        psnr = {m: {crf: means[(m, crf)]["face_psnr"] for crf in crfs} for m in ("general", "tuned", "bicubic")}
        _, _, tensors, run_info = weights.read_model(tuned_path)
    result = Personalized(out=out, best_iteration=int(run_info["best_iteration"]), general=psnr["general"],
                          tuned=psnr["tuned"], bicubic=psnr["bicubic"],
                          held_out_frames=int(means[("tuned", crfs[0])]["frames"]))
    info = {"personalized": {
        "from": base, "from_file": str(base_path),
        "videos": [{"file": v.path.name, "frames": v.num_frames, "seconds": round(v.seconds, 3),
                    "held_out_frames": v.num_frames - v.split(), "crop_box": list(v.crop.box)} for v in footage],
        "crop": crop, "iterations": iterations, "best_iteration": result.best_iteration, "lr": lr, "crfs": list(crfs),
        "held_out_face_psnr": {str(crf): {"general": psnr["general"][crf], "tuned": psnr["tuned"][crf],
                                          "bicubic": psnr["bicubic"][crf],
                                          "gain_db": psnr["tuned"][crf] - psnr["general"][crf]} for crf in crfs},
        "train_config": run_info.get("train_config", {}), "wall_seconds": run_info.get("wall_seconds"),
    }}
    weights.save_model(out, name=name, config=config, state=tensors, info=info)
    return result
