"""`mmsd eval`: the paper's evaluation (Sec. 4.2) on the test actors of a prepared cache.

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

Outputs in ``--out``: per_frame.csv; table1, ablation and emotion-gain tables as
Markdown + JSON; results.md (all tables with the protocol); eval.json (protocol,
models, timing); PNG figures (comparison grids, rate-quality plot); with ``--bd-rate``
a CRF sweep (rate_sweep.csv) and BD-rates (bdrate.md/json, see `mmsd.evaluation.bdrate`).
``--precision`` sets the networks' arithmetic (`mmsd.models.precision`: auto is fp32 on a CPU
without fast bf16); eval.json records it per model.

BD-rate sweep: the clean LR frames are remade from the cache's HR frames with
`mmsd.data.degrade.downsample` and coded at every sweep CRF with `mmsd.media.codec.encode_decode`
(the preset the cache was made with). It needs every HR frame of a clip: from the cache
when it was prepared with ``--hr-step 1``, else re-cut from the source video recorded in
the clip's meta.json (and checked against the stored HR frames). A method that uses the
emotion state pays for it: its rate adds the bits of the side information that carries
the state (`mmsd.media.sideinfo`, ~38 bytes per clip) over the clip's duration.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import shlex
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mmsd import emotions
from mmsd.errors import MmsdError
from mmsd.evaluation import metrics
from mmsd.evaluation.bdrate import Curve, bd_rate
from mmsd.media.audio import model_norm
from mmsd.media.fileio import atomic_path
from mmsd.models.precision import add_argument as add_precision_argument, autocast, resolve as resolve_precision
from mmsd.models.weights import find_model

BICUBIC = "bicubic"
PSNR_CAP = 100.0
DEFAULT_FRAMES_PER_CLIP = 1  # measured: see the module docstring
SWEEP_CRFS = (15, 20, 25, 32, 36, 40, 45)
DEFAULT_SWEEP_CLIP_STEP = 3  # the sweep codes 7 CRFs: a third of the clips costs about what the tables do
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


def _test_actors() -> tuple[int, ...]:
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
    (`mmsd.models.precision`; Bicubic is fp32 whatever it is)."""
    precision = resolve_precision(precision)
    label, sep, target = spec.partition("=")
    if not sep or not label or "/" in label:
        label, target = "", spec
    if target == BICUBIC:
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


def _images(tensor: torch.Tensor) -> np.ndarray:
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
    targets = _images(batch.hr)
    keys = [split_key(k) for k in batch.key]
    rows = []
    for model in models:
        restored = _images(model.restore(batch))
        for i, (clip_key, crf, t) in enumerate(keys):
            clip = clips[clip_key]
            scores = frame_metrics(restored[i], targets[i], batch.face_box[i].tolist(), batch.mouth_box[i].tolist())
            rows.append(FrameScore(model=model.label, crf=crf, clip=clip_key, actor=clip.actor, emotion=clip.emotion,
                                   statement=clip.statement, frame=t, kbps=kbps(clip_key, crf), **scores))
    return rows


def _groups(models: Sequence[EvalModel]) -> dict[tuple[int, bool, str], list[EvalModel]]:
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

    actors = tuple(actors) if actors is not None else _test_actors()
    clips = {c.key: c for c in read_index(cache)}
    rows: list[FrameScore] = []
    for (radius, causal, mfcc_norm), group in _groups(models).items():
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


# --------------------------------------------------------------------------- aggregation


def group_means(rows: Iterable[FrameScore], by: Sequence[str], fields: Sequence[str] = METRICS) -> dict[tuple, dict]:
    """Mean of `fields` over the rows of each group (every row weighs the same), plus 'frames'."""
    sums: dict[tuple, np.ndarray] = {}
    counts: dict[tuple, int] = defaultdict(int)
    for row in rows:
        key = tuple(getattr(row, b) for b in by)
        values = np.array([getattr(row, f) for f in fields], dtype=np.float64)
        sums[key] = sums.get(key, 0.0) + values
        counts[key] += 1
    return {key: {**dict(zip(fields, (sums[key] / counts[key]).tolist())), "frames": counts[key]} for key in sums}


