"""The models the Restorer runs, by name: the decoder's defaults, the names available, and loading a
network with its weights (a shipped name, a file, or the built-in bicubic), for torch or ONNX Runtime.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from torch import nn

import mmsd.models as models
from mmsd.errors import MmsdError
from mmsd.models import quantize, weights
from mmsd.models.bicubic import Bicubic, BicubicConfig

# The decoder's default: MMSD-Net with a 3-frame window, the quality of `mmsd` (the paper's 5 frames, Table 1)
# at 1.7-2x its speed (docs/speed.md, "Real time"; issue 12)
DEFAULT_MODEL = "mmsd-fast"
LOW_LATENCY_MODEL = "mmsd-lowlatency"  # MMSD-Net trained on causal windows t-2N..t
BUILTIN = "bicubic"  # needs no weights file


def shipped_models() -> list[str]:
    """Names accepted by ``Restorer(name)``: ``bicubic`` and every restoration network found by name,
    shipped or in $MMSD_MODELS (`mmsd.models.weights.named_models`; not the sender's emotion classifier)."""
    return [BUILTIN, *weights.named_models(models.MODELS)]


def load_network(model: str | os.PathLike) -> tuple[str, dict, nn.Module]:
    """(name, config dict, network with weights) of a shipped name, a file path or 'bicubic'."""
    text = str(model)
    if text == BUILTIN:
        cfg = BicubicConfig()
        return BUILTIN, asdict(cfg), Bicubic(cfg)
    path = weights_path(model)
    name, config, tensors, _ = weights.read_model(path)
    try:
        network = models.build_model(name, config)
    except (KeyError, ValueError, TypeError) as exc:
        raise MmsdError(f"{path}: cannot build model {name!r} from its config ({_one_line(exc)})") from None
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise MmsdError(f"{path}: weights do not fit model {name!r} ({_one_line(exc)})") from None
    return name, config, network


def weights_path(model: str | os.PathLike) -> Path:
    """The weights file of a shipped name or a file path (MmsdError for an unknown name)."""
    text, path = str(model), Path(model)
    if path.suffix == ".safetensors" or os.sep in text or path.is_file():  # a name, even beside a folder "mmsd"
        return path
    found = weights.find_model(text)
    if found is None:
        raise MmsdError(f"no model {text!r} (shipped, or ${weights.MODELS_ENV}); available: "
                        f"{', '.join(shipped_models())} (or give a path to a .safetensors model file)")
    return found


def int8_calibration(model: str | os.PathLike) -> Path | None:
    """The int8 calibration kept beside a model's weights (`mmsd.models.quantize`), or None."""
    if str(model) == BUILTIN:
        return None
    return quantize.calibration_beside(weights_path(model))


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_onnx(network: nn.Module, name: str, config: dict, *, cache: bool):
    """The network exported to ONNX and loaded in ONNX Runtime (through the export cache if `cache`)."""
    from mmsd.restore.onnx_engine import OnnxNetwork, cached_export, temporary_export

    if cache:
        return OnnxNetwork(cached_export(network, name=name, config=config))
    return temporary_export(network, name=name, config=config)
