"""`mmsd decode --precision bf16` against `--precision fp32`, end to end, in the same run (issue 12).

    python scripts/bf16_decode.py [--model mmsd] [--repeats 3] [--threads 2] [--out results/bf16-decode]

Each decode is the command a user runs (`mmsd decode LOW -o OUT --precision P`), in its own
process, on the clip `mmsd bench` times end to end (a synthesized test actor, 120x72, x264 CRF
40, AAC and emotion side information, 68 frames). The precisions alternate, `--repeats` times
each, so a change in the machine's load falls on both. Two speeds per run: the process's wall
time (start-up and model loading included: what a user waits) and the frames per second the
decoder reports (reading, restoring, encoding and copying the sound). The medians are
compared, and the restored videos of the two precisions (the mp4s the user gets, x264 included)
are compared frame by frame (PSNR over all frames, and the worst frame).
Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mmsd import codec, metrics
from mmsd.bench import describe_clip, make_clip
from mmsd.precision import cpu_has_fast_bf16

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("fp32", "bf16")
_REPORTED_FPS = re.compile(r"([0-9.]+) fps, latency")


def decode(low: Path, out: Path, *, model: str, precision: str, threads: int) -> dict[str, float]:
    """One `mmsd decode` in a fresh process: its wall time and the fps it reports."""
    command = [sys.executable, "-m", "mmsd.cli", "decode", str(low), "-o", str(out), "--model", model,
               "--precision", precision, "--threads", str(threads), "-q"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "reported_fps": float(_REPORTED_FPS.search(done.stdout).group(1))}


def agreement(a: Path, b: Path) -> tuple[float, float]:
    """(PSNR over all frames, PSNR of the worst frame) between two restored videos."""
    pairs = list(zip(codec.read_frames(a), codec.read_frames(b), strict=True))
    whole = metrics.psnr(np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs]))
    return whole, min(metrics.psnr(x, y) for x, y in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mmsd")
    parser.add_argument("--repeats", type=int, default=3, help="decodes per precision, interleaved (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bf16-decode")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="mmsd-bf16-decode-"))
    low = make_clip(folder)
    seconds, facts = describe_clip(low)
    runs: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    for repeat in range(args.repeats):
        for precision in PRECISIONS:
            run = decode(low, folder / f"{precision}.mp4", model=args.model, precision=precision,
                         threads=args.threads)
            runs[precision].append(run)
            print(f"  run {repeat + 1} {precision}: {run['wall_s']:.2f} s wall, {run['reported_fps']:.1f} fps "
                  "reported", flush=True)
    median = {p: {k: statistics.median(r[k] for r in done) for k in ("wall_s", "reported_fps")}
              for p, done in runs.items()}
    whole, worst = agreement(folder / "fp32.mp4", folder / "bf16.mp4")
    result = {"model": args.model, "clip": facts, "clip_seconds": seconds, "threads": args.threads,
              "fast_bf16": cpu_has_fast_bf16(), "repeats": args.repeats, "runs": runs, "median": median,
              "speedup_wall": median["fp32"]["wall_s"] / median["bf16"]["wall_s"],
              "speedup_reported": median["bf16"]["reported_fps"] / median["fp32"]["reported_fps"],
              "agreement_psnr": whole, "agreement_worst_frame_psnr": worst}
    lines = [
        f"`mmsd decode --model {args.model}` on {facts} ({args.threads} threads, CPU with fast bf16: "
        f"{'yes' if result['fast_bf16'] else 'no'}; `python scripts/bf16_decode.py`), medians of "
        f"{args.repeats} interleaved runs each:",
        "",
        "| precision | wall time per decode (s) | fps reported by the decoder |",
        "|---|---|---|",
        *(f"| {p} | {median[p]['wall_s']:.2f} | {median[p]['reported_fps']:.1f} |" for p in PRECISIONS),
        "",
        f"bf16 over fp32: **{result['speedup_wall']:.2f}x** by wall time, **{result['speedup_reported']:.2f}x** by "
        f"reported fps. The two restored videos agree at **{whole:.1f} dB** PSNR (worst frame {worst:.1f} dB).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
