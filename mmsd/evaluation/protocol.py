"""The paper's evaluation protocol (Sec. 4.2): which frames, which models, what score, on the test actors
of a prepared cache.

Every model restores the same frames: for each test clip, CRF and evaluated centre
frame t, the 2N+1 decoded LR frames around t (plus that window's MFCC and the clip's
emotion state; networks ignore what they do not use) give a restored HR frame, scored
against the cache's HR frame t. Per frame we keep (RGB, [0, 255], on the cache's
per-frame boxes):

* face_psnr, face_ssim -- the paper's protocol: the face box only (Table 1);
* face_psnr_y -- PSNR of the BT.601 luma on the face box (as BasicSR reports it);
* frame_psnr -- the whole 480x288 frame, background included;
* mouth_psnr -- the mouth box, where the audio branch must show its worth.

PSNR of an exact match would be infinite; it is capped at 100 dB so means stay finite.
Table means are over all evaluated frames of all test clips, each frame weighing the
same (not per clip first), per CRF; PSNR is averaged in dB.

The evaluated frames are a fixed subset, the same for every method (`FrameSubset`):
by default the middle frame of every clip (of the frames with a stored HR frame), or
n frames spread evenly over it (``--frames-per-clip n``), or every k-th frame with HR
(``--frame-step k``: t = 0, s, 2s, ... with s = hr_step * k). One frame per clip is
what fits the 30-minute budget, and every clip at every CRF must be seen, so it is
the floor: 180 test clips x 3 CRFs = 540 restorations per model. Measured on the
2-core box (whole 120x72 frames, batch 8, shared machine, so one core's worth):
MMSD-small 0.77 s/frame, its image-only ablation 0.46 s, EDVR at 32 channels 1.6 s,
DBPN at 64/32 x 4 stages 0.95 s (deformable alignment dominates); data and metrics
add ~0.1 s per frame. Six networks cost ~5.3 s per frame on one core: 540 frames take
~48 minutes on one core and ~25-30 with both. With one frame per clip the frame mean
is also the clip mean, as the paper averages over videos. `eval.json` records the
restore time of every model, so the budget can be re-checked with the shipped weights.

The tables over these scores are `mmsd.evaluation.tables`, the CRF sweep and the comparison grids
`mmsd.evaluation.sweeps`, the command `mmsd.commands.eval`.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mmsd.errors import MmsdError
from mmsd.evaluation import metrics
from mmsd.media.audio import model_norm
from mmsd.models.precision import autocast, resolve as resolve_precision
from mmsd.models.weights import find_model

BICUBIC = "bicubic"
PSNR_CAP = 100.0
DEFAULT_FRAMES_PER_CLIP = 1  # measured: see the module docstring
METRICS = ("face_psnr", "face_ssim", "face_psnr_y", "frame_psnr", "mouth_psnr")


@dataclass(frozen=True)
class FrameSubset:
    """Which centre frames of each clip are evaluated (the same for every method): `per_clip`
    frames spread evenly over the clip's HR frames, or, when per_clip is None, every
    `step`-th HR frame from the first."""

    per_clip: int | None = DEFAULT_FRAMES_PER_CLIP
    step: int = 1

    def __post_init__(self) -> None:
        if (self.per_clip is not None and self.per_clip < 1) or self.step < 1:
            raise ValueError(f"frames per clip and frame step must be >= 1, got {self.per_clip} and {self.step}")

    def frames(self, hr_frames: Sequence[int]) -> list[int]:
        """The evaluated frames among a clip's HR frames: the centres of per_clip equal parts."""
        if self.per_clip is None:
            return list(hr_frames[::self.step])
        n = len(hr_frames)
        k = min(self.per_clip, n)
        return [hr_frames[int((i + 0.5) * n / k)] for i in range(k)]

    def describe(self, hr_step: int) -> str:
        if self.per_clip is None:
            s = self.step * hr_step
            return f"{_every(s)} of each clip (t = 0, {s}, {2 * s}, ...)"
        stored = f"HR is stored for {_every(hr_step)}"
        if self.per_clip == 1:
            return f"the middle one of each clip's frames that have a stored HR frame ({stored})"
        return (f"{self.per_clip} frames per clip, the centres of {self.per_clip} equal parts of its frames "
                f"that have a stored HR frame ({stored})")


def _every(k: int) -> str:
    """'every frame', 'every 2nd frame', 'every 4th frame'."""
    if k == 1:
        return "every frame"
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"every {k}{suffix} frame"


