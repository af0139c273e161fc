"""The tables of `mmsd eval` over per-frame scores: Table 1, the ablation, per-emotion gains, BD-rates,
as Markdown and JSON, and the per-frame scores as CSV.

Table means are over all evaluated frames, each frame weighing the same (not per clip first), per CRF;
PSNR is averaged in dB.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmsd import emotions
from mmsd.errors import MmsdError
from mmsd.evaluation.bdrate import Curve, bd_rate
from mmsd.evaluation.protocol import METRICS, FrameScore, FrameSubset
from mmsd.media.fileio import atomic_write_text


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


def crfs_of(rows: Sequence[FrameScore]) -> list[int]:
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
    crfs, kbps = crfs_of(rows), mean_kbps(rows)
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
    crfs = crfs_of(rows)
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


def protocol_text(cache: Path, rows: Sequence[FrameScore], subset: FrameSubset, hr_step: int) -> str:
    """One paragraph that says what was evaluated, for the tables' notes."""
    clips = {r.clip for r in rows}
    actors = sorted({r.actor for r in rows})
    per_crf = len({(r.clip, r.frame, r.crf) for r in rows}) // max(1, len(crfs_of(rows)))
    return (f"Protocol: cache {cache}; actors {', '.join(map(str, actors))} ({len(clips)} clips); "
            f"evaluated frames: {subset.describe(hr_step)}; {per_crf} frames per CRF, the same for every "
            "method; one model serves all CRFs.")
