"""`mmsd decode` end to end for several models and worker counts, interleaved, in the same run (issue 12).

    python scripts/realtime_decode.py --settings mmsd:1 mmsd:2 mmsd-fast:1 mmsd-fast:2 --out results/speed/realtime-xeon

Each setting is MODEL:WORKERS, decoded as a user runs it (`mmsd decode LOW -o OUT --model MODEL --workers
WORKERS`, its own process, default precision and threads) on the clip of `scripts/bf16_decode.py` (a
synthesized test actor speaking about 9 s, 480x288 sent at 120x72, x264 CRF 40, AAC and emotion side
information). The settings alternate, `--repeats` times each, so a change in the machine's load falls on all
of them. Two speeds per decode: the process's wall time (start-up and model loading included) and the
frames per second the decoder reports (reading, restoring, encoding, copying the sound). The restored videos
of one model with different worker counts are compared frame by frame (PSNR over all frames, worst frame):
workers change the speed, not the frames (up to x264's own run-to-run differences).
Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bf16_decode import TEXT, agreement, make_clip, timed_decode, write_outputs  # noqa: E402  (a sibling script)

from mmsd.evaluation.bench import cpu_name, describe_clip  # noqa: E402
from mmsd.models.precision import cpu_has_fast_bf16  # noqa: E402

_REPORTED = re.compile(r"\(torch, (\w+)\).*?([0-9.]+) fps, latency (\d+) frames")


def setting(text: str) -> tuple[str, int]:
    model, _, workers = text.rpartition(":")
    if not model or not workers.isdigit() or int(workers) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL:WORKERS, e.g. mmsd-fast:2")
    return model, int(workers)


def decode(low: Path, out: Path, *, model: str, workers: int) -> dict:
    """One `mmsd decode` in a fresh process: its wall time, the fps and latency it reports, its precision."""
    wall, printed = timed_decode(low, out, ["--model", model, "--workers", str(workers)])
    precision, fps, latency = _REPORTED.search(printed).groups()
    return {"wall_s": wall, "reported_fps": float(fps), "latency_frames": int(latency), "precision": precision}


def restored(folder: Path, model: str, workers: int) -> Path:
    """Where the decode of `model` (a name or a path) with `workers` writes its video."""
    return folder / f"{Path(model).stem}-{workers}.mp4"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", type=setting, required=True, metavar="MODEL:WORKERS")
    parser.add_argument("--repeats", type=int, default=3, help="decodes per setting, interleaved (default 3)")
    parser.add_argument("--text", default=TEXT, help="what the synthesized actor says (sets the clip's length)")
    parser.add_argument("--out", type=Path, required=True, help="where to write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="mmsd-realtime-"))
    low = make_clip(folder, args.text)
    seconds, facts = describe_clip(low)
    names = [f"{model}:{workers}" for model, workers in args.settings]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for repeat, (name, (model, workers)) in itertools.product(range(args.repeats), zip(names, args.settings)):
        run = decode(low, restored(folder, model, workers), model=model, workers=workers)
        runs[name].append(run)
        print(f"  run {repeat + 1} {name}: {run['wall_s']:.2f} s wall, {run['reported_fps']:.1f} fps reported",
              flush=True)
    median = {name: {k: statistics.median(r[k] for r in done) for k in ("wall_s", "reported_fps")}
              for name, done in runs.items()}
    agree = {}
    for model in dict.fromkeys(model for model, _ in args.settings):
        counts = [workers for m, workers in args.settings if m == model]
        for other in counts[1:]:
            whole, worst = agreement(restored(folder, model, counts[0]), restored(folder, model, other))
            agree[f"{model}:{counts[0]} vs {model}:{other}"] = {"psnr": whole, "worst_frame_psnr": worst}
    result = {"clip": facts, "clip_seconds": seconds, "cpu": cpu_name(), "fast_bf16": cpu_has_fast_bf16(),
              "repeats": args.repeats, "runs": runs, "median": median, "agreement": agree}
    lines = [
        f"`mmsd decode --model MODEL --workers WORKERS` on {facts} (2 cores of {result['cpu']}, fast bf16: "
        f"{'yes' if result['fast_bf16'] else 'no'}, precision {runs[names[0]][0]['precision']}; "
        f"`python scripts/realtime_decode.py --settings {' '.join(names)} --out {args.out}`), medians of "
        f"{args.repeats} interleaved runs each:",
        "",
        "| model:workers | fps reported by the decoder | wall time per decode (s) | latency (frames) |",
        "|---|---|---|---|",
        *(f"| {name} | {median[name]['reported_fps']:.1f} | {median[name]['wall_s']:.2f} | "
          f"{runs[name][0]['latency_frames']} |" for name in names),
        "",
        *(f"- {pair}: the restored videos agree at {a['psnr']:.1f} dB PSNR (worst frame {a['worst_frame_psnr']:.1f} dB)"
          for pair, a in agree.items()),
        "",
    ]
    write_outputs(args.out, result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
