"""Arithmetic precision of the networks' forward passes: ``auto``, ``fp32``, ``bf16`` or (inference) ``int8``.

One place decides it for every front door (`mmsd train`, `finetune`, `eval`, `decode`,
`bench` and the `Restorer`):

* ``bf16`` runs forwards under ``torch.autocast(device, torch.bfloat16)``: convolutions and
  matmuls in bfloat16, the rest in fp32. Weights, optimiser state and checkpoints stay fp32;
  the deformable convolution's bilinear sampling stays fp32 (`mmsd.models.deform`).
* ``auto`` is ``bf16`` where the hardware runs it fast, else ``fp32``: on the CPU, AMX or
  AVX512-BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and later), as torch's CPU
  feature checks report them; on CUDA, a GPU with bf16 (Ampere and later). fp16 is not
  offered: it would need loss scaling in training and overflows where bf16 does not.
* ``bf16`` asked for explicitly where it is not fast still runs (oneDNN emulates it on
  AVX-512 or AVX2) but with an `MmsdWarning`: on an AMD EPYC Zen 3 (AVX2) it measured 6-14x
  slower than fp32 (docs/speed.md, "bf16").
* ``int8`` (inference only: decode, eval, bench) runs MMSD-Net's plain convolution stacks in int8 with the
  activation scales of a calibration kept beside the weights (`mmsd.models.quantize`); the rest stays fp32.
  ``auto`` picks it on a CPU without fast bf16 when the model has a calibration (on AVX2 only it measured
  faster than fp32, and within 0.02 dB of it: docs/speed.md, "int8"), else fp32.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from contextlib import AbstractContextManager
from pathlib import Path

import torch

from mmsd.errors import MmsdError, MmsdWarning
from mmsd.models import quantize

PRECISIONS = ("auto", "fp32", "bf16")  # training's; inference also has int8
INFERENCE_PRECISIONS = (*PRECISIONS, "int8")
CPUINFO = Path("/proc/cpuinfo")  # Linux; read only when torch lacks its CPU feature checks
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# The instruction sets that decide the decoder's speed, as /proc/cpuinfo names them, in the order reported:
# AMX and AVX512-BF16 make bf16 fast; VNNI (AVX-512 or AVX) makes int8 fast; AVX-512F and AVX2 set fp32's width.
SPEED_FLAGS = ("amx_tile", "amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2")


def cpu_has_fast_bf16() -> bool:
    """True when this CPU has bf16 matrix instructions (AMX or AVX512-BF16) for oneDNN to use, and
    ONEDNN_MAX_CPU_ISA lets it use them (AVX2 or below: bf16 is emulated, 4.3 against 20 fps fp32)."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if limit and not limit.startswith(("AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX10", "ALL", "DEFAULT")):
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(callable(check) for check in checks):
        return any(check() for check in checks)
    try:  # a torch without the checks: the kernel's CPU flags (Linux)
        flags = set(CPUINFO.read_text().split())
    except OSError:
        return False
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


def cpu_flags() -> tuple[str, ...]:
    """Which of SPEED_FLAGS this CPU has (Linux's /proc/cpuinfo; empty where it cannot be read)."""
    try:
        present = set(CPUINFO.read_text().split())
    except OSError:
        return ()
    return tuple(flag for flag in SPEED_FLAGS if flag in present)


def cpu_topology() -> str:
    """How /proc/cpuinfo describes the CPUs of one socket, e.g. "2 cores x 1 thread" or "1 core x 2 threads"
    (two vCPUs as SMT siblings: torch's default is then one thread; `mmsd.cli.usable_cpus`); "" if unknown."""
    try:
        fields = dict(line.split(":", 1) for line in CPUINFO.read_text().splitlines() if ":" in line)
        cores, siblings = int(fields["cpu cores\t"]), int(fields["siblings\t"])
    except (OSError, KeyError, ValueError):
        return ""
    threads = max(1, siblings // max(1, cores))
    return f"{cores} core{'s' if cores != 1 else ''} x {threads} thread{'s' if threads != 1 else ''}"


def isa_limits() -> dict[str, str]:
    """The environment variables set that make torch and oneDNN use fewer instructions than the CPU has,
    e.g. ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 to time an AVX-512 CPU as an AVX2-only one
    (ONNX Runtime ignores both). Speed figures carry them."""
    return {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ}


def cpu_kind(flags: tuple[str, ...] | None = None) -> str:
    """The CPU's kind as speed figures are keyed in docs/speed.md: "AMX", "AVX-512 BF16 (no AMX)",
    "AVX-512 (no bf16)", "AVX2 only" or "unknown" (from `cpu_flags()` unless given)."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16 (no AMX)"
    if "avx512f" in flags:
        return "AVX-512 (no bf16)"
    return "AVX2 only" if "avx2" in flags else "unknown"


def has_fast_bf16(device: str | torch.device = "cpu") -> bool:
    """True when bf16 autocast is expected to beat fp32 on `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_fast_bf16()


def resolve(precision: str, device: str | torch.device = "cpu", *, int8_ready: bool = False) -> str:
    """The precision to run on `device`: ``"fp32"``, ``"bf16"`` or ``"int8"`` (``auto`` decided here).

    int8_ready: the model has an int8 calibration (inference only); ``auto`` picks int8 then on a CPU
    without fast bf16. Raises ValueError for an unknown name, MmsdError for int8 off the CPU or without
    torch's x86 quantized engine; warns (MmsdWarning) when ``bf16`` is asked for on hardware that has
    no fast bf16."""
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use {', '.join(INFERENCE_PRECISIONS)}")
    fast = has_fast_bf16(device)
    int8_here = torch.device(device).type == "cpu" and quantize.available()
    if precision == "auto":
        return "bf16" if fast else "int8" if int8_ready and int8_here else "fp32"
    if precision == "int8" and not int8_here:
        raise MmsdError(f"int8 runs on a CPU with torch's x86 quantized engine, not here ({device}); "
                        "use --precision fp32")
    if precision == "bf16" and not fast:
        where = "this CPU has no AMX or AVX512-BF16" if torch.device(device).type == "cpu" else f"{device} has no bf16"
        warnings.warn(f"bf16 requested, but {where}: it runs slower than fp32 here (--precision auto picks fp32)",
                      MmsdWarning, stacklevel=2)
    return precision


def autocast(precision: str, device: str | torch.device = "cpu") -> AbstractContextManager:
    """The context to run forwards in at a resolved precision: bf16 autocast, or nothing for fp32 and int8
    (whose quantized parts are in the network itself)."""
    if precision in ("fp32", "int8"):
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"autocast needs a resolved precision (fp32 or bf16), got {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def add_argument(parser, *, default: str = "auto", inference: bool = False) -> None:
    """The ``--precision`` option every front door shares (int8 too where it only runs networks)."""
    parser.add_argument("--precision", choices=INFERENCE_PRECISIONS if inference else PRECISIONS, default=default,
                        help="arithmetic of the network's forward: bf16 autocast (weights stay fp32), fp32"
                             + (", int8 (MMSD-Net's convolutions, with the model's calibration)" if inference else "")
                             + ", or auto = bf16 where the hardware runs it fast (CPU with AMX/AVX512-BF16, CUDA "
                             "with bf16), else " + ("int8 where the model has a calibration, else " if inference
                                                     else "") + f"fp32 (default {default})")
