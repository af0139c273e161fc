"""int8 inference for MMSD-Net's convolutions on the CPU (issue 37): where bf16 is slow (AVX2 only).

    calibration = calibrate(network, drive)          # observe activations while drive() runs the float network
    save_calibration(calibration, "mmsd-fast.int8.json")
    network = quantize(network, load_calibration("mmsd-fast.int8.json"))

What runs in int8: the plain convolution stacks (`PARTS`: per-frame features, the offset features, the fusion
and trunk, the reconstruction's residual blocks and upsampler), through torch's FX graph-mode quantization with
its x86 backend (fbgemm / oneDNN: u8 activations per tensor, s8 weights per output channel). Each part takes
and returns float maps, so everything else stays float: the deformable convolution and the conv that predicts
its offsets (a sampling position needs more than 8 bits), the audio and emotion branches and their fusion, the
bicubic skip. The weights are quantized when the network is loaded; the activations' scales come from a
calibration, kept beside the weights as NAME.int8.json (`scripts/calibrate_int8.py` makes it from
training clips, real and synthetic): one (scale, zero point) row per observed activation of each part, in the
graph's order. A calibration made for another architecture or configuration does not fit and is refused.

torch 2.13 marks its quantized tensors deprecated (a warning on first use, silenced here); the pinned torch
has them, and `--precision auto` picks int8 only where it measured faster (docs/speed.md, "int8").
"""

from __future__ import annotations

import copy
import functools
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from mmsd.errors import MmsdError

# the float -> float stacks of MMSD-Net run in int8 (attribute paths); the rest of the network stays float
PARTS = ("video.extract", "video.align.offset_feat", "video.fuse", "video.trunk", "reconstruction.body",
         "reconstruction.up")
ENGINE = "x86"
OBSERVER_PREFIX = "activation_post_process_"
warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel",
                        category=UserWarning)


def available() -> bool:
    """True when this torch build has the x86 quantized engine (fbgemm / oneDNN kernels)."""
    return ENGINE in torch.backends.quantized.supported_engines


def calibrate(network: nn.Module, drive: Callable[[], None]) -> dict[str, Tensor]:
    """The activation scales of `network`'s PARTS, observed while `drive()` runs it (float, inference).

    Returns {part: Tensor[N, 2]}, one (scale, zero point) row per activation observer of the part, in the
    order of its graph. `network` itself is left as it was."""
    prepared: dict[str, nn.Module] = {}
    originals: dict[str, nn.Module] = {}
    for path in PARTS:
        part = _get(network, path)
        originals[path] = part
        prepared[path] = _prepare(part)
        _set(network, path, prepared[path])
    try:
        with torch.inference_mode():
            drive()
    finally:
        for path, part in originals.items():
            _set(network, path, part)
    calibration = {}
    for path, part in prepared.items():
        rows = []
        for observer in _observers(part):
            if observer.min_val.numel() == 0 or not torch.isfinite(observer.min_val):
                raise MmsdError(f"int8 calibration: {path} saw no input (drive() did not run the network)")
            scale, zero_point = observer.calculate_qparams()
            rows.append((float(scale), float(zero_point)))
        calibration[path] = torch.tensor(rows, dtype=torch.float64)
    return calibration


def quantize(network: nn.Module, calibration: dict[str, Tensor]) -> nn.Module:
    """A copy of `network` whose PARTS run in int8 with the activation scales of `calibration`."""
    if not available():
        raise MmsdError(f"int8: this torch build has no {ENGINE} quantized engine; use --precision fp32")
    absent = [path for path in PARTS if not isinstance(_get(network, path, None), nn.Module)]
    if absent:
        raise MmsdError(f"int8 runs MMSD-Net's convolutions; this {type(network).__name__} has no "
                        f"{', '.join(absent)}: use --precision fp32")
    missing = [path for path in PARTS if path not in calibration]
    if missing:
        raise MmsdError(f"int8 calibration lacks {', '.join(missing)}: it was made for another network")
    torch.backends.quantized.engine = ENGINE
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the conversion's small ops: on two threads OpenMP wake-ups made it 3x slower
    try:
        return _quantized(copy.deepcopy(network).eval(), calibration)
    finally:
        torch.set_num_threads(threads)


def _quantized(network: nn.Module, calibration: dict[str, Tensor]) -> nn.Module:
    """`quantize` on a copy of the network."""
    for path in PARTS:
        prepared = _prepare(_get(network, path))
        observers = dict(_named_observers(prepared))
        rows = calibration[path]
        if len(observers) != len(rows):
            raise MmsdError(f"int8 calibration of {path} has {len(rows)} activations, the network {len(observers)}: "
                            "it was made for another configuration")
        for (name, observer), (scale, zero_point) in zip(observers.items(), rows.tolist()):
            setattr(prepared, name, torch.ao.quantization.FixedQParamsObserver(
                scale, int(zero_point), dtype=observer.dtype, qscheme=observer.qscheme,
                quant_min=observer.quant_min, quant_max=observer.quant_max))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FX's notes on fixed-qparams observers and deprecations
            converted = torch.ao.quantization.quantize_fx.convert_fx(prepared, backend_config=_backend()[1])
        _set(network, path, Int8Part(converted))
    return network