@dataclass
class Table:
    """A results table: row names, column headers, values (None = missing), Markdown and JSON."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[float | None]]]
    digits: list[int]  # decimals per column
    notes: list[str] = field(default_factory=list)
    bold_max: list[bool] | None = None  # per column: mark the largest value in bold
    row_header: str = "Method"
    meta: dict = field(default_factory=dict)  # extra JSON fields (e.g. kbps per CRF)

    def markdown(self) -> str:
        best = []
        for c in range(len(self.columns)):
            values = [v[c] for _, v in self.rows if v[c] is not None and not math.isnan(v[c])]
            marked = self.bold_max is not None and self.bold_max[c] and len(values) > 1
            best.append(round(max(values), self.digits[c]) if marked and values else None)

        def cell(value: float | None, c: int) -> str:
            if value is None or math.isnan(value):
                return "n/a"
            text = f"{value:.{self.digits[c]}f}"
            return f"**{text}**" if best[c] is not None and round(value, self.digits[c]) == best[c] else text

        lines = [f"**{self.title}**", "", "| " + " | ".join([self.row_header, *self.columns]) + " |",
                 "|" + "---|" + "---:|" * len(self.columns)]
        lines += ["| " + " | ".join([name, *(cell(v, c) for c, v in enumerate(values))]) + " |"
                  for name, values in self.rows]
        if self.notes:
            lines += [""] + [f"{note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        def clean(value):
            return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

        return {"title": self.title, "row_header": self.row_header, "columns": self.columns, "notes": self.notes,
                **self.meta,
                "rows": [{"name": name, "values": {c: clean(v) for c, v in zip(self.columns, values)}}
                         for name, values in self.rows]}


def _crfs_of(rows: Sequence[FrameScore]) -> list[int]:
    return sorted({r.crf for r in rows})


def mean_kbps(rows: Sequence[FrameScore]) -> dict[int, float]:
    """Mean LR video kbps per CRF over the evaluated clips (each clip once)."""
    per_clip = {(r.crf, r.clip): r.kbps for r in rows}
    out: dict[int, list[float]] = defaultdict(list)
    for (crf, _), value in per_clip.items():
        out[crf].append(value)
    return {crf: float(np.mean(v)) for crf, v in sorted(out.items())}


def _models_of(rows: Sequence[FrameScore], models: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(r.model for r in rows))
    if models is None:
        return present
    missing = [m for m in models if m not in present]
    if missing:
        raise MmsdError(f"no results for model(s) {', '.join(missing)}; evaluated: {', '.join(present)}")
    return list(models)


def table1(rows: Sequence[FrameScore], models: Sequence[str] | None = None, protocol: str = "") -> Table:
    """Table 1: face-region PSNR (dB) and SSIM per model and CRF, kbps in the header."""
    crfs, kbps = _crfs_of(rows), mean_kbps(rows)
    means = group_means(rows, ("model", "crf"))
    columns, digits = [], []
    for crf in crfs:
        columns += [f"CRF {crf} ({kbps[crf]:.1f} kbps) PSNR", f"CRF {crf} SSIM"]
        digits += [2, 4]
    body = []
    for model in _models_of(rows, models):
        values = []
        for crf in crfs:
            m = means.get((model, crf))
            values += [m["face_psnr"], m["face_ssim"]] if m else [None, None]
        body.append((model, values))
    notes = ["Face region only (the cache's per-frame face box), RGB on [0, 255]; mean over all evaluated "
             "frames of all test clips, each frame weighing the same. kbps: mean LR video bitrate of the CRF."]
    first = body[0][0] if body else None
    frames = {str(crf): means[(first, crf)]["frames"] for crf in crfs if (first, crf) in means}
    return Table("Table 1: face-region PSNR (dB) / SSIM", columns, body, digits,
                 notes + ([protocol] if protocol else []), bold_max=[True] * len(columns),
                 meta={"kbps": {str(c): v for c, v in kbps.items()}, "frames_per_crf": frames})


def ablation_table(rows: Sequence[FrameScore], models: Sequence[str] | None = None, protocol: str = "") -> Table:
    """Fig. 1 ablation: face PSNR/SSIM and mouth PSNR per CRF for each model."""
    crfs = _crfs_of(rows)
    means = group_means(rows, ("model", "crf"))
    columns, digits = [], []
    for crf in crfs:
        columns += [f"CRF {crf} face PSNR", f"CRF {crf} face SSIM", f"CRF {crf} mouth PSNR"]
        digits += [2, 4, 2]
    body = []
    for model in _models_of(rows, models):
        values = []
        for crf in crfs:
            m = means.get((model, crf))
            values += [m["face_psnr"], m["face_ssim"], m["mouth_psnr"]] if m else [None, None, None]
        body.append((model, values))
    notes = ["Models named by their weight file. Face and mouth boxes of the cache; mean over all evaluated frames."]
    return Table("Ablation (Fig. 1): face PSNR (dB) / SSIM and mouth PSNR (dB)", columns, body, digits,
                 notes + ([protocol] if protocol else []), bold_max=[True] * len(columns))


def emotion_gain(rows: Sequence[FrameScore], model: str, baseline: str, metric: str = "face_psnr") -> Table:
    """Mean gain of `model` over `baseline` in `metric` per emotion state and CRF, on the frames both
    restored; rows sorted by the mean gain over CRFs (largest first), then an 'all states' row."""
    _models_of(rows, [model, baseline])
    ours = {(r.clip, r.crf, r.frame): r for r in rows if r.model == model}
    diffs: dict[tuple[int, int], list[float]] = defaultdict(list)
    clips: dict[int, set[str]] = defaultdict(set)
    for r in rows:
        if r.model == baseline and (r.clip, r.crf, r.frame) in ours:
            diffs[(r.emotion, r.crf)].append(getattr(ours[(r.clip, r.crf, r.frame)], metric) - getattr(r, metric))
            clips[r.emotion].add(r.clip)
    if not diffs:
        raise MmsdError(f"models {model} and {baseline} share no evaluated frame")
    crfs = sorted({crf for _, crf in diffs})
    body = []
    for state in sorted(clips):
        per_crf = [float(np.mean(diffs[(state, c)])) if diffs.get((state, c)) else None for c in crfs]
        known = [v for v in per_crf if v is not None]
        body.append((emotions.STATES[state].name, [*per_crf, float(np.mean(known)), float(len(clips[state]))]))
    body.sort(key=lambda row: -row[1][-2])
    everything = [float(np.mean([d for (s, c), v in diffs.items() if c == crf for d in v])) for crf in crfs]
    body.append(("all states", [*everything, float(np.mean(everything)), float(sum(len(v) for v in clips.values()))]))
    unit = "dB" if "psnr" in metric else ""
    columns = [f"CRF {c} gain" for c in crfs] + ["mean gain", "clips"]
    return Table(f"Per-emotion gain of {model} over {baseline} ({metric}{', ' + unit if unit else ''})",
                 columns, body, [3] * (len(crfs) + 1) + [0],
                 [f"Gain = {model} - {baseline} on the same frames, averaged per emotion state and CRF; "
                  "'mean gain' averages the CRF columns; sorted by it."], row_header="Emotion state")


# --------------------------------------------------------------------------- BD-rate sweep


def side_info_kbps(clip) -> float:
    """kbps of the side information that carries a clip's emotion state (one segment)."""
    from mmsd.media.sideinfo import SideInfo

    seconds = clip.num_frames / float(clip.fps)
    return SideInfo.from_states([clip.emotion]).bits / seconds / 1000.0


