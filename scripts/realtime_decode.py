"""`mmsd decode` end to end for several models and worker counts, interleaved, in the same run (issues 12, 37).

    python scripts/realtime_decode.py --settings mmsd:1 mmsd:2 mmsd-fast:1 mmsd-fast:2 --out results/speed/realtime-xeon
    python scripts/realtime_decode.py --settings mmsd-fast:2 mmsd-fast:2:fp32 --text-repeats 3 --crf 32 \
        --busy --out results/speed/realtime-epyc-busy
    python scripts/realtime_decode.py --settings mmsd-fast:default --input wolfgang480.mp4 --crf 32 --out ...

Each setting is MODEL:WORKERS[:PRECISION], decoded as a user runs it (`mmsd decode LOW -o OUT --model MODEL
--workers WORKERS [--precision PRECISION]`, its own process, default threads; WORKERS `default`: no
--workers) on the clip of `scripts/bf16_decode.py` (a synthesized test actor speaking about 9 s per
`--text-repeats`, 480x288 sent at 120x72 with x264 at `--crf`, AAC and emotion side information), or on
`--input`, a video of one's own sent by `mmsd encode --crf`. The settings alternate, `--repeats` times
each, so a change in the machine's load falls on all of them. Three speeds per decode: frames over the
process's wall time (start-up and model loading included: what a user timing the command measures), the
wall time, and the frames per second the decoder reports (reading, restoring, encoding, copying the sound).
`--busy` keeps one other single-threaded job (a matmul loop) running on the machine through every decode.
The restored videos of one model with different worker counts or precisions are compared frame by frame
(PSNR over all frames, worst frame). Writes OUT.json and OUT.md, which name the CPU, its kind and flags.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bf16_decode import TEXT, agreement, make_clip, timed_decode, write_outputs  # noqa: E402  (a sibling script)

from mmsd.evaluation.bench import cpu_facts, describe_clip, describe_cpu  # noqa: E402
from mmsd.media.codec import probe  # noqa: E402
from mmsd.models.precision import INFERENCE_PRECISIONS as PRECISIONS  # noqa: E402

# One other job on the machine: a single-threaded matmul loop, as a second program would load one core.
BUSY_JOB = "import torch; torch.set_num_threads(1); a = torch.randn(384, 384)\nwhile True: a @ a"

_REPORTED = re.compile(r"\(torch, (\w+)\).*?([0-9.]+) fps, latency (\d+) frames")


def setting(text: str) -> tuple[str, int | str, str]:
    """MODEL:WORKERS[:PRECISION] -> (model, workers, precision); precision "auto" when left out; WORKERS
    "default" leaves --workers out, as a user who types no option does."""
    model, workers, precision = text, "", "auto"
    if text.rpartition(":")[2] in PRECISIONS:
        model, _, precision = text.rpartition(":")
    model, _, workers = model.rpartition(":")
    if workers == "default" and model:
        return model, workers, precision
    if not model or not workers.isdigit() or int(workers) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL:WORKERS[:PRECISION], e.g. mmsd-fast:2:fp32")
    return model, int(workers), precision


def decode(low: Path, out: Path, *, model: str, workers: int | str, precision: str) -> dict:
    """One `mmsd decode` in a fresh process: its wall time, the fps and latency it reports, its precision."""
    chosen = [] if workers == "default" else ["--workers", str(workers)]
    wall, printed = timed_decode(low, out, ["--model", model, *chosen, "--precision", precision])
    precision, fps, latency = _REPORTED.search(printed).groups()
    return {"wall_s": wall, "reported_fps": float(fps), "latency_frames": int(latency), "precision": precision}


def restored(folder: Path, model: str, workers: int | str, precision: str) -> Path:
    """Where the decode of `model` (a name or a path) with `workers` at `precision` writes its video."""
    return folder / f"{Path(model).stem}-{workers}-{precision}.mp4"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", type=setting, required=True, metavar="MODEL:WORKERS")
    parser.add_argument("--repeats", type=int, default=3, help="decodes per setting, interleaved (default 3)")
    parser.add_argument("--text", default=TEXT, help="what the synthesized actor says (sets the clip's length)")
    parser.add_argument("--text-repeats", type=int, default=1,
                        help="say the text this many times (default 1, about 9 s; 3 gives 772 frames)")
    parser.add_argument("--crf", type=int, default=40, help="x264 CRF the clip is sent at (default 40)")
    parser.add_argument("--busy", action="store_true", help="keep one single-threaded job running beside each decode")
    parser.add_argument("--input", type=Path, metavar="VIDEO",
                        help="an original of one's own (e.g. a real talking head at 480x288) sent as `mmsd encode "
                             "--crf` sends it, instead of the synthesized actor")
    parser.add_argument("--out", type=Path, required=True, help="where to write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="mmsd-realtime-"))
    if args.input:
        low = folder / "low.mp4"
        subprocess.run([sys.executable, "-m", "mmsd.cli", "encode", str(args.input), "-o", str(low), "--crf",
                        str(args.crf), "-q"], check=True)
    else:
        low = make_clip(folder, " ".join([args.text] * args.text_repeats), crf=args.crf)
    seconds, facts = describe_clip(low)
    frames = probe(low).num_frames
    names = [f"{model}:{workers}:{precision}" for model, workers, precision in args.settings]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    busy = subprocess.Popen([sys.executable, "-c", BUSY_JOB]) if args.busy else None
    try:
        for repeat, (name, (model, workers, precision)) in itertools.product(range(args.repeats),
                                                                            zip(names, args.settings)):
            run = decode(low, restored(folder, model, workers, precision), model=model, workers=workers,
                         precision=precision)
            run["fps_end_to_end"] = frames / run["wall_s"]
            runs[name].append(run)
            print(f"  run {repeat + 1} {name}: {run['fps_end_to_end']:.1f} fps end to end ({run['wall_s']:.2f} s "
                  f"wall), {run['reported_fps']:.1f} fps reported", flush=True)
    finally:
        if busy is not None:
            busy.kill()
    keys = ("fps_end_to_end", "wall_s", "reported_fps")
    median = {name: {k: statistics.median(r[k] for r in done) for k in keys} for name, done in runs.items()}
    agree = {}
    first = restored(folder, *args.settings[0])
    for name, other in zip(names[1:], args.settings[1:]):
        if other[0] == args.settings[0][0]:
            whole, worst = agreement(first, restored(folder, *other))
            agree[f"{names[0]} vs {name}"] = {"psnr": whole, "worst_frame_psnr": worst}
    result = {"clip": facts, "clip_seconds": seconds, "frames": frames, "crf": args.crf, **cpu_facts(),
              "busy": args.busy, "repeats": args.repeats, "runs": runs, "median": median, "agreement": agree}
    clip_options = ["--input", str(args.input)] if args.input else ["--text-repeats", str(args.text_repeats)]
    command = " ".join(["python scripts/realtime_decode.py --settings", *names, "--repeats", str(args.repeats),
                        *clip_options, "--crf", str(args.crf), *(["--busy"] if args.busy else []),
                        "--out", str(args.out)])
    lines = [
        f"`mmsd decode --model MODEL --workers WORKERS --precision PRECISION` on {facts}, sent at CRF {args.crf} "
        f"({describe_cpu(result)}; "
        f"{'one other single-threaded job running' if args.busy else 'nothing else running'}; `{command}`), "
        f"medians of {args.repeats} interleaved runs each:",
        "",
        "| model:workers:precision | precision run | fps end to end (frames / wall time) | wall time (s) "
        "| fps reported by the decoder | latency (frames) |",
        "|---|---|---|---|---|---|",
        *(f"| {name} | {runs[name][0]['precision']} | {median[name]['fps_end_to_end']:.1f} | "
          f"{median[name]['wall_s']:.2f} | {median[name]['reported_fps']:.1f} | {runs[name][0]['latency_frames']} |"
          for name in names),
        "",
        *(f"- {pair}: the restored videos agree at {a['psnr']:.1f} dB PSNR (worst frame {a['worst_frame_psnr']:.1f} dB)"
          for pair, a in agree.items()),
        "",
    ]
    write_outputs(args.out, result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