def save_calibration(calibration: dict[str, Tensor], path: str | Path, about: dict[str, str] | None = None) -> None:
    """Write a calibration (`calibrate`) as JSON, atomically: {"parts": {part: [[scale, zero point], ...]},
    "about": how it was made}."""
    from mmsd.media.fileio import atomic_path

    parts = ",\n".join(f"  {json.dumps(part)}: {json.dumps(rows.tolist())}" for part, rows in calibration.items())
    text = f'{{"parts": {{\n{parts}\n }},\n "about": {json.dumps(about or {}, indent=2)}\n}}\n'  # a part a line
    with atomic_path(Path(path)) as partial:
        partial.write_text(text)


def load_calibration(path: str | Path) -> dict[str, Tensor]:
    """A calibration written by `save_calibration` (MmsdError, one line, for an unreadable one)."""
    try:
        parts = json.loads(Path(path).read_text())["parts"]
        return {part: torch.tensor(rows, dtype=torch.float64).reshape(-1, 2) for part, rows in parts.items()}
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise MmsdError(f"{path}: not an int8 calibration ({type(exc).__name__}: {exc})") from None


def calibration_path(weights: str | Path) -> Path:
    """Where the int8 calibration of a weights file is kept: beside it, NAME.int8.json."""
    weights = Path(weights)
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".int8.json")


def calibration_beside(weights: str | Path) -> Path | None:
    """The int8 calibration kept beside a weights file, or None if it has none."""
    path = calibration_path(weights)
    return path if path.is_file() else None


def quantize_with(network: nn.Module, calibration: str | Path | None, label: str) -> nn.Module:
    """`quantize` with the calibration file `calibration`; MmsdError (one line) when the model `label` has none."""
    if calibration is None:
        raise MmsdError(f"model {label} has no int8 calibration (NAME.int8.json beside its weights; "
                        "scripts/calibrate_int8.py makes one): use --precision fp32")
    return quantize(network, load_calibration(calibration))


class Int8Part(nn.Module):
    """A quantized part: float (B, C, H, W) in, float out; the input is taken channels-last and fp32."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, x: Tensor) -> Tensor:
        return self.graph(x.float().contiguous(memory_format=torch.channels_last))


def _prepare(part: nn.Module) -> nn.Module:
    """The part with observers (FX, x86 default qconfig), channels-last, its activations not in place."""
    from torch.ao.quantization.quantize_fx import prepare_fx

    part = copy.deepcopy(part).eval().to(memory_format=torch.channels_last)
    for module in part.modules():
        if isinstance(module, (nn.ReLU, nn.LeakyReLU)):
            module.inplace = False  # quantized activations are not in place; torch warns on every call otherwise
    channels = next(m for m in part.modules() if isinstance(m, nn.Conv2d)).in_channels
    example = torch.zeros(1, channels, 8, 8).contiguous(memory_format=torch.channels_last)
    qconfig_mapping, backend_config = _backend()
    quiet = torch.fx.config.do_not_emit_stack_traces
    # no source traces in the graph: recording them imports torch's compiler stack (1,200 modules, seconds)
    torch.fx.config.do_not_emit_stack_traces = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return prepare_fx(part, qconfig_mapping, (example,), backend_config=backend_config)
    finally:
        torch.fx.config.do_not_emit_stack_traces = quiet


@functools.cache
def _backend():
    """(qconfig mapping, backend config) of ENGINE, built once: FX builds the backend config anew on every
    call otherwise (0.1 s each, three times a part)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.backend_config import get_native_backend_config

    return get_default_qconfig_mapping(ENGINE), get_native_backend_config()


def _named_observers(prepared: nn.Module):
    names = [name for name, _ in prepared.named_children() if name.startswith(OBSERVER_PREFIX)]
    for name in sorted(names, key=lambda n: int(n.removeprefix(OBSERVER_PREFIX))):
        yield name, getattr(prepared, name)


def _observers(prepared: nn.Module) -> list[nn.Module]:
    return [observer for _, observer in _named_observers(prepared)]


def _get(module: nn.Module, path: str, *default):
    """The submodule at the attribute path; `default` (if given) where there is none."""
    for name in path.split("."):
        module = getattr(module, name, *default)
    return module


def _set(module: nn.Module, path: str, value: nn.Module) -> None:
    *parents, last = path.split(".")
    for name in parents:
        module = getattr(module, name)
    setattr(module, last, value)
