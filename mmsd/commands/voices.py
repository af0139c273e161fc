"""`mmsd voices CACHE`: voice variants of a cache's audio for `train --voice-augment` (`mmsd.data.voices`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmsd.data.voices import DEFAULT_VARIANTS, add_voices


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cache", type=Path, help="cache written by `mmsd prepare` (its source videos still there)")
    parser.add_argument("--variants", type=int, default=DEFAULT_VARIANTS,
                        help=f"voice variants per clip (default {DEFAULT_VARIANTS})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    given, had, silent = add_voices(args.cache, variants=args.variants, seed=args.seed, workers=args.workers,
                                    progress=not args.no_progress)
    print(f"mmsd voices: {given} clips given {args.variants} voice variants, "
          f"{had} already had them, {silent} without audio, in {args.cache}")
    return 0
