"""`mmsd train --config NAME --data CACHE --out RUN` (or `--resume RUN`): a new run of the Trainer
(`mmsd.training.train`, where the objective, the choices and resuming are described), or the rest of one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from mmsd.data.dataset import CROP_FOCUS
from mmsd.errors import MmsdError
from mmsd.models import MODELS, load_config
from mmsd.models.precision import add_argument as add_precision_argument
from mmsd.training.train import LR_SCHEDULES, TrainConfig, config_from_dict, resume, start


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="small",
                        help="model config: a shipped name (small, paper: configs/MODEL-NAME.yaml) or a YAML path")
    parser.add_argument("--model", default="mmsd", choices=sorted(MODELS), help="network to train")
    parser.add_argument("--data", type=Path, help="cache written by `mmsd prepare`")
    parser.add_argument("--out", type=Path, help="run folder (checkpoints, logs, model.safetensors)")
    parser.add_argument("--resume", type=Path, metavar="RUN", help="continue this run from its checkpoint")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model config overrides, e.g. channels=32 audio=false")
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--batch", type=int, dest="batch_size")
    parser.add_argument("--patch", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, help="constant (paper) or cosine decay to --lr-min")
    parser.add_argument("--lr-min", type=float)
    parser.add_argument("--crop-focus", choices=CROP_FOCUS, help="training crops around the face (default) or anywhere")
    parser.add_argument("--gan", action="store_true", default=None, help="add the emotion-conditioned cGAN loss")
    parser.add_argument("--adv-start", type=int, help="iteration at which L_adv starts (default: 2 epochs)")
    parser.add_argument("--adv-weight", type=float, help="lambda1, the weight of L_adv (default 0.01, the paper's)")
    parser.add_argument("--crf", type=int, nargs="+", dest="crfs", help="train on these CRFs only")
    parser.add_argument("--mix", nargs="+", metavar="CACHE:SHARE", type=_mix_pair,
                        help="also draw this share of the samples from another cache (all its clips), e.g. "
                             "data/photos:0.2 data/leaves:0.2; the rest comes from --data's training actors")
    parser.add_argument("--init", metavar="NAME|PATH",
                        help="start from these weights (a shipped name or a weights file); the network and its "
                             "config come from the file (--config/--model are ignored; --set changes keys that keep "
                             "the weights' shapes, e.g. mfcc_norm=cmvn)")
    parser.add_argument("--voice-augment", type=float, metavar="P",
                        help="share of samples that hear a voice variant of their clip's audio (pitch, noise, "
                             "reverberation, AAC; written by `mmsd voices CACHE`), default 0")
    parser.add_argument("--audio-mismatch", type=float, metavar="P",
                        help="share of samples that hear another clip's audio instead of their own, so that a voice "
                             "which does not match the lips is not followed (default 0)")
    parser.add_argument("--workers", type=int, dest="num_workers")
    parser.add_argument("--val-every", type=int)
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--snapshot-every", type=int, metavar="N",
                        help="also keep the weights every N iterations in RUN/snapshots/ (for learning curves)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_precision_argument(parser)


def _mix_pair(text: str) -> tuple[str, float]:
    cache, sep, share = text.rpartition(":")
    try:
        return cache, float(share)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CACHE:SHARE, got {text!r}") from None


def _init_weights(name_or_path: str) -> Path:
    """An existing weights file, or a model name (shipped, or in $MMSD_MODELS)."""
    from mmsd.models.weights import find_model

    path = Path(name_or_path)
    if path.is_file():
        return path
    named = find_model(name_or_path)
    if named is not None:
        return named
    raise MmsdError(f"--init {name_or_path}: no such weights file or shipped model")


def _parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MmsdError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            overrides[key] = json.loads(value.lower() if value.lower() in ("true", "false") else value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    if args.resume:
        resume(args.resume, iterations=args.iterations, device=args.device, precision=args.precision)
        return 0
    if args.data is None or args.out is None:
        raise MmsdError("a new run needs --data CACHE and --out RUN (or --resume RUN)")
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in train_fields and v is not None}
    model_name = args.model
    if args.init:
        from mmsd.models.weights import read_model

        given["init"] = str(_init_weights(args.init))
        model_name, model_config, _, _ = read_model(given["init"])
        model_config = {**model_config, **_parse_overrides(args.set)}
    else:
        model_config = dataclasses.asdict(load_config(args.config, model=args.model, **_parse_overrides(args.set)))
    cfg = config_from_dict(TrainConfig, given)
    start(cache=args.data, out=args.out, model_name=model_name, model_config=model_config, cfg=cfg,
          device=args.device, precision=args.precision)
    return 0
