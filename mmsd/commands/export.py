"""`mmsd export --onnx`: write a restoration network as an ONNX graph for the onnx engine.

    mmsd export --onnx mmsd -o mmsd.onnx                  # a shipped name or a .safetensors path
    mmsd decode low.mp4 -o out.mp4 --model mmsd.onnx      # runs it with ONNX Runtime

The graph, its inputs and the engine that runs it: `mmsd.restore.onnx_engine`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mmsd.errors import MmsdError
from mmsd.restore.onnx_engine import EXAMPLE_LR_HW, OnnxNetwork, example_inputs, export_onnx, input_names
from mmsd.restore.restorer import load_network


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx", required=True, metavar="MODEL",
                        help="model to export: a model name (`mmsd models`) or a .safetensors path")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the graph once with ONNX Runtime against PyTorch")


def run(args: argparse.Namespace) -> int:
    if args.output.suffix != ".onnx":
        raise MmsdError(f"{args.output}: the output should end in .onnx")
    if not args.output.parent.is_dir():
        raise MmsdError(f"{args.output}: folder {args.output.parent} does not exist")
    name, config, network = load_network(args.onnx)
    start = time.perf_counter()
    export_onnx(network, args.output, name=name, config=config)
    seconds = time.perf_counter() - start
    line = f"wrote {args.output} ({name}, inputs {', '.join(input_names(config))}) in {seconds:.1f} s"
    if not args.no_check:
        inputs = example_inputs(config, batch=1)
        with torch.inference_mode():
            expected = network.eval()(inputs["lr"], inputs.get("mfcc"), inputs.get("emotion")).image
        got = OnnxNetwork(args.output)(inputs["lr"], inputs.get("mfcc"), inputs.get("emotion")).image
        h, w = EXAMPLE_LR_HW
        line += f"; ONNX Runtime vs PyTorch on a random {w}x{h} window: max |diff| {(got - expected).abs().max():.1e}"
    print(line)
    return 0

