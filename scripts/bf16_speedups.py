"""bf16 against fp32 on each CPU measured: one table of speed-ups from `mmsd bench` JSON files
and `scripts/bf16_decode.py` results (issue 12).

    python scripts/bf16_speedups.py                     # the defaults below -> results/speed/bf16-speedups.md

For every bench file, each network timed in both precisions gives its streaming speed (the
network alone, batch 1, 120x72 -> 480x288) and, where timed, its training step (batch 8, 32x32
LR); the ratio is fp32 time over bf16 time (above 1: bf16 is faster). The end-to-end decode rows
come from bf16_decode's JSON files (`mmsd decode` processes, interleaved, medians). The quality
rows compare two `mmsd eval` runs of the same model on the same frames, one per precision
(`EVALS`: their per-frame scores). Nothing is typed in by hand: the tables are read from those
files, which name their CPU or their command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# each: (a name for the CPU in the table, bench JSON files of it; a later file's row wins)
BENCHES = {
    "Xeon, AMX + AVX512-BF16": ["results/speed/bench-xeon-2threads.json", "results/speed/bench-xeon-train.json"],
    "Xeon, AMX + AVX512-BF16, another machine, other jobs paused": ["results/speed/bench-xeon-idle-mmsd.json"],
    "EPYC, AVX512-BF16, no AMX": ["results/speed/bench-epyc-2threads-mmsd.json"],
    "Xeon, AMX + AVX512-BF16, idle (2026-12-03, two decode workers)": ["results/speed/bench-xeon-train-idle.json"],
}
# (a name for the CPU in the table, a `scripts/bf16_decode.py` JSON of it)
DECODES = [("Xeon, AMX + AVX512-BF16", "results/speed/bf16-decode-xeon.json"),
           ("Xeon, AMX + AVX512-BF16, a niced one-worker job on the other core (2026-12-03)",
            "results/speed/bf16-decode-xeon-loaded.json"),
           ("EPYC, AVX512-BF16, no AMX", "results/speed/bf16-decode-epyc.json"),
           # after the decoder's MFCC stopped importing scipy (1 s per decode) and restored frames on two workers
           ("Xeon, AMX + AVX512-BF16, idle, two workers (2026-12-03)", "results/speed/bf16-decode-xeon-workers.json"),
           ("Xeon, AMX + AVX512-BF16, idle, two workers (2026-12-03)", "results/speed/bf16-decode-xeon-fast.json")]
# (the CPU the evals ran on, {precision: `mmsd eval` output folder})
EVALS = ("EPYC, AVX512-BF16, no AMX", {"fp32": "results/speed/bf16-eval-fp32", "bf16": "results/speed/bf16-eval-bf16"})


def _rows(paths: list[Path]) -> tuple[dict, dict[tuple[str, str], dict]]:
    """(meta of the last file, {(label, precision): row}) over the files in order."""
    rows, meta = {}, {}
    for path in paths:
        bench = json.loads(path.read_text())
        meta = bench["meta"]
        for row in bench["models"]:
            rows[row["label"], row["precision"]] = row
    return meta, rows


def _ratio(fp32: float | None, bf16: float | None) -> str:
    return f"{fp32 / bf16:.2f}x" if fp32 and bf16 else "-"


def speed_table(cpu: str, paths: list[Path]) -> list[str]:
    meta, rows = _rows(paths)
    load = meta.get("load_average_before")
    lines = [f"**{cpu}** (`{meta['cpu']}`, {meta['threads']} threads"
             + (f", 1-min load average {load[0]:.1f} before the last file's run" if load else "") + "; "
             + ", ".join(f"`{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}`" for p in paths) + ")", "",
             "| network | stream fps fp32 | stream fps bf16 | speed-up | train step fp32 (s) | train step bf16 (s) "
             "| speed-up |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label in dict.fromkeys(label for label, _ in rows):
        fp32, bf16 = rows.get((label, "fp32")), rows.get((label, "bf16"))
        if not (fp32 and bf16):
            continue
        step32, step16 = fp32.get("train_step_seconds"), bf16.get("train_step_seconds")
        steps = f"{step32:.3f} | {step16:.3f} | {_ratio(step32, step16)}" if step32 and step16 else "- | - | -"
        lines.append(f"| {label} | {fp32['stream_fps']:.2f} | {bf16['stream_fps']:.2f} | "
                     f"{_ratio(1 / fp32['stream_fps'], 1 / bf16['stream_fps'])} | {steps} |")
    return lines + [""]


def decode_table(decodes: list[tuple[str, Path]]) -> list[str]:
    lines = ["**End to end** (`mmsd decode`, one process per decode, fp32 and bf16 interleaved, medians; "
             "`python scripts/bf16_decode.py --out ...`)", "",
             "| CPU | model | clip | fp32 wall (s) | bf16 wall (s) | speed-up (wall) | speed-up (reported fps) | "
             "fp32 vs bf16 frames |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for cpu, path in decodes:
        if not path.is_file():
            continue
        run = json.loads(path.read_text())
        median = run["median"]
        lines.append(f"| {cpu} | `{run['model']}` | {run['clip']} | {median['fp32']['wall_s']:.2f} | "
                     f"{median['bf16']['wall_s']:.2f} | "
                     f"{run['speedup_wall']:.2f}x | {run['speedup_reported']:.2f}x | "
                     f"{run['agreement_psnr']:.1f} dB (worst frame {run['agreement_worst_frame_psnr']:.1f}) |")
    return lines + [""]


def quality_table(cpu: str, folders: dict[str, Path]) -> list[str]:
    if not all((folder / "per_frame.csv").is_file() for folder in folders.values()):
        return []
    from mmsd.evaluation.tables import group_means, read_rows

    fp32, bf16 = ({key: means["face_psnr"] for key, means in
                   group_means(read_rows(folders[p] / "per_frame.csv"), ("model", "crf")).items()}
                  for p in ("fp32", "bf16"))
    commands = [json.loads((folders[p] / "eval.json").read_text())["command"] for p in ("fp32", "bf16")]
    copies = " and ".join(f"`{folders[p].relative_to(ROOT)}`" for p in ("fp32", "bf16"))
    lines = [f"**Quality** ({cpu}; `{commands[0]}`, then `{commands[1]}`, their folders copied to {copies}): "
             "face PSNR (dB) of the same frames", "",
             "| model | CRF | fp32 | bf16 | bf16 - fp32 |", "|---|---:|---:|---:|---:|"]
    for model, crf in sorted(fp32.keys() & bf16.keys()):
        a, b = fp32[model, crf], bf16[model, crf]
        lines.append(f"| {model} | {crf} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "speed" / "bf16-speedups.md")
    args = parser.parse_args(argv)
    lines = ["bf16 autocast against fp32, per CPU (`python scripts/bf16_speedups.py`; speed-up = fp32 time / "
             "bf16 time). Streaming: the network alone, batch 1, 120x72 -> 480x288; training step: batch 8, "
             "32x32 LR, median of the bench's steps.", ""]
    for cpu, files in BENCHES.items():
        lines += speed_table(cpu, [ROOT / f for f in files])
    lines += decode_table([(cpu, ROOT / f) for cpu, f in DECODES])
    lines += quality_table(EVALS[0], {p: ROOT / f for p, f in EVALS[1].items()})
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