def test_actors() -> tuple[int, ...]:
    """The speaker split's test actors (19-24)."""
    from mmsd.data.ravdess import Split

    return tuple(Split().test)


# --------------------------------------------------------------------------- models


@dataclass
class EvalModel:
    """A network ready to restore, with the name it is reported under."""

    label: str  # the weight file's name (or LABEL= given), e.g. 'mmsd-cgan'
    arch: str  # 'mmsd', 'edvr', 'dbpn', 'bicubic'
    source: str  # weights path, or 'built-in'
    config: dict
    module: nn.Module
    info: dict = field(default_factory=dict)
    seconds: float = 0.0  # wall time spent restoring so far
    precision: str = "fp32"  # of the forward, resolved (mmsd.models.precision)

    @property
    def window(self) -> tuple[int, bool]:
        """(radius N, causal) of the frame window the network takes."""
        return int(self.config.get("radius", 2)), bool(self.config.get("causal", False))

    @property
    def mfcc_norm(self) -> str:
        """The MFCC normalisation the network reads (`mmsd.media.audio.MFCC_NORMS`)."""
        return model_norm(self.config)

    @property
    def inputs(self) -> tuple[int, bool, str]:
        """What a batch for this network depends on: (radius N, causal, MFCC normalisation)."""
        return (*self.window, self.mfcc_norm)

    @property
    def uses_emotion(self) -> bool:
        """True when the network reads the emotion state, i.e. the sender must transmit it."""
        return bool(self.config.get("emotion", False))

    def restore(self, batch) -> torch.Tensor:
        """Batch (or Frames) -> restored images (Tensor[B, 3, 4H, 4W]) clamped to [0, 1]."""
        started = time.perf_counter()
        with autocast(self.precision):
            image = self.module(batch.lr, mfcc=batch.mfcc, emotion=batch.emotion).image
        image = image.float().clamp(0.0, 1.0)
        self.seconds += time.perf_counter() - started
        return image


def _bicubic(label: str, radius: int = 2, causal: bool = False, mfcc_norm: str = "none") -> EvalModel:
    """Bicubic; mfcc_norm (which it ignores) only lets it share a network's batches."""
    from mmsd.models.bicubic import Bicubic, BicubicConfig

    cfg = BicubicConfig(radius=radius, causal=causal)
    return EvalModel(label, BICUBIC, "built-in", {**dataclasses.asdict(cfg), "mfcc_norm": mfcc_norm},
                     Bicubic(cfg).eval())


