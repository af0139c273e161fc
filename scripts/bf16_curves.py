"""Does bf16 training learn as fp32 does? Validation curves of MMSD-Net small trained from scratch in
both precisions, against the run-to-run spread of fp32 (issue 12, part 2).

    python scripts/bf16_curves.py run      # train the runs (resumable; one after another, or `--only`)
    python scripts/bf16_curves.py summary  # runs/curves/*/val.csv -> results/speed/bf16-curves.{md,png}

Each run is `mmsd train` of the `small` config from random weights on the synthetic corpus
(`data/cache`), with the shipped stage-1 recipe shortened to `ITERATIONS` (lr 5e-4 -> 1e-6 on
a cosine, batch 8, 32x32 face-centred crops), validated every `VAL_EVERY` iterations on the
held-out clips of the training actors at the run's own precision, one thread. Runs differ
only in `--precision` and `--seed`: the seeds give the spread that a precision's effect is
read against.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from mmsd.evaluation.bench import cpu_name
from mmsd.models.weights import read_metadata

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "curves"
ITERATIONS, VAL_EVERY = 1200, 200
RECIPE = ["--config", "small", "--model", "mmsd", "--iterations", str(ITERATIONS), "--batch", "8", "--patch", "32",
          "--lr", "5e-4", "--lr-schedule", "cosine", "--lr-min", "1e-6", "--crop-focus", "face", "--workers", "1",
          "--val-every", str(VAL_EVERY), "--checkpoint-every", "100"]
NAMES = ("fp32-seed0", "bf16-seed0", "fp32-seed1", "bf16-seed1")  # in the order `run` trains them
# (run, run, what differs): the precision's effect, then the seed's (the spread it is read against)
COMPARISONS = [("bf16-seed0", "fp32-seed0", "precision"), ("bf16-seed1", "fp32-seed1", "precision"),
               ("fp32-seed1", "fp32-seed0", "seed"), ("bf16-seed1", "bf16-seed0", "seed")]


def train(name: str, data: Path) -> int:
    """Start or resume run `name` ('<precision>-seed<k>')."""
    precision, seed = name.split("-seed")
    out = RUNS / name
    command = [sys.executable, "-m", "mmsd.cli", "train"]
    if (out / "checkpoint.safetensors").exists():
        command += ["--resume", str(out)]
    else:
        command += ["--data", str(data), "--out", str(out), *RECIPE, "--precision", precision, "--seed", seed]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    print("$", " ".join(command), flush=True)
    return subprocess.call(command, cwd=ROOT, env=env)


def read_curves() -> dict[str, list[dict[str, float]]]:
    curves = {}
    for name in NAMES:
        path = RUNS / name / "val.csv"
        if path.is_file():
            with open(path) as f:
                curves[name] = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return curves


def wall_minutes(name: str) -> float | None:
    """Training time of a finished run (its model file's metadata), validations included."""
    path = RUNS / name / "model.safetensors"
    if not path.is_file():
        return None
    info = json.loads(read_metadata(path).get("info", "{}"))
    return info["wall_seconds"] / 60 if "wall_seconds" in info else None


def summary(out: Path) -> None:
    curves = read_curves()
    if not curves:
        raise SystemExit(f"no runs with a val.csv under {RUNS}")
    iterations = sorted({int(r["iteration"]) for rows in curves.values() for r in rows})
    at = {name: {int(r["iteration"]): r for r in rows} for name, rows in curves.items()}
    crfs = [k for k in next(iter(curves.values()))[0] if k.startswith("crf")]
    lines = ["Validation face PSNR (dB; held-out clips of the training actors, mean over CRF "
             + ", ".join(c.removeprefix("crf") for c in crfs) + ") of MMSD-Net small trained from scratch, "
             f"{ITERATIONS} iterations (`python scripts/bf16_curves.py run`, then `summary`; recipe in its "
             f"docstring) on `{cpu_name()}`. Each run validates at its own precision.", "",
             "| iteration | " + " | ".join(curves) + " |", "|---:|" + "---:|" * len(curves)]
    for it in iterations:
        cells = (f"{at[n][it]['mean']:.2f}" if it in at[n] else "-" for n in curves)
        lines.append(f"| {it} | " + " | ".join(cells) + " |")
    last = {n: rows[-1] for n, rows in curves.items()}
    lines += ["", "At the last validation, per CRF (" + ", ".join(crfs) + "):", ""]
    lines += [f"- {n} (iteration {int(r['iteration'])}): " + " / ".join(f"{r[c]:.2f}" for c in crfs)
              + f", mean {r['mean']:.2f}" for n, r in last.items()]
    walls = {n: wall_minutes(n) for n in curves}
    if any(w is not None for w in walls.values()):
        lines += ["", "Training time (minutes, validations included; two runs at a time, one thread each): "
                  + ", ".join(f"{n} {w:.1f}" for n, w in walls.items() if w is not None)]
    lines += [""]
    for a, b, kind in COMPARISONS:
        common = sorted(set(at.get(a, {})) & set(at.get(b, {})))
        if common:
            diffs = [at[a][it]["mean"] - at[b][it]["mean"] for it in common]
            lines.append(f"- {a} - {b}, {kind}: " + ", ".join(f"{d:+.2f}" for d in diffs)
                         + f" dB at iterations {', '.join(map(str, common))}")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    _plot(curves, out.with_suffix(".png"))
    print("\n".join(lines))


def _plot(curves: dict[str, list[dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in curves.items():
        style = "-" if name.startswith("fp32") else "--"
        ax.plot([r["iteration"] for r in rows], [r["mean"] for r in rows], style, marker="o", label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation face PSNR, mean over CRFs (dB)")
    ax.set_title("MMSD-Net small from scratch: fp32 vs bf16 training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "summary"))
    parser.add_argument("--only", nargs="+", choices=NAMES, help="runs to train (default: all, in order)")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "cache")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "speed" / "bf16-curves")
    args = parser.parse_args(argv)
    if args.action == "summary":
        summary(args.out)
        return 0
    for name in args.only or NAMES:
        if code := train(name, args.data):
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
