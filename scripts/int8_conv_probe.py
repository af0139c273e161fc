"""A single 3x3 conv in fp32, bf16 and int8 (torch's quantized engines), one thread: what int8 can gain per
layer on this CPU (docs/speed.md, "int8 convolutions"). Run it as is, or under `ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2` for the AVX2 kernels; nothing else should run meanwhile.

    python scripts/int8_conv_probe.py [x86|onednn]

The shapes are MMSD-Net small's: 32 -> 32 and 32 -> 128 at the 120x72 LR size, then the upsampler's at 2x
and 4x. "int8 + q/dq" also quantizes the float input and dequantizes the output, as each quantized part
of the decoder does (`mmsd.models.quantize`).
"""

from __future__ import annotations

import sys
import time
import warnings

import torch
import torch.ao.nn.quantized as nnq

SHAPES = ((32, 32, 72, 120), (32, 128, 72, 120), (32, 32, 144, 240), (16, 64, 144, 240), (16, 16, 288, 480))
SCALE, ZERO_POINT = 0.05, 64  # an activation scale of the kind the calibration finds; the values do not matter


def milliseconds(run, repeats: int = 30) -> float:
    for _ in range(3):
        run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> int:
    engine = sys.argv[1] if len(sys.argv) > 1 else "x86"
    torch.set_num_threads(1)
    torch.backends.quantized.engine = engine
    warnings.filterwarnings("ignore", category=UserWarning)  # torch 2.13's deprecation of quantized tensors
    for c_in, c_out, height, width in SHAPES:
        x = torch.randn(1, c_in, height, width).contiguous(memory_format=torch.channels_last)
        conv = torch.nn.Conv2d(c_in, c_out, 3, padding=1).eval()
        quantized = nnq.Conv2d(c_in, c_out, 3, padding=1)
        scales = torch.rand(c_out) * 0.01 + 0.001
        weight = torch.quantize_per_channel(conv.weight.detach(), scales, torch.zeros(c_out, dtype=torch.long), 0,
                                            torch.qint8)
        quantized.set_weight_bias(weight, conv.bias.detach())
        quantized.scale, quantized.zero_point = SCALE, ZERO_POINT
        qx = torch.quantize_per_tensor(x, SCALE, ZERO_POINT, torch.quint8)
        with torch.inference_mode():
            fp32 = milliseconds(lambda: conv(x))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf16 = milliseconds(lambda: conv(x))
            int8 = milliseconds(lambda: quantized(qx))
            both = milliseconds(lambda: quantized(torch.quantize_per_tensor(x, SCALE, ZERO_POINT,
                                                                            torch.quint8)).dequantize())
        print(f"{engine} {c_in}->{c_out} at {width}x{height}: fp32 {fp32:.2f}, bf16 {bf16:.2f}, int8 {int8:.2f}, "
              f"int8 + q/dq {both:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
