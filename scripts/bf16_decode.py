"""`mmsd decode --precision bf16` against `--precision fp32`, end to end, in the same run (issue 12).

    python scripts/bf16_decode.py [--model mmsd] [--repeats 3] [--threads 2] --out results/speed/bf16-decode-xeon

Each decode is the command a user runs (`mmsd decode LOW -o OUT --precision P`), in its own
process, on a clip like the one `mmsd bench` times end to end (a synthesized test actor, 480x288
sent at 120x72, x264 CRF 40, AAC and emotion side information) but speaking a longer text, about
10 s, so that oneDNN's warm-up on the first frames weighs as it does in a real call rather than in
a 2 s clip (`--text` changes it). The precisions alternate, `--repeats` times
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

from mmsd import emotions
from mmsd.data.synth.generate import SynthConfig, write_clip
from mmsd.evaluation import metrics
from mmsd.evaluation.bench import cpu_name, describe_clip
from mmsd.media import codec, sideinfo
from mmsd.models.precision import cpu_has_fast_bf16
from mmsd.sender.encode import encode_file

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("fp32", "bf16")
_REPORTED_FPS = re.compile(r"([0-9.]+) fps, latency")
TEXT = ("We kept the old lamp by the window all winter, and every evening my brother read the weather "
        "aloud before supper while the kettle sang on the stove and the dog slept by the door.")


def make_clip(folder: Path, text: str, *, crf: int = 40) -> Path:
    """Test actor 24 (never trained on) saying `text`, happy-strong, sent as `mmsd encode` sends it at `crf`."""
    state = emotions.parse("happy-strong")
    source = write_clip(SynthConfig(out=folder, actors=(24,), width=480, height=288), 24, state, 1, 1,
                        text=text, path=folder / "source.mp4")
    low = folder / "low.mp4"
    encode_file(source, low, side=sideinfo.SideInfo(scale=4, segments=((0, state.id),)), crf=crf, progress=False)
    return low


def timed_decode(low: Path, out: Path, options: list[str]) -> tuple[float, str]:
    """`mmsd decode LOW -o OUT -q OPTIONS...` in a fresh process: (its wall time in s, what it printed).
    A failed decode stops the script with the command and the decoder's last line of error."""
    command = [sys.executable, "-m", "mmsd.cli", "decode", str(low), "-o", str(out), "-q", *options]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return wall, done.stdout


def decode(low: Path, out: Path, *, model: str, precision: str, threads: int) -> dict[str, float]:
    """One `mmsd decode` in a fresh process: its wall time and the fps it reports."""
    wall, printed = timed_decode(low, out, ["--model", model, "--precision", precision, "--threads", str(threads)])
    return {"wall_s": wall, "reported_fps": float(_REPORTED_FPS.search(printed).group(1))}


def agreement(a: Path, b: Path) -> tuple[float, float]:
    """(PSNR over all frames, PSNR of the worst frame) between two restored videos."""
    pairs = list(zip(codec.read_frames(a), codec.read_frames(b), strict=True))
    whole = metrics.psnr(np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs]))
    return whole, min(metrics.psnr(x, y) for x, y in pairs)


def write_outputs(out: Path, result: dict, lines: list[str]) -> None:
    """OUT.json (`result`) and OUT.md (`lines`, also printed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mmsd")
    parser.add_argument("--repeats", type=int, default=3, help="decodes per precision, interleaved (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text", default=TEXT, help="what the synthesized actor says (sets the clip's length)")
    parser.add_argument("--out", type=Path, required=True,
                        help="where to write OUT.json and OUT.md (e.g. results/speed/bf16-decode-xeon: one per CPU)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="mmsd-bf16-decode-"))
    low = make_clip(folder, args.text)
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
              "cpu": cpu_name(), "fast_bf16": cpu_has_fast_bf16(), "repeats": args.repeats, "runs": runs,
              "median": median,
              "speedup_wall": median["fp32"]["wall_s"] / median["bf16"]["wall_s"],
              "speedup_reported": median["bf16"]["reported_fps"] / median["fp32"]["reported_fps"],
              "agreement_psnr": whole, "agreement_worst_frame_psnr": worst}
    lines = [
        f"`mmsd decode --model {args.model}` on {facts} ({args.threads} threads of {result['cpu']}, fast "
        f"bf16: {'yes' if result['fast_bf16'] else 'no'}; `python scripts/bf16_decode.py --out {args.out}`), medians of "
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
    write_outputs(args.out, result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