def load_model(spec: str, *, precision: str = "auto") -> EvalModel:
    """A model from 'bicubic', a name ('mmsd': shipped, or in $MMSD_MODELS) or a weights
    path; 'LABEL=SPEC' reports it under LABEL. A path's label is its file stem, or the run
    folder's name for a trainer's 'model.safetensors'. precision: of its forward on the CPU
    (`mmsd.models.precision`; Bicubic is fp32 whatever it is; int8 with the calibration kept beside the
    weights, `mmsd.models.quantize`)."""
    label, sep, target = spec.partition("=")
    if not sep or not label or "/" in label:
        label, target = "", spec
    if target == BICUBIC:
        resolve_precision(precision)  # an unknown name is an error for Bicubic too
        return _bicubic(label or BICUBIC)
    path = find_model(target) or Path(target)
    if not path.is_file():
        from mmsd.models import MODELS
        from mmsd.models.weights import named_models

        shipped = ", ".join(named_models(MODELS)) or "none shipped yet"
        raise MmsdError(f"model {target!r} is neither 'bicubic', a shipped model ({shipped}) nor a weights file")
    from mmsd.models import build_model
    from mmsd.models.weights import read_model

    name, config, tensors, info = read_model(path)
    if name == BICUBIC:
        return _bicubic(label or path.stem, int(config.get("radius", 2)), bool(config.get("causal", False)))
    try:
        module = build_model(name, config)
        module.load_state_dict(tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MmsdError(f"{path}: cannot build model {name!r} from its file ({first})") from None
    if not label:
        label = path.parent.name if path.stem == "model" else path.stem
    from mmsd.models import quantize

    calibration = quantize.calibration_beside(path)
    precision = resolve_precision(precision, int8_ready=calibration is not None)
    if precision == "int8":
        module = quantize.quantize_with(module, calibration, target)
    return EvalModel(label, name, str(path), config, module.eval(), info, precision=precision)


def load_models(specs: Sequence[str], *, precision: str = "auto") -> list[EvalModel]:
    """load_model for each spec; labels must be distinct. Bicubic takes the window of the first
    network so that it shares that network's pass over the data (it only reads the centre frame)."""
    models = [load_model(spec, precision=precision) for spec in specs]
    labels = [m.label for m in models]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise MmsdError(f"two models are named {', '.join(repeated)}; name them apart with LABEL=SPEC")
    networks = [m for m in models if m.arch != BICUBIC]
    if networks:
        models = [_bicubic(m.label, *networks[0].inputs) if m.arch == BICUBIC and m.source == "built-in" else m
                  for m in models]
    return models


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class FrameScore:
    """The scores of one restored frame (one row of per_frame.csv)."""

    model: str
    crf: int
    clip: str  # 'Actor_19/01-01-03-02-01-01-19'
    actor: int
    emotion: int  # state id 0..14
    statement: int
    frame: int  # t, 0-based
    kbps: float  # video kbps of the clip's LR stream at this CRF
    face_psnr: float
    face_ssim: float
    face_psnr_y: float
    frame_psnr: float
    mouth_psnr: float


def frame_metrics(restored: np.ndarray, target: np.ndarray, face_box, mouth_box) -> dict[str, float]:
    """The per-frame metrics of a restored (H, W, 3) uint8 frame against its target."""
    face_r, face_t = metrics.region(restored, face_box), metrics.region(target, face_box)
    mouth_r, mouth_t = metrics.region(restored, mouth_box), metrics.region(target, mouth_box)
    return {
        "face_psnr": min(metrics.psnr(face_r, face_t), PSNR_CAP),
        "face_ssim": metrics.ssim(face_r, face_t),
        "face_psnr_y": min(metrics.psnr_y(face_r, face_t), PSNR_CAP),
        "frame_psnr": min(metrics.psnr(restored, target), PSNR_CAP),
        "mouth_psnr": min(metrics.psnr(mouth_r, mouth_t), PSNR_CAP),
    }


def uint8_images(tensor: torch.Tensor) -> np.ndarray:
    """Tensor[B, 3, H, W] on [0, 1] -> (B, H, W, 3) uint8."""
    return metrics.to_uint8(tensor.permute(0, 2, 3, 1).cpu().numpy())


def split_key(sample_key: str) -> tuple[str, int, int]:
    """'Actor_05/01-01-03-02-01-01-05#crf32@t17' -> ('Actor_05/01-01-03-02-01-01-05', 32, 17)."""
    clip, _, rest = sample_key.rpartition("#")
    crf, _, t = rest.partition("@t")
    if not clip or not crf.startswith("crf"):
        raise ValueError(f"not a sample key 'CLIP#crfC@tT': {sample_key!r}")
    return clip, int(crf[3:]), int(t)


def score_batch(models: Sequence[EvalModel], batch, clips: dict, kbps: Callable[[str, int], float]) -> list[FrameScore]:
    """Restore one Batch with every model and score each frame. clips: key -> ClipMeta."""
    targets = uint8_images(batch.hr)
    keys = [split_key(k) for k in batch.key]
    rows = []
    for model in models:
        restored = uint8_images(model.restore(batch))
        for i, (clip_key, crf, t) in enumerate(keys):
            clip = clips[clip_key]
            scores = frame_metrics(restored[i], targets[i], batch.face_box[i].tolist(), batch.mouth_box[i].tolist())
            rows.append(FrameScore(model=model.label, crf=crf, clip=clip_key, actor=clip.actor, emotion=clip.emotion,
                                   statement=clip.statement, frame=t, kbps=kbps(clip_key, crf), **scores))
    return rows


def groups(models: Sequence[EvalModel]) -> dict[tuple[int, bool, str], list[EvalModel]]:
    groups: dict[tuple[int, bool, str], list[EvalModel]] = defaultdict(list)
    for model in models:
        groups[model.inputs].append(model)
    return groups


@torch.inference_mode()
def evaluate(cache: str | Path, models: Sequence[EvalModel], *, actors: Sequence[int] | None = None,
             crfs: Sequence[int] | None = None, subset: FrameSubset = FrameSubset(),
             keys: Sequence[str] | None = None, batch_size: int = 8, workers: int = 0,
             audio_from: dict[str, str] | None = None, progress: bool = True) -> list[FrameScore]:
    """Score every model on the frames `subset` of the cache's clips of `actors` (default: the test
    actors), optionally only clips `keys`. Models with the same inputs share one pass over the data.
    audio_from: clip key -> the clip whose audio it gets instead of its own (`swapped_audio`).
    """
    from torch.utils.data import DataLoader, Subset

    from mmsd.data.dataset import CacheDataset, collate, read_index

    actors = tuple(actors) if actors is not None else test_actors()
    clips = {c.key: c for c in read_index(cache)}
    rows: list[FrameScore] = []
    for (radius, causal, mfcc_norm), group in groups(models).items():
        dataset = CacheDataset(cache, actors=actors, crfs=crfs, radius=radius, causal=causal, patch=None,
                               frame_step=1 if subset.per_clip else subset.step, keys=keys, mfcc_norm=mfcc_norm,
                               audio_from=audio_from)
        if subset.per_clip:
            # dataset.items: (N, 3) clip index, CRF, centre frame t of every item
            wanted = [set(subset.frames(clip.hr_frames)) for clip in dataset.clips]
            dataset = Subset(dataset, [i for i, (ci, _, t) in enumerate(dataset.items.tolist()) if t in wanted[ci]])
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate)
        names = ", ".join(m.label for m in group)
        with tqdm(total=len(dataset) * len(group), unit="frame", desc=f"eval {names}", disable=not progress,
                  dynamic_ncols=True) as bar:
            for batch in loader:
                rows.extend(score_batch(group, batch, clips, lambda key, crf: clips[key].kbps[crf]))
                bar.update(len(batch.key) * len(group))
    return rows


