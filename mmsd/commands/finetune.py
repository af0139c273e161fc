"""`mmsd finetune --from MODEL --actor K ... --data CACHE --out DIR`: the person-ID prior (Sec. 4.3) on the
test actors, with `mmsd.training.finetune`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmsd.errors import MmsdError
from mmsd.evaluation.tables import write_table
from mmsd.media.fileio import atomic_write_text
from mmsd.models.precision import add_argument as add_precision_argument
from mmsd.training.finetune import (FINETUNE_ITERATIONS, FINETUNE_LR, actor_keys, adapt, general_model, score,
                                    summary_table)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="weights", required=True, metavar="WEIGHTS",
                        help="the general model: a shipped name or a weights file")
    parser.add_argument("--actor", type=int, nargs="+", required=True, metavar="K", help="test actor(s) to adapt to")
    parser.add_argument("--data", type=Path, required=True, help="cache written by `mmsd prepare`")
    parser.add_argument("--out", type=Path, required=True, help="folder for the tuned runs and the prior table")
    parser.add_argument("--iterations", type=int, default=FINETUNE_ITERATIONS,
                        help=f"fine-tuning iterations per actor (default {FINETUNE_ITERATIONS})")
    parser.add_argument("--lr", type=float, default=FINETUNE_LR, help=f"learning rate (default {FINETUNE_LR})")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_precision_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars while scoring")


def run(args: argparse.Namespace) -> int:
    weights = general_model(args.weights)
    if args.iterations < 1:
        raise MmsdError(f"--iterations must be >= 1, got {args.iterations}")
    args.out.mkdir(parents=True, exist_ok=True)
    for actor in args.actor:
        actor_keys(args.data, actor)  # fail before any training if an actor lacks clips
    for actor in args.actor:
        folder = args.out / f"actor_{actor:02d}"
        folder.mkdir(exist_ok=True)
        tuned = adapt(weights=weights, actor=actor, cache=args.data, out=folder, iterations=args.iterations,
                      lr=args.lr, device=args.device, precision=args.precision)
        result = score(general=weights, tuned=tuned, actor=actor, cache=args.data, progress=not args.no_progress,
                       precision=args.precision)
        atomic_write_text(folder / "prior.json", json.dumps(result, indent=1) + "\n")
        gains = ", ".join(f"CRF {c} {v['gain_db']:+.2f} dB" for c, v in result["crf"].items())
        print(f"actor {actor}: face PSNR gain of the tuned model: {gains}")
    results = [json.loads(p.read_text()) for p in sorted(args.out.glob("actor_*/prior.json"))]
    write_table(args.out, "prior", summary_table(results))
    print(summary_table(results).markdown())
    return 0
