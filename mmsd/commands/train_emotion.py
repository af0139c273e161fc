"""`mmsd train-emotion --data CACHE --out FILE`: train the sender's emotion classifier on a cache's face crops
(`mmsd.training.train_emotion`), then score it on the test actors."""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch

from mmsd.data.dataset import ClipIndex
from mmsd.emotions import STATES
from mmsd.errors import MmsdError
from mmsd.sender.emotion_classifier import EmotionNetConfig
from mmsd.training.train_emotion import EmotionTrainConfig, Scores, collect_crops, fit, score


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = EmotionTrainConfig()
    parser.add_argument("--data", type=Path, required=True, help="cache written by `mmsd prepare`")
    parser.add_argument("--out", type=Path, required=True, help="weights file to write (e.g. mmsd/shipped/emotion.safetensors)")
    parser.add_argument("--iterations", type=int, default=defaults.iterations, help="optimiser steps (default %(default)s)")
    parser.add_argument("--batch", type=int, dest="batch_size", default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--frame-step", type=int, default=defaults.frame_step,
                        help="crop every Nth stored HR frame of a clip (default %(default)s)")
    parser.add_argument("--val-actors", type=int, nargs="*", default=list(defaults.val_actors),
                        help="training actors held out for validation (default %(default)s)")
    parser.add_argument("--test-actors", type=int, nargs="*", default=list(defaults.test_actors),
                        help="actors scored at the end, never trained on (default 19-24; none: no test)")
    parser.add_argument("--val-every", type=int, default=defaults.val_every)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: the CPUs this process may use)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if not args.out.parent.is_dir():
        raise MmsdError(f"{args.out}: folder {args.out.parent} does not exist")
    cfg = EmotionTrainConfig(iterations=args.iterations, batch_size=args.batch_size, lr=args.lr,
                             frame_step=args.frame_step, val_actors=tuple(args.val_actors),
                             test_actors=tuple(args.test_actors), val_every=args.val_every, seed=args.seed)
    net_cfg = EmotionNetConfig()
    index = ClipIndex(args.data)
    fit_actors = [a for a in cfg.train_actors if a not in cfg.val_actors]
    splits = {"train": index.select(fit_actors), "validation": index.select(cfg.val_actors),
              "test": index.select(cfg.test_actors)}
    print(f"{len(index)} clips in {args.data}: " + ", ".join(f"{len(c)} {name}" for name, c in splits.items()))
    if not splits["train"]:
        raise MmsdError(f"{args.data}: no clips of the training actors {_actors(tuple(fit_actors))}")
    crops = {name: collect_crops(index, clips, net_cfg, frame_step=cfg.frame_step, progress=not args.quiet,
                                 desc=f"{name} crops")
             for name, clips in splits.items() if clips}
    found = np.concatenate([c.haar for c in crops.values()])
    print(f"{len(found)} face crops, Haar found {found.mean():.1%} (the cache's face box stood in for the rest)")
    if "validation" not in crops:
        print(f"no clips of validation actors {list(cfg.val_actors)}: keeping the last weights")
    classifier, val_scores = fit(crops["train"], crops.get("validation"), net_cfg=net_cfg, cfg=cfg,
                                 progress=not args.quiet)
    test_scores = score(classifier, crops["test"]) if "test" in crops else None
    wall = time.monotonic() - started
    info = {
        "data": str(args.data), "iterations": cfg.iterations, "wall_seconds": round(wall, 1),
        "train": dataclasses.asdict(cfg), "threads": torch.get_num_threads(),
        "crops": {name: {"clips": len(c.keys), "frames": len(c)} for name, c in crops.items()},
        "haar_found": round(float(found.mean()), 4),
        "validation": val_scores.as_dict() if val_scores else None,
        "test": _test_info(test_scores) if test_scores else None,
    }
    classifier.save(args.out, info=info)
    if val_scores:
        print(f"validation (actors {_actors(cfg.val_actors)}): {val_scores.frame_accuracy:.1%} per frame, "
              f"{val_scores.clip_accuracy:.1%} per clip ({val_scores.frames} frames, {val_scores.clips} clips)")
    if test_scores:
        print(f"test (actors {_actors(cfg.test_actors)}): {test_scores.frame_accuracy:.1%} per frame, "
              f"{test_scores.clip_accuracy:.1%} per clip ({test_scores.frames} frames, {test_scores.clips} clips)")
        print(confusion_summary(test_scores))
    print(f"wrote {args.out} in {wall / 60:.1f} min")
    return 0


def confusion_summary(scores: Scores) -> str:
    """Per-state accuracy and each state's most frequent wrong answer, one line per state."""
    lines = [f"{'state':<20}{'frames':>7}{'accuracy':>10}  most often mistaken for"]
    for state, accuracy in zip(STATES, scores.per_state()):
        row = scores.confusion[state.id].copy()
        total = int(row.sum())
        row[state.id] = 0
        wrong = int(row.argmax())
        mistaken = f"{STATES[wrong].name} ({row[wrong] / total:.0%})" if total and row[wrong] else "-"
        shown = f"{accuracy:.1%}" if total else "-"
        lines.append(f"{state.id:>2} {state.name:<17}{total:>7}{shown:>10}  {mistaken}")
    return "\n".join(lines)


def _test_info(scores: Scores) -> dict:
    per_state = {s.name: (None if math.isnan(a) else round(float(a), 4)) for s, a in zip(STATES, scores.per_state())}
    return {**scores.as_dict(), "per_state": per_state, "confusion": scores.confusion.tolist()}


def _actors(actors: tuple[int, ...]) -> str:
    ordered = sorted(actors)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(map(str, ordered))