def _all_hr_frames(index, clip, reader) -> np.ndarray:
    """Every HR frame of a clip (T, H, W, 3) uint8: from the cache, or re-cut from the source video."""
    if len(clip.hr_frames) == clip.num_frames:
        return np.stack([reader.hr(t) for t in range(clip.num_frames)])
    from mmsd.data.degrade import resize
    from mmsd.media import codec

    source = clip.find_source()
    if source is None:
        raise MmsdError(f"{clip.key}: the cache keeps HR for every {clip.hr_frames[1] - clip.hr_frames[0]}th frame "
                        f"and its source video {clip.source or '(none recorded)'} is gone; the rate sweep needs "
                        "every frame (prepare with --hr-step 1, or keep the corpus)")
    x0, y0, x1, y1 = clip.crop_box
    hr_w, hr_h = index.hr_size
    frames = [resize(f[y0:y1, x0:x1], hr_w, hr_h) for f in codec.read_frames(source)]
    if len(frames) != clip.num_frames or not np.array_equal(frames[0], reader.hr(0)):
        raise MmsdError(f"{clip.key}: the source video {source} no longer matches the cache")
    return np.stack(frames)


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


@torch.inference_mode()
def rate_sweep(cache: str | Path, models: Sequence[EvalModel], *, crfs: Sequence[int] = SWEEP_CRFS,
               actors: Sequence[int] | None = None, subset: FrameSubset = FrameSubset(), clip_step: int = 1,
               batch_size: int = 8, progress: bool = True) -> list[FrameScore]:
    """Re-code the test clips at every CRF of a sweep and score every model (see the module docstring).

    Rows carry the clip's video kbps at that CRF; side-information bits are added per model by `rd_curves`.
    clip_step k: every k-th clip only (sorted by key), to shorten the sweep.
    """
    from mmsd.data.dataset import ClipIndex
    from mmsd.data.degrade import downsample
    from mmsd.media import codec

    index = ClipIndex(cache)
    preset = index.settings.get("preset", "medium")
    actors = tuple(actors) if actors is not None else _test_actors()
    clips = index.select(actors)[::clip_step]
    if not clips:
        raise MmsdError(f"no clips of actors {list(actors)} in {cache}")
    by_key = {c.key: c for c in clips}
    rows: list[FrameScore] = []
    with tqdm(total=len(clips) * len(crfs), unit="clip-crf", desc="rate sweep", disable=not progress,
              dynamic_ncols=True) as bar:
        for clip in clips:
            reader = index.reader(clip)
            hr = _all_hr_frames(index, clip, reader)
            lr_clean = downsample(hr, index.scale)
            centres = subset.frames(clip.hr_frames)
            for crf in crfs:
                decoded, kbps = codec.encode_decode(list(lr_clean), fps=clip.fps, crf=crf, preset=preset)
                lr = np.stack(decoded)
                for inputs, group in _groups(models).items():
                    for start in range(0, len(centres), batch_size):
                        batch = window_frames(lr, hr, reader, clip, crf, centres[start:start + batch_size], inputs)
                        rows.extend(score_batch(group, batch, by_key, lambda key, c, kbps=kbps: kbps))
                bar.update(1)
    return rows


