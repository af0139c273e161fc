"""Runs over the test clips beyond the tables: the CRF sweep behind the BD-rates and the comparison
grids of Fig. 6/7.

BD-rate sweep: the clean LR frames are remade from the cache's HR frames with
`mmsd.data.degrade.downsample` and coded at every sweep CRF with `mmsd.media.codec.encode_decode`
(the preset the cache was made with). It needs every HR frame of a clip: from the cache
when it was prepared with ``--hr-step 1``, else re-cut from the source video recorded in
the clip's meta.json (and checked against the stored HR frames). A method that uses the
emotion state pays for it: its rate adds the bits of the side information that carries
the state (`mmsd.media.sideinfo`, ~38 bytes per clip) over the clip's duration.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mmsd import emotions
from mmsd.errors import MmsdError
from mmsd.evaluation.bdrate import Curve
from mmsd.evaluation.protocol import (EvalModel, FrameScore, FrameSubset, groups, score_batch, test_actors,
                                      uint8_images, window_frames)
from mmsd.evaluation.tables import group_means

SWEEP_CRFS = (15, 20, 25, 32, 36, 40, 45)
DEFAULT_SWEEP_CLIP_STEP = 3  # the sweep codes 7 CRFs: a third of the clips costs about what the tables do


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
    actors = tuple(actors) if actors is not None else test_actors()
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
                for inputs, group in groups(models).items():
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
            images.append(uint8_images(model.restore(batch))[0])
        images.append(hr[t])
        state = emotions.STATES[clip.emotion].name
        rows.append(GridRow(label=f"actor {clip.actor}, {state}, t={t}", images=images,
                            mouth_box=tuple(int(v) for v in reader.arrays["mouth_box"][t])))
    kbps = np.mean([c.kbps[crf] for c in picks])
    columns = [f"decoded (CRF {crf}, {kbps:.0f} kbps)", *(m.label for m in models), "ground truth"]
    return comparison_grid(rows, columns)
