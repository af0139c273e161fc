"""Learning curves of training runs on validation caches: the face PSNR gain over Bicubic of every
snapshot a run kept (`mmsd train --snapshot-every N`) and of its starting weights, per validation set,
per group of clips (the cache's actors: for the real-video validation cache each actor is one clip)
and per CRF; beside them the run's own validation (held-out clips of its training actors, val.csv).

    python scripts/curves.py runs/stage3-rv30 runs/stage3-rv15 \\
        --val realvideo=data/realvideo-val:1-3 portraits=data/portraits:1-2 --out results/curves

Scores are kept in RUN/curves.json (a snapshot is scored once), so re-running after the runs went on
scores only the new snapshots. Writes OUT/curves.md and OUT/curves.png.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

FRAMES_PER_CLIP = 4
PLOT_CRF = 32


def parse_val(spec: str) -> tuple[str, Path, tuple[int, ...]]:
    """'NAME=CACHE:A-B' -> (NAME, CACHE, actors A..B)."""
    name, _, rest = spec.partition("=")
    cache, _, actors = rest.rpartition(":")
    low, _, high = actors.partition("-")
    if not name or not cache or not low.isdigit():
        raise SystemExit(f"--val takes NAME=CACHE:FIRST-LAST actors, got {spec!r}")
    return name, Path(cache), tuple(range(int(low), int(high or low) + 1))


def weights_of(run: Path) -> dict[int, Path]:
    """iteration -> model file: the starting weights (0) and every snapshot."""
    found = {}
    info = json.loads((run / "run.json").read_text())
    if info["train_config"].get("init"):
        found[0] = Path(info["train_config"]["init"])
    for path in sorted((run / "snapshots").glob("model-*.safetensors")):
        found[int(path.stem.split("-")[1])] = path
    return found


@functools.cache
def score(model: Path, cache: Path, actors: tuple[int, ...], digest: str) -> dict[str, dict[str, float]]:
    """{'actor A' (and 'all'): {crf: mean face PSNR gain over Bicubic (dB)}} of one model file (`digest`: its
    content's hash, so that the runs' common starting weights are scored once)."""
    from mmsd.evaluation.protocol import FrameSubset, evaluate, load_models

    models = load_models(["bicubic", f"net={model}"])
    rows = evaluate(cache, models, actors=actors, subset=FrameSubset(per_clip=FRAMES_PER_CLIP), progress=False)
    psnr: dict[tuple[str, str, int], list[float]] = {}
    for row in rows:
        for group in (f"actor {row.actor}", "all"):
            psnr.setdefault((row.model, group, row.crf), []).append(row.face_psnr)
    out: dict[str, dict[str, float]] = {}
    for (label, group, crf), values in psnr.items():
        if label == "net":
            out.setdefault(group, {})[str(crf)] = float(np.mean(values) - np.mean(psnr[("bicubic", group, crf)]))
    return out


def label(run: Path) -> str:
    """A run's name in tables and plots: its folder and its parent's (runs/video-a/mmsd-fast -> video-a/mmsd-fast)."""
    return f"{run.parent.name}/{run.name}"


def run_curves(run: Path, vals, every: int = 1) -> dict:
    """RUN/curves.json, brought up to date: {val name: {iteration: scores}}."""
    path = run / "curves.json"
    curves = json.loads(path.read_text()) if path.is_file() else {}
    for name, cache, actors in vals:
        done = curves.setdefault(name, {})
        for iteration, model in weights_of(run).items():
            if str(iteration) not in done and iteration % every == 0:
                digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()
                done[str(iteration)] = score(model, cache, actors, digest)
                print(f"{label(run)} {name} it {iteration}: {json.dumps(done[str(iteration)]['all'])}", file=sys.stderr)
                path.write_text(json.dumps(curves, indent=1) + "\n")
    return curves


def own_validation(run: Path) -> dict[int, float]:
    """iteration -> the run's own validation face PSNR at CRF PLOT_CRF (val.csv)."""
    with open(run / "val.csv", newline="") as f:
        return {int(r["iteration"]): float(r[f"crf{PLOT_CRF}"]) for r in csv.DictReader(f) if r.get(f"crf{PLOT_CRF}")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--val", nargs="+", required=True, type=parse_val, metavar="NAME=CACHE:ACTORS")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="score only the snapshots of iterations that are multiples of N (default: all)")
    args = parser.parse_args()
    all_curves = {label(run): run_curves(run, args.val, args.every) for run in args.runs}
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Learning curves", "", f"Face PSNR gain over Bicubic (dB) at CRF {PLOT_CRF} of each run's snapshots "
             f"({FRAMES_PER_CLIP} frames per clip); `own` is the run's own validation (face PSNR, dB). Made by "
             "`python scripts/curves.py`.", ""]
    for run in args.runs:
        curves = all_curves[label(run)]
        own = own_validation(run) if (run / "val.csv").is_file() else {}
        columns = [(name, group) for name, _, _ in args.val for group in sorted(next(iter(curves[name].values())))]
        lines += [f"## {label(run)}", "", "| iteration | " + " | ".join(f"{n} {g}" for n, g in columns) + " | own |",
                  "|---|" + "---|" * (len(columns) + 1)]
        for iteration in sorted({int(i) for name, _, _ in args.val for i in curves[name]}):
            cells = [f"{curves[n].get(str(iteration), {}).get(g, {}).get(str(PLOT_CRF), float('nan')):+.2f}"
                     for n, g in columns]
            lines.append(f"| {iteration} | " + " | ".join(cells) + f" | {own.get(iteration, float('nan')):.2f} |")
        lines.append("")
    (args.out / "curves.md").write_text("\n".join(lines))
    plot(all_curves, args, args.out / "curves.png")
    print("\n".join(lines))
    return 0


def plot(all_curves: dict, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.val), figsize=(5 * len(args.val), 3.6), squeeze=False)
    for ax, (name, _, _) in zip(axes[0], args.val):
        for run in args.runs:
            curve = all_curves[label(run)][name]
            iterations = sorted(int(i) for i in curve)
            for group in sorted(curve[str(iterations[0])]):
                gains = [curve[str(i)][group][str(PLOT_CRF)] for i in iterations]
                ax.plot(iterations, gains, marker="o", lw=2.0 if group == "all" else 0.8,
                        label=f"{label(run)} {group}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(title=f"{name}, CRF {PLOT_CRF}", xlabel="iteration", ylabel="face PSNR gain over Bicubic (dB)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