def rd_curves(rows: Sequence[FrameScore], models: Sequence[EvalModel], clips: dict) -> dict[str, Curve]:
    """Per model: (mean kbps over clips, mean face PSNR over frames) per CRF; a model that reads the
    emotion state adds the side-information rate of each clip."""
    side = {m.label: m.uses_emotion for m in models}
    curves = {}
    means = group_means(rows, ("model", "crf"), ("face_psnr",))
    for label in dict.fromkeys(r.model for r in rows):
        per_clip = {(r.crf, r.clip): r.kbps + (side_info_kbps(clips[r.clip]) if side.get(label) else 0.0)
                    for r in rows if r.model == label}
        crfs = sorted({crf for crf, _ in per_clip})
        kbps = [float(np.mean([v for (c, _), v in per_clip.items() if c == crf])) for crf in crfs]
        curves[label] = Curve.of(kbps, [means[(label, crf)]["face_psnr"] for crf in crfs])
    return curves


def bd_table(curves: dict[str, Curve], anchor: str, pairs: Sequence[tuple[str, str]] = ()) -> Table:
    """BD-rate (%) and BD-PSNR (dB) of every method vs `anchor`, then of each (test, reference) pair."""
    comparisons = [(label, anchor) for label in curves if label != anchor and anchor in curves]
    comparisons += [p for p in pairs if p not in comparisons and p[0] in curves and p[1] in curves]
    body, notes = [], []
    for test, reference in comparisons:
        result = bd_rate(curves[reference], curves[test])
        body.append((f"{test} vs {reference}", [result.bd_rate, result.bd_psnr, result.overlap * 100]))
        if result.note:
            notes.append(f"{test} vs {reference}: {result.note}.")
    notes.insert(0, "BD-rate: mean rate change at equal face PSNR (negative = fewer bits), pchip as the JVET "
                    "CTC sheet, over the PSNR range both curves cover ('overlap'). Rates include the "
                    "side-information bits for methods that read the emotion state.")
    return Table("BD-rate over the CRF sweep (face PSNR)", ["BD-rate %", "BD-PSNR dB", "overlap %"], body,
                 [2, 3, 0], notes, row_header="Test vs anchor")


