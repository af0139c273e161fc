"""`mmsd personalize VIDEO ... --from MODEL -o OUT.safetensors`: a personal model (`mmsd.training.personalize`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmsd.models.precision import add_argument as add_precision_argument
from mmsd.training.personalize import DEFAULT_ITERATIONS, PERSONAL_L2SP, PERSONAL_LR, PERSONAL_PATCH, personalize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", type=Path, nargs="+", metavar="VIDEO",
                        help="earlier high-quality footage of the speaker (any size, frame rate, container)")
    parser.add_argument("--from", dest="base", required=True, metavar="NAME|PATH",
                        help="the model to start from: a shipped name (e.g. mmsd, mmsd-real) or a weights file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.safetensors",
                        help="the personal model (for `mmsd decode --model OUT`); the starting model's weights "
                             "when the footage did not help")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                        help=f"fine-tuning iterations of batch 8 (default {DEFAULT_ITERATIONS})")
    parser.add_argument("--lr", type=float, default=PERSONAL_LR,
                        help=f"learning rate at the start, decaying to 1e-6 (default {PERSONAL_LR})")
    parser.add_argument("--patch", type=int, default=PERSONAL_PATCH,
                        help=f"side of the low-resolution training crops, centred on the face (default "
                             f"{PERSONAL_PATCH}; the cost of an iteration grows with its square)")
    parser.add_argument("--tune-only", nargs="+", default=[], metavar="PART",
                        help="train only these top-level parts of the network (e.g. reconstruction), the rest "
                             "frozen (default: all of it)")
    parser.add_argument("--l2sp", type=float, default=PERSONAL_L2SP, metavar="ALPHA",
                        help="pull the weights towards the starting model's: + ALPHA x their squared distance "
                             f"(L2-SP) in the loss (default {PERSONAL_L2SP:g}; 0: off)")
    parser.add_argument("--crf", type=int, nargs="+", default=[15, 32, 40],
                        help="x264 CRFs the footage is degraded and scored at (default 15 32 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_precision_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    result = personalize(args.videos, base=args.base, out=args.output, iterations=args.iterations, lr=args.lr,
                         crfs=tuple(args.crf), device=args.device, precision=args.precision, seed=args.seed,
                         progress=not args.no_progress, patch=args.patch, tune_only=tuple(args.tune_only),
                         l2sp=args.l2sp)
    print(result.summary())
    return 0
