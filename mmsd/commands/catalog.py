"""`mmsd models`: the models a command takes by name, with what each is for, its size and its figures.

Names are looked up in the models shipped inside the package, then in the folders of
$MMSD_MODELS (`mmsd.models.weights.model_dirs`); ``bicubic`` is built in. For each model: its kind
(restoration network, or the sender's emotion classifier), parameters and multiply-accumulates
per frame (as its model card NAME.md states them, which `scripts/train_shipped.py --ship`
wrote from `mmsd.models.complexity`; counted on the network when there is no such line: the
count runs the network once, a second or more for each of the larger ones), the precision it
was trained in, what it is for (the first sentence of its card) and its validation figures
(from the file's training record, which its card was written from).
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mmsd.models import quantize, weights

BICUBIC_PURPOSE = "the plain baseline: bicubic 4x upsampling of each decoded frame, no weights"
RESTORATION_LR = (72, 120)  # (H, W): MACs of a restoration network per frame at the paper's LR size
TRAINED_IN = "fp32"  # models whose metadata have no "precision" (written before `mmsd train --precision`)


@dataclass(frozen=True)
class ModelInfo:
    """One model as `mmsd models` lists it."""

    name: str
    kind: str  # "restoration" or "emotion classifier" (or "other")
    network: str  # the model name in the file: mmsd, edvr, dbpn, bicubic, emotion-cnn
    params: float  # as many digits as its source gives (a card: 0.01 M)
    macs: float  # per frame (see `macs_per`)
    macs_per: str
    precision: str
    purpose: str
    validation: str  # "" when the file records none
    source: str  # the weights file, or "built-in"
    card: Path | None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these models (default: all)")


def run(args: argparse.Namespace) -> int:
    from mmsd.errors import MmsdError

    found = {"bicubic": None, **weights.named_models()}
    missing = [name for name in args.names if name not in found]
    if missing:
        raise MmsdError(f"no model {', '.join(map(repr, missing))}; available: {', '.join(found)}")
    extra = os.environ.get(weights.MODELS_ENV)
    print(f"Models by name: shipped in {weights.SHIPPED_DIR}, then ${weights.MODELS_ENV} "
          f"({extra if extra else 'not set'}). `--model PATH` takes any model file.")
    for name in args.names or found:
        info = describe(name, found[name])
        print(f"\n{info.name}: {info.kind} ({info.network})")
        print(f"  for: {info.purpose}")
        print(f"  size: {_params(info.params)}, {_macs(info.macs)} per {info.macs_per}; trained in {info.precision}")
        if info.validation:
            print(f"  validation: {info.validation}")
        print(f"  file: {info.source}" + (f" (card {info.card})" if info.card else ""))
        calibration = quantize.calibration_beside(found[name]) if found[name] is not None else None
        if calibration is not None:
            print(f"  int8: calibrated ({calibration.name}; `--precision int8`, which auto picks on CPUs without "
                  "fast bf16)")
    return 0


def describe(name: str, path: Path | None) -> ModelInfo:
    """What `mmsd models` says about the model `name` in `path` (None: the built-in bicubic)."""
    import torch

    from mmsd import models
    from mmsd.sender import emotion_classifier

    if path is None:
        params, macs = _count(models.build_model("bicubic", {}))
        return ModelInfo(name, "restoration", "bicubic", params, macs, _lr_frame(), "nothing (not trained)",
                         BICUBIC_PURPOSE, "", "built-in", None)
    network_name, config, _, info = weights.read_model(path)
    card = path.with_suffix(".md")
    card = card if card.is_file() else None
    purpose = _first_sentence(card) if card else "(no model card)"
    precision = str(info.get("precision", TRAINED_IN))
    if network_name in models.MODELS:
        params, macs = _card_size(card) or _count(models.build_model(network_name, config))
        psnr = info.get("validation_face_psnr", {})
        validation = ("face PSNR on held-out clips of the training actors: "
                      + ", ".join(f"{k} {v:.2f} dB" for k, v in psnr.items())) if psnr else ""
        return ModelInfo(name, "restoration", network_name, params, macs, _lr_frame(), precision, purpose,
                         validation, str(path), card)
    if network_name == emotion_classifier.MODEL_NAME:
        net = emotion_classifier.EmotionClassifier.load(path).net
        side = net.cfg.crop
        macs = models.count_macs(net, torch.zeros(1, 1, side, side))
        val = info.get("validation", {})
        validation = (f"emotion state accuracy {val['frame_accuracy']:.1%} per frame, {val['clip_accuracy']:.1%} "
                      f"per clip ({val['clips']} clips of held-out actors)") if "frame_accuracy" in val else ""
        return ModelInfo(name, "emotion classifier", network_name, sum(p.numel() for p in net.parameters()), macs,
                         f"classified frame ({side}x{side} gray face crop; "
                         f"{emotion_classifier.TrackConfig().samples_per_second:g} frames a second are classified)",
                         precision, purpose, validation, str(path), card)
    params = sum(t.numel() for t in weights.read(path)[0].values())
    return ModelInfo(name, "other", network_name, params, 0, "frame (not counted)", precision, purpose, "",
                     str(path), card)


def _lr_frame() -> str:
    h, w = RESTORATION_LR
    return f"restored frame at {w}x{h} LR ({4 * w}x{4 * h} out)"


def _first_sentence(card: Path) -> str:
    """The first sentence of the card's first paragraph that is not a heading."""
    for paragraph in card.read_text(encoding="utf-8").split("\n\n"):
        text = " ".join(paragraph.split())
        if text and not text.startswith("#"):
            text = re.sub(r"^What it is:\s*", "", text)
            return re.split(r"(?<=\.)\s+(?=[A-Z])", text, maxsplit=1)[0]  # not at "Fig. 1"
    return "(empty model card)"


def _card_size(card: Path | None) -> tuple[float, float] | None:
    """(params, MACs per frame at 120x72 LR) from the card's line written from `Complexity`, if it has one."""
    h, w = RESTORATION_LR
    found = card and re.search(rf"([\d.]+) M params, ([\d.]+) GMACs/frame at {w}x{h} LR", card.read_text("utf-8"))
    return (float(found[1]) * 1e6, float(found[2]) * 1e9) if found else None


def _count(network) -> tuple[float, float]:
    """(params, MACs per frame at 120x72 LR) counted on a restoration network."""
    from mmsd import models

    size = models.complexity(network, RESTORATION_LR)
    return float(size.params), float(size.macs_per_frame)


def _params(count: float) -> str:
    return f"{count / 1e6:.2f} M parameters" if count else "no parameters"


def _macs(count: float) -> str:
    if count >= 1e8:
        return f"{count / 1e9:.2f} GMACs"
    return f"{count / 1e6:.2f} MMACs" if count else "no MACs counted"
