"""`mmsd decode`: the receiver. Restore every frame of a low bit-rate video with a soft decoder.

A thin layer over `mmsd.restore.restorer.Restorer.restore_file`: the emotion comes from
``--emotion``, else the file's side information, else neutral (with a warning); the
audio stream is copied unchanged; the output has the input's frame count and every frame's
timestamp (constant or variable frame rate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from mmsd import emotions
from mmsd.errors import MmsdError
from mmsd.models import precision
from mmsd.restore.files import OUTPUT_CRF, OUTPUT_PRESET
from mmsd.restore.loading import DEFAULT_MODEL, LOW_LATENCY_MODEL
from mmsd.restore.restorer import DEFAULT_TILE, ENGINES, MAX_OUTPUT_HEIGHT, MAX_OUTPUT_PIXELS, MAX_OUTPUT_WIDTH, Restorer
from mmsd.restore.threads import set_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the low bit-rate video (e.g. written by `mmsd encode`)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the restored mp4 to write")
    parser.add_argument("--model",
                        help=f"shipped model name (e.g. mmsd, edvr, dbpn, bicubic), a .safetensors path or an"
                             f" .onnx file from `mmsd export` (default {DEFAULT_MODEL}, or {LOW_LATENCY_MODEL} with --low-latency)")
    parser.add_argument("--low-latency", action="store_true",
                        help="no look-ahead: a causal model (window t-2N..t) and one frame per forward pass, so"
                             " frame t is restored as soon as it is decoded (the centred window waits N frames)")
    parser.add_argument("--engine", choices=ENGINES,
                        help="torch, or onnx: ONNX Runtime on the CPU (a weights file is exported on first use"
                             " and cached under ~/.cache/mmsd/onnx). Default: onnx for an .onnx model, else torch")
    parser.add_argument("--emotion", metavar="STATE",
                        help="emotion state for every frame, overriding the side information:"
                             f" {', '.join(emotions.NAMES)}, or an id 0..14")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--batch", type=int, help="frames per forward pass (default: 1 on the CPU, 4 on a GPU)")
    precision.add_argument(parser, inference=True)
    parser.add_argument("--threads", type=int,
                        help=f"CPU threads for the network (default: the CPUs this process may use, {torch.get_num_threads()} here;"
                             " 1 is faster while other jobs keep the cores busy)")
    parser.add_argument("--workers", type=int,
                        help="frames restored at once, each on its share of the threads (default: one per thread"
                             " for a centred model on the CPU, which is up to 1.7x faster on 2 cores and adds"
                             " workers - 1 frames of latency; 1 for causal models, GPUs and onnx)")
    parser.add_argument("--tile", type=int,
                        help=f"restore each frame in overlapping tiles of N x N input pixels, so memory follows"
                             f" the tile, not the frame (default {DEFAULT_TILE}, more for a network that needs a"
                             f" wider context; 0: whole frames). A frame that fits one tile is restored whole")
    parser.add_argument("--force", action="store_true",
                        help=f"restore even when the output would exceed {MAX_OUTPUT_WIDTH}x{MAX_OUTPUT_HEIGHT}"
                             " (such an input is most likely not the low-resolution stream this tool is for)")
    parser.add_argument("--crf", type=float, default=OUTPUT_CRF,
                        help=f"x264 CRF of the restored video (default {OUTPUT_CRF:g})")
    parser.add_argument("--preset", default=OUTPUT_PRESET,
                        help=f"x264 preset of the restored video (default {OUTPUT_PRESET})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    emotion = emotions.parse(args.emotion) if args.emotion is not None else None
    set_threads(args.threads)
    if args.engine == "onnx" and not str(args.model).endswith(".onnx") and not args.quiet:
        print("mmsd decode: the onnx engine exports the model on first use (cached for the next runs)",
              file=sys.stderr)
    if args.low_latency and args.batch not in (None, 1):
        raise MmsdError(f"--low-latency restores one frame at a time; got --batch {args.batch}")
    if args.low_latency and args.workers not in (None, 1):
        raise MmsdError(f"--low-latency restores one frame at a time; got --workers {args.workers}")
    model = args.model or (LOW_LATENCY_MODEL if args.low_latency else DEFAULT_MODEL)
    restorer = Restorer(model, device=args.device, batch_size=1 if args.low_latency else args.batch,
                        engine=args.engine, tile=args.tile, max_output_pixels=None if args.force else MAX_OUTPUT_PIXELS,
                        precision=args.precision,
                        workers=1 if args.low_latency else args.workers)
    if args.low_latency and not restorer.causal:
        raise MmsdError(f"--low-latency needs a causal model (trained with causal=true); {model} looks ahead "
                        f"{restorer.radius} frames")
    report = restorer.restore_file(
        args.input, args.output, emotion=emotion, progress=not args.quiet, crf=args.crf, preset=args.preset,
        on_warning=lambda message: print(f"mmsd decode: warning: {message}", file=sys.stderr),
    )
    print(f"wrote {report.output}: {report.frames} frames {report.width}x{report.height} (W x H) at "
          f"{report.timing.describe()}, model "
          f"{report.model} ({report.engine}, {report.precision}), emotion {report.emotion_source}, "
          f"audio {report.audio}; "
          f"{report.fps:.1f} fps, latency {restorer.latency_frames} frames, peak memory {report.peak_rss_mb:.0f} MB")
    return 0
