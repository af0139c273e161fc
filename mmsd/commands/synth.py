"""`mmsd synth --out DIR`: write the synthetic RAVDESS-layout talking-head corpus (`mmsd.data.synth.generate`)."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

from mmsd import emotions
from mmsd.data.synth.generate import PRESETS, SynthConfig, generate, parse_size
from mmsd.errors import MmsdError


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    cfg = SynthConfig(out=Path(args.out))
    if args.preset is not None:
        cfg = replace(cfg, **PRESETS[args.preset])
    if args.actors is not None:
        if not 1 <= args.actors <= 99:
            raise ValueError(f"--actors must be in 1..99, got {args.actors}")
        cfg = replace(cfg, actors=tuple(range(1, args.actors + 1)))
    if args.reps is not None:
        if not 1 <= args.reps <= 99:
            raise ValueError(f"--reps must be in 1..99, got {args.reps}")
        cfg = replace(cfg, reps=args.reps)
    if args.size is not None:
        w, h = parse_size(args.size)
        cfg = replace(cfg, width=w, height=h)
    if args.states is not None:
        cfg = replace(cfg, states=tuple(emotions.parse(n) for n in args.states))
    if args.statements is not None:
        if not set(args.statements) <= {1, 2}:
            raise ValueError(f"--statements must be 1 and/or 2, got {args.statements}")
        cfg = replace(cfg, statements=tuple(args.statements))
    if args.face_scale is not None:
        low, high = sorted(args.face_scale)
        if not 0.1 <= low <= high <= 2.0:
            raise ValueError(f"--face-scale must be in 0.1..2.0, got {args.face_scale}")
        cfg = replace(cfg, face_scale=(low, high))
    if args.style is not None:
        cfg = replace(cfg, style=args.style)
    if not 0 <= args.crf <= 51:
        raise ValueError(f"--crf must be in 0..51, got {args.crf}")
    return replace(cfg, seed=args.seed, crf=args.crf)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (RAVDESS layout)")
    parser.add_argument("--actors", type=int, default=None, help="number of actors, 1..N (default 24)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per statement and state (default 1)")
    parser.add_argument("--size", default=None, help="frame size W x H (default 640x360)")
    parser.add_argument("--states", nargs="+", default=None, metavar="STATE",
                        help="only these emotion states, e.g. neutral happy-strong (default all 15)")
    parser.add_argument("--statements", type=int, nargs="+", default=None, help="1 and/or 2 (default both)")
    parser.add_argument("--face-scale", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="draw each actor's face size multiplier in this range (default 1 1): smaller "
                             "faces in the frame, for training at other face scales")
    parser.add_argument("--style", default=None, metavar="STYLE",
                        help="renderer: cartoon (default; the original corpus) or photo (soft features, "
                             "skin micro-texture, photo-textured hair and wall, camera colour/blur/noise)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="parallel processes (default: all cores)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="tiny: 2 actors, 4 states, 1 statement, 320x180 (for tests)")
    parser.add_argument("--crf", type=float, default=12.0, help="x264 CRF of the corpus (default 12)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if cfg.out.exists() and not cfg.out.is_dir():
        raise MmsdError(f"--out {cfg.out} exists and is not a folder")
    start = time.perf_counter()
    written, skipped = generate(cfg, workers=args.workers, progress=not args.quiet)
    size = sum(p.stat().st_size for p in cfg.out.glob("Actor_*/*") if p.is_file())
    print(f"mmsd synth: {written} clips written, {skipped} already there, in {cfg.out} "
          f"({size / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s)")
    return 0