@dataclass
class Frames:
    """Model inputs and targets made in memory (the rate sweep, the figures): the fields of
    `mmsd.data.dataset.Batch` that restoring and scoring read, with the same shapes."""

    lr: torch.Tensor  # (B, T, 3, h, w) float32 [0, 1]
    hr: torch.Tensor  # (B, 3, 4h, 4w) float32 [0, 1]
    mfcc: torch.Tensor  # (B, T, K, M)
    emotion: torch.Tensor  # (B,) int64
    face_box: torch.Tensor  # (B, 4) int64
    mouth_box: torch.Tensor  # (B, 4) int64
    key: list[str]  # 'CLIP#crfC@tT'


def window_frames(lr: np.ndarray, hr, reader, clip, crf: int, frames: Sequence[int],
                  inputs: tuple[int, bool, str]) -> Frames:
    """Frames at centre frames `frames` for networks of `inputs` (EvalModel.inputs), windows edge
    replicated as the dataset does: lr (T, h, w, 3) uint8, all frames of the clip; hr[t] (H, W, 3)
    uint8 for each t in `frames` (an array or a dict); reader: the clip's `ClipReader`."""
    radius, causal, mfcc_norm = inputs
    arrays = reader.arrays
    offsets = np.arange(-2 * radius, 1) if causal else np.arange(-radius, radius + 1)
    windows = np.clip(np.asarray(frames)[:, None] + offsets, 0, clip.num_frames - 1)  # (B, T)
    return Frames(
        lr=torch.from_numpy(np.ascontiguousarray(lr[windows])).permute(0, 1, 4, 2, 3).float().div_(255),
        hr=torch.from_numpy(np.stack([hr[t] for t in frames])).permute(0, 3, 1, 2).float().div_(255),
        mfcc=torch.from_numpy(reader.mfcc(mfcc_norm)[windows]),
        emotion=torch.full((len(frames),), clip.emotion, dtype=torch.int64),
        face_box=torch.from_numpy(arrays["face_box"][list(frames)].astype(np.int64)),
        mouth_box=torch.from_numpy(arrays["mouth_box"][list(frames)].astype(np.int64)),
        key=[f"{clip.key}#crf{crf}@t{t}" for t in frames],
    )


def swapped_audio(clips: Sequence) -> dict[str, str]:
    """Clip key -> the key of the clip whose audio it gets in a mismatched-audio test: the same
    sentence, emotion state and repetition spoken by the next of the clips' actors (the last
    actor's go to the first's). Clips without such a partner are left out (they keep their audio)."""
    actors = sorted({c.actor for c in clips})
    by_content = {(c.actor, c.emotion, c.channel, c.statement, c.repetition): c.key for c in clips}
    swapped = {}
    for clip in clips:
        partner = actors[(actors.index(clip.actor) + 1) % len(actors)]
        other = by_content.get((partner, clip.emotion, clip.channel, clip.statement, clip.repetition))
        if other is not None and partner != clip.actor:
            swapped[clip.key] = other
    return swapped