# --------------------------------------------------------------------------- figures


def figure_picks(clips: Sequence, rows: int, *, one_actor: bool) -> list:
    """Test clips for a comparison grid: one actor in different emotion states (Fig. 6), or
    different actors in different states (Fig. 7). Deterministic."""
    clips = sorted(clips, key=lambda c: (c.actor, c.statement, c.repetition, c.key))
    actors = sorted({c.actor for c in clips})
    picks, seen = [], set()
    if one_actor:
        pool = [c for c in clips if c.actor == actors[0]]
        states = sorted({c.emotion for c in pool})
        step = max(1, len(states) // rows)
        for state in states[::step][:rows]:
            picks.append(next(c for c in pool if c.emotion == state))
        return picks
    for i, actor in enumerate(actors[:rows]):
        pool = [c for c in clips if c.actor == actor]
        states = sorted({c.emotion for c in pool})
        ordered = states[(3 * i) % len(states):] + states[:(3 * i) % len(states)]
        state = next((s for s in ordered if s not in seen), ordered[0])
        seen.add(state)
        picks.append(next(c for c in pool if c.emotion == state))
    return picks


@torch.inference_mode()
def figure_grid(cache: str | Path, models: Sequence[EvalModel], picks: Sequence, crf: int) -> np.ndarray:
    """Comparison grid (RGB uint8): per pick the middle HR frame restored by each model."""
    from mmsd.data.dataset import ClipIndex
    from mmsd.evaluation.figures import GridRow, comparison_grid

    index = ClipIndex(cache)
    if crf not in index.crfs:
        raise MmsdError(f"figure CRF {crf} is not in the cache (has {list(index.crfs)})")
    rows = []
    for clip in picks:
        reader = index.reader(clip)
        t = FrameSubset(1).frames(clip.hr_frames)[0]
        lr = reader.lr(crf)  # (T, h, w, 3)
        hr = {t: reader.hr(t)}
        images = [np.repeat(np.repeat(lr[t], index.scale, axis=0), index.scale, axis=1)]
        for model in models:
            batch = window_frames(lr, hr, reader, clip, crf, [t], model.inputs)
            images.append(_images(model.restore(batch))[0])
        images.append(hr[t])
        state = emotions.STATES[clip.emotion].name
        rows.append(GridRow(label=f"actor {clip.actor}, {state}, t={t}", images=images,
                            mouth_box=tuple(int(v) for v in reader.arrays["mouth_box"][t])))
    kbps = np.mean([c.kbps[crf] for c in picks])
    columns = [f"decoded (CRF {crf}, {kbps:.0f} kbps)", *(m.label for m in models), "ground truth"]
    return comparison_grid(rows, columns)


# --------------------------------------------------------------------------- files


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_rows(path: Path, rows: Sequence[FrameScore]) -> None:
    """Per-frame scores as CSV (one row per model, CRF, clip, frame)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in dataclasses.fields(FrameScore)])
    writer.writeheader()
    for row in rows:
        values = dataclasses.asdict(row)
        writer.writerow({k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()})
    atomic_write_text(path, buffer.getvalue())


def read_rows(path: Path) -> list[FrameScore]:
    """Inverse of write_rows."""
    types = {f.name: f.type for f in dataclasses.fields(FrameScore)}
    cast = {"str": str, "int": int, "float": float}
    with open(path, newline="") as f:
        return [FrameScore(**{k: cast[types[k]](v) for k, v in row.items()}) for row in csv.DictReader(f)]


def write_table(out: Path, stem: str, table: Table) -> None:
    atomic_write_text(out / f"{stem}.md", table.markdown())
    atomic_write_text(out / f"{stem}.json", json.dumps(table.to_json(), indent=1) + "\n")


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


def protocol_text(cache: Path, rows: Sequence[FrameScore], subset: FrameSubset, hr_step: int) -> str:
    """One paragraph that says what was evaluated, for the tables' notes."""
    clips = {r.clip for r in rows}
    actors = sorted({r.actor for r in rows})
    per_crf = len({(r.clip, r.frame, r.crf) for r in rows}) // max(1, len(_crfs_of(rows)))
    return (f"Protocol: cache {cache}; actors {', '.join(map(str, actors))} ({len(clips)} clips); "
            f"evaluated frames: {subset.describe(hr_step)}; {per_crf} frames per CRF, the same for every "
            "method; one model serves all CRFs.")


# --------------------------------------------------------------------------- CLI


def _actor_list(text: str) -> tuple[int, ...]:
    """'19-24' or '19,21,23-24' -> actor numbers."""
    actors: list[int] = []
    for item in filter(None, text.replace(" ", "").split(",")):
        low, sep, high = item.partition("-")
        try:
            actors.extend(range(int(low), int(high) + 1) if sep else [int(low)])
        except ValueError:
            raise argparse.ArgumentTypeError(f"actors must look like '19-24' or '19,21', got {text!r}") from None
    return tuple(actors)


def _pair(text: str) -> tuple[str, str]:
    model, sep, baseline = text.partition(":")
    if not sep or not model or not baseline:
        raise argparse.ArgumentTypeError(f"expected MODEL:BASELINE, got {text!r}")
    return model, baseline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="cache written by `mmsd prepare`")
    parser.add_argument("--models", nargs="+", required=True, metavar="[LABEL=]NAME|PATH",
                        help="'bicubic', a model name (`mmsd models`) or a weights file")
    parser.add_argument("--out", type=Path, required=True, help="folder for tables, figures and per-frame scores")
    parser.add_argument("--actors", type=_actor_list, default=None, help="actors to evaluate (default: test 19-24)")
    parser.add_argument("--clips", nargs="+", metavar="KEY",
                        help="score only these clips of the actors (cache keys, e.g. Actor_20/01-01-01-01-02-01-20; "
                             "tables only: no figures, no rate sweep)")
    parser.add_argument("--crf", type=int, nargs="+", dest="crfs", help="CRFs of the cache to use (default: all)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--frames-per-clip", type=int, default=DEFAULT_FRAMES_PER_CLIP, metavar="N",
                       help=f"evaluate N frames spread evenly over each clip (default {DEFAULT_FRAMES_PER_CLIP}: "
                            "the middle frame)")
    which.add_argument("--frame-step", type=int, metavar="K", help="instead: every K-th frame with a stored HR frame")
    parser.add_argument("--batch", type=int, default=8, help="frames per forward pass (default 8)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    parser.add_argument("--table1", nargs="+", metavar="LABEL", help="rows of Table 1 (default: every model)")
    parser.add_argument("--ablation", nargs="+", metavar="LABEL", help="rows of the ablation (default: every model)")
    parser.add_argument("--gain", type=_pair, nargs="+", default=[], metavar="MODEL:BASELINE",
                        help="per-emotion gain tables, e.g. mmsd:edvr")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG comparison grids")
    parser.add_argument("--figure-crf", type=int, default=None, help="CRF of the grids (default 32, else the middle)")
    parser.add_argument("--figure-rows", type=int, default=4, help="clips per grid (default 4)")
    parser.add_argument("--bd-rate", action="store_true", help="also run the CRF sweep and BD-rates")
    parser.add_argument("--sweep-crf", type=int, nargs="+", default=list(SWEEP_CRFS), help="CRFs of the sweep")
    parser.add_argument("--sweep-clip-step", type=int, default=DEFAULT_SWEEP_CLIP_STEP, metavar="K",
                        help=f"sweep every K-th test clip (default {DEFAULT_SWEEP_CLIP_STEP}), with the tables' frames")
    parser.add_argument("--bd-anchor", default=BICUBIC, help="anchor of the BD-rates (default bicubic)")
    parser.add_argument("--swap-audio", action="store_true",
                        help="mismatched-audio test: each clip gets the audio of the same sentence and emotion "
                             "spoken by the next actor (no figures, no rate sweep)")
    add_precision_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _write_figures(out: Path, index, models: Sequence[EvalModel], actors: Sequence[int], crf: int | None,
                   rows: int) -> list[str]:
    """fig6_one_actor.png and fig7_actors.png at `crf` (default 32, else the cache's middle CRF)."""
    from mmsd.evaluation.figures import write_png

    crf = crf or (32 if 32 in index.crfs else index.crfs[len(index.crfs) // 2])
    test_clips = index.select(actors)
    names = []
    for stem, one_actor in (("fig6_one_actor", True), ("fig7_actors", False)):
        picks = figure_picks(test_clips, rows, one_actor=one_actor)
        write_png(out / f"{stem}.png", figure_grid(index.root, models, picks, crf))
        names.append(f"{stem}.png")
    return names


def run(args: argparse.Namespace) -> int:
    from mmsd.data.dataset import ClipIndex
    from mmsd.evaluation.figures import rate_quality_plot, write_png

    subset = FrameSubset(per_clip=None, step=args.frame_step) if args.frame_step else FrameSubset(args.frames_per_clip)
    if args.batch < 1 or args.sweep_clip_step < 1:
        raise MmsdError(f"--batch and --sweep-clip-step must be >= 1, got {args.batch} and {args.sweep_clip_step}")
    started = time.monotonic()
    index = ClipIndex(args.data)
    models = load_models(args.models, precision=args.precision)
    labels = [m.label for m in models]
    for model, baseline in args.gain:
        if model not in labels or baseline not in labels:
            raise MmsdError(f"--gain {model}:{baseline} names a model not in --models ({', '.join(labels)})")
    actors = args.actors or _test_actors()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress

    # 1. per-frame scores and the tables
    audio_from = swapped_audio(index.select(actors)) if args.swap_audio else None
    if (args.swap_audio or args.clips) and (args.bd_rate or not args.no_figures):
        args.bd_rate, args.no_figures = False, True  # both would restore other clips, or with the clips' own audio
    rows = evaluate(args.data, models, actors=actors, keys=args.clips, crfs=args.crfs, subset=subset,
                    batch_size=args.batch, workers=args.workers, audio_from=audio_from, progress=progress)
    if not rows:
        raise MmsdError(f"{args.data}: no frames to evaluate for actors {list(actors)}")
    eval_seconds = time.monotonic() - started
    restore_seconds = {m.label: round(m.seconds, 1) for m in models}
    write_rows(out / "per_frame.csv", rows)
    hr_step = int(index.settings.get("hr_step", 1))
    protocol = protocol_text(args.data, rows, subset, hr_step)
    if audio_from is not None:
        protocol += (f" Mismatched audio: {len(audio_from)} of the {len({r.clip for r in rows})} clips heard the "
                     "same sentence and emotion spoken by the next actor instead of their own audio.")
    tables = {"table1": table1(rows, args.table1, protocol), "ablation": ablation_table(rows, args.ablation, protocol)}
    for model, baseline in args.gain:
        tables[f"emotion_gain_{model}_vs_{baseline}"] = emotion_gain(rows, model, baseline)

    # 2. comparison grids
    figures = [] if args.no_figures else _write_figures(out, index, models, actors, args.figure_crf, args.figure_rows)

    # 3. rate-quality: over the CRF sweep with BD-rates, else at the cache's CRFs
    sweep = {}
    if args.bd_rate:
        sweep_rows = rate_sweep(args.data, models, crfs=args.sweep_crf, actors=actors, subset=subset,
                                clip_step=args.sweep_clip_step, batch_size=args.batch, progress=progress)
        write_rows(out / "rate_sweep.csv", sweep_rows)
        curves = rd_curves(sweep_rows, models, {c.key: c for c in index.clips})
        tables["bdrate"] = bd_table(curves, args.bd_anchor, list(args.gain))
        sweep = {label: {"kbps": list(c.kbps), "face_psnr": list(c.psnr)} for label, c in curves.items()}
        title = f"Rate-quality over the CRF sweep (CRFs {', '.join(map(str, args.sweep_crf))})"
    else:
        kbps, means, crfs = mean_kbps(rows), group_means(rows, ("model", "crf")), _crfs_of(rows)
        curves = {label: Curve.of([kbps[c] for c in crfs], [means[(label, c)]["face_psnr"] for c in crfs])
                  for label in labels}
        title = "Rate-quality at the cache CRFs (side-information bits not included)"
    write_png(out / "rate_quality.png", rate_quality_plot({label: (c.kbps, c.psnr) for label, c in curves.items()},
                                                          title=title, x_label="LR video kbps (log scale)",
                                                          y_label="face PSNR (dB)"))
    figures.append("rate_quality.png")

    # 4. files
    for stem, table in tables.items():
        write_table(out, stem, table)
    command = "mmsd " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["eval"] else "mmsd eval (from Python)"
    markdown = "\n".join(t.markdown() for t in tables.values())
    atomic_write_text(out / "results.md", f"Made by `{command}`.\n\n{markdown}")
    summary = {
        "command": command, "cache": str(args.data), "actors": list(actors), "crfs": _crfs_of(rows),
        "subset": dataclasses.asdict(subset),
        "hr_step": hr_step, "frames_per_model": len(rows) // len(models), "protocol": protocol,
        "models": [{"label": m.label, "arch": m.arch, "source": m.source, "config": m.config,
                    "uses_emotion": m.uses_emotion, "precision": m.precision,
                    "eval_restore_seconds": restore_seconds[m.label]}
                   for m in models],
        "eval_seconds": round(eval_seconds, 1), "total_seconds": round(time.monotonic() - started, 1),
        "tables": sorted(tables), "figures": figures, "rate_sweep": sweep,
    }
    atomic_write_text(out / "eval.json", json.dumps(summary, indent=1) + "\n")
    print(tables["table1"].markdown())
    print(f"mmsd eval: {len(rows)} frame scores in {eval_seconds:.0f} s; wrote {out}")
    return 0
