"""`mmsd prepare SRC --out CACHE`: a RAVDESS-layout corpus -> a training cache (`mmsd.data.prepare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmsd.data.cache import IMAGE_PARAMS
from mmsd.data.prepare import CROPS, prepare_corpus
from mmsd.errors import MmsdError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, help="corpus root with Actor_01/ ... Actor_24/ (RAVDESS layout)")
    parser.add_argument("--out", type=Path, required=True, help="cache directory (created; re-runs resume)")
    parser.add_argument(
        "--crf", type=int, nargs="+", default=[15, 32, 40], help="x264 CRFs of the LR frames (default 15 32 40)"
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--hr-step", type=int, default=2, help="store HR for every k-th frame (default 2)")
    parser.add_argument("--min-frames", type=int, default=5, help="skip clips shorter than this (default 5 = 2N+1)")
    parser.add_argument("--preset", default="medium", help="x264 preset (default medium)")
    parser.add_argument("--image-format", choices=sorted(IMAGE_PARAMS), default="webp", help="lossless frame format")
    parser.add_argument("--crop", choices=sorted(CROPS), default="head",
                        help="head: the paper's face-centred 5:3 box (default); whole: the whole frame, faces at "
                             "the source's scale")
    parser.add_argument("--limit", type=int, default=None, help="prepare only the first N clips (by key)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    report = prepare_corpus(
        args.src,
        args.out,
        crfs=tuple(args.crf),
        workers=args.workers,
        hr_step=args.hr_step,
        min_frames=args.min_frames,
        preset=args.preset,
        image_format=args.image_format,
        crop=args.crop,
        limit=args.limit,
        progress=not args.no_progress,
    )
    print(report.summary())
    if not report.listed and not report.already_done:
        raise MmsdError(f"no RAVDESS audio+video clips (Actor_XX/01-VV-EE-II-SS-RR-AA.mp4) under {args.src}")
    return 0
