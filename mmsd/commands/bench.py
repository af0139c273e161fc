"""`mmsd bench`: how fast the soft decoders run here. A script that prints figures; no test asserts on them.

    mmsd bench                                  # every model, small and paper, both engines, end to end
    mmsd bench --models mmsd edvr --configs small --frames 8 --threads 1
    mmsd bench --profile                        # + MMSD-Net per stage, and the decoder's other work per frame
    mmsd bench --models mmsd --train-steps 5    # + a training step (batch 8, 32x32 LR) per precision
    mmsd bench --models mmsd --only "mmsd (shipped)" mmsd-paper   # just these of the models

The timers and what each measures: `mmsd.evaluation.bench`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from mmsd.errors import MmsdError
from mmsd.evaluation.bench import (CONFIG_NAMES, LR_HW, PRECISIONS, Entry, cpu_facts, describe_clip,
                                   describe_cpu, entries, make_clip, profile_decoder, profile_mmsd, run_decode,
                                   sized_clip, time_forward, time_stream, time_train_step)
from mmsd.media.fileio import atomic_path
from mmsd.models import MODELS, quantize, weights
from mmsd.models.precision import INFERENCE_PRECISIONS
from mmsd.restore.restorer import Restorer
from mmsd.restore.threads import set_threads

E2E_DEFAULT = ("bicubic", "mmsd-small")


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.rjust(width) if i else cell.ljust(width)
                     for i, (cell, width) in enumerate(zip(cells, widths)))


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print(_row(header, widths))
    for r in rows:
        print(_row([str(c) for c in r], widths))


def _fps(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS),
                        help="architectures to time (default: all)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIG_NAMES), choices=CONFIG_NAMES,
                        help="random-weight configs (default: small paper)")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar="KEY=VALUE", dest="variants",
                        help="also time each random-weight config with these config changes, e.g. --variant "
                             "radius=1 --variant radius=1 upsample_channels=8 (label 'mmsd-small radius=1')")
    parser.add_argument("--only", nargs="+", metavar="LABEL",
                        help="time only these of the models (labels as printed, e.g. 'mmsd (shipped)' mmsd-paper)")
    parser.add_argument("--frames", type=int, default=8, help="frames per measurement (default 8)")
    parser.add_argument("--batch", type=int, default=1,
                        help="windows per forward pass (default 1, the decoder's default on the CPU)")
    parser.add_argument("--threads", type=int, help="torch (and ONNX Runtime) threads (default: the CPUs this "
                                                    f"process may use, {torch.get_num_threads()} here)")
    parser.add_argument("--workers", type=int,
                        help="frames restored at once by the torch engine, each on its share of the threads (default:"
                             " the Restorer's, one per thread for a centred model on the CPU; 1: one frame at a time)")
    parser.add_argument("--engines", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=INFERENCE_PRECISIONS[1:],
                        help="arithmetic of the torch engine's forwards, each timed (default: fp32 bf16; "
                             "bf16 is autocast, fast only with AMX/AVX512-BF16; int8 for the models with a "
                             "calibration, `mmsd.models.quantize`)")
    parser.add_argument("--train-steps", type=int, default=0, metavar="K",
                        help="also time a training step (batch 8, 32x32 LR) of each network, median of K "
                             "(default 0: no)")
    parser.add_argument("--e2e", nargs="*", metavar="LABEL",
                        help="models to time end to end on a synthesized clip, by label (default: those of "
                             f"{', '.join(E2E_DEFAULT)} in the run, and shipped models); --e2e alone: none")
    parser.add_argument("--clip", type=Path, metavar="VIDEO",
                        help="a low-resolution video to time end to end and profile on, instead of a synthesized"
                             " clip (e.g. a variable-frame-rate recording sent by `mmsd encode`)")
    parser.add_argument("--sizes", nargs="+", type=_size, default=[], metavar="WxH",
                        help="also measure peak memory and speed of `restore_file` at these input sizes, e.g. "
                             "120x72 640x360 1920x1080")
    parser.add_argument("--tiles", nargs="+", type=_tile, default=[None], metavar="N|default",
                        help="--tile settings for --sizes (default: the Restorer's; 0: whole frames)")
    parser.add_argument("--size-model", default="mmsd", help="model for --sizes (default mmsd)")
    parser.add_argument("--size-frames", type=int, default=8, help="frames per --sizes clip (default 8)")
    parser.add_argument("--size-repeats", type=int, default=1,
                        help="decodes per size and tile, interleaved (default 1)")
    parser.add_argument("--profile", action="store_true",
                        help="also time MMSD-Net stage by stage and the decoder's work besides the network")
    parser.add_argument("--out", type=Path, default=Path("results/bench.json"), help="JSON to write")


def _size(text: str) -> tuple[int, int]:
    """'640x360' -> (640, 360), W x H."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"expected a size W x H such as 640x360, got {text!r}")
    return int(width), int(height)


def _tile(text: str) -> int | None:
    if text == "default":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected 'default' or a number of pixels, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.batch < 1 or args.size_frames < 1 or args.size_repeats < 1:
        raise MmsdError("--frames, --batch, --size-frames and --size-repeats must be >= 1")
    if args.train_steps < 0:
        raise MmsdError("--train-steps must be >= 0")
    if args.clip is not None and not args.clip.is_file():
        raise MmsdError(f"--clip {args.clip}: no such file")
    precisions = list(dict.fromkeys(args.precisions))
    set_threads(args.threads)
    threads = torch.get_num_threads()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": threads, "workers": args.workers, "cpus": os.cpu_count(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "python": platform.python_version(),
            "lr_size": list(reversed(LR_HW)), "frames": args.frames, "batch": args.batch,
            "precisions": precisions, **cpu_facts(), "load_average_before": list(os.getloadavg())}
    if "onnx" in args.engines:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    plural = "s" if threads > 1 else ""
    print(f"mmsd bench: {threads} thread{plural}, {os.cpu_count()} CPUs ({describe_cpu(meta)}; "
          f"{'with' if meta['fast_bf16'] else 'no'} fast bf16), load average {os.getloadavg()[0]:.2f} "
          "(other jobs on the CPU move every figure)")
    if "onnx" in args.engines:
        from mmsd.restore.onnx_engine import export_onnx
    try:
        todo = entries(args.models, args.configs, args.variants)
    except ValueError as err:
        raise MmsdError(f"--variant: {err}") from None
    if args.only:
        unknown = set(args.only) - {e.label for e in todo}
        if unknown:
            raise MmsdError(f"--only: no model labelled {', '.join(sorted(unknown))}; "
                            f"labels: {', '.join(e.label for e in todo)}")
        todo = [e for e in todo if e.label in args.only]
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="mmsd-bench-") as folder:
        folder = Path(folder)
        for entry, precision in itertools.product(todo, precisions):
            calibration = quantize.calibration_beside(entry.weights) if precision == "int8" and entry.weights else None
            if precision == "int8" and calibration is None:
                print(f"  {entry.label} (int8): skipped, no int8 calibration beside its weights", flush=True)
                continue
            network = entry.build()  # afresh: the Restorer below makes it channels-last
            result = {"label": entry.label, "arch": entry.arch, "weights": str(entry.weights or "random"),
                      "params": sum(p.numel() for p in network.parameters()), "precision": precision}
            if "torch" in args.engines:
                timed = network if calibration is None else quantize.quantize_with(
                    network.to(memory_format=torch.channels_last), calibration, entry.label)
                result["forward_fps"] = time_forward(timed, entry.config, frames=args.frames, batch=args.batch,
                                                     precision=precision)
                restorer = Restorer(network, config=entry.config, batch_size=args.batch, precision=precision,
                                    workers=args.workers, calibration=calibration)
                result["stream_fps"] = time_stream(restorer, frames=args.frames)
                result["workers"] = restorer.workers
            if args.train_steps and entry.arch != "bicubic" and precision != "int8":
                result["train_step_seconds"] = time_train_step(entry.build(), entry.config, steps=args.train_steps,
                                                               precision=precision)
            if "onnx" in args.engines and entry.arch != "bicubic" and precision == "fp32":
                start = time.perf_counter()
                onnx_file = export_onnx(network, folder / f"{entry.label.split()[0]}.onnx", name=entry.arch,
                                        config=entry.config)
                result["onnx_export_seconds"] = time.perf_counter() - start
                result["onnx_file"] = str(onnx_file)
                onnx_restorer = Restorer(onnx_file, batch_size=args.batch)
                result["onnx_forward_fps"] = time_forward(onnx_restorer.model, entry.config, frames=args.frames,
                                                          batch=args.batch)
                result["onnx_stream_fps"] = time_stream(onnx_restorer, frames=args.frames)
            results.append(result)
            rows.append([entry.label, precision, f"{result['params'] / 1e6:.2f} M", _fps(result.get("forward_fps")),
                         _fps(result.get("stream_fps")), _fps(result.get("onnx_forward_fps")),
                         _fps(result.get("onnx_stream_fps")),
                         f"{result['onnx_export_seconds']:.0f} s" if "onnx_export_seconds" in result else "-",
                         f"{result['train_step_seconds']:.3f} s" if "train_step_seconds" in result else "-"])
            speeds = ", ".join(f"{key} {_fps(result.get(key + '_fps'))}"
                               for key in ("forward", "stream", "onnx_forward", "onnx_stream"))
            step = f", train step {result['train_step_seconds']:.3f} s" if "train_step_seconds" in result else ""
            print(f"  {entry.label} ({precision}): {speeds} fps{step}", flush=True)
        by_label = {(r["label"], r["precision"]): r for r in results}
        relative = {}
        for name, precision in itertools.product(args.configs, precisions):
            mmsd, edvr = by_label.get((f"mmsd-{name}", precision)), by_label.get((f"edvr-{name}", precision))
            if mmsd and edvr and "forward_fps" in mmsd and "forward_fps" in edvr:
                relative.setdefault(name, {})[precision] = {"forward": edvr["forward_fps"] / mmsd["forward_fps"],
                                                            "stream": edvr["stream_fps"] / mmsd["stream_fps"]}
        e2e = run_end_to_end(args, todo, results, folder, threads, precisions)
        sizes = run_sizes(args, folder, threads) if args.sizes else []
        profile = run_profile(args, todo, folder, precisions) if args.profile else {}
    meta["load_average_after"] = list(os.getloadavg())

    print_table(f"model throughput at 120x72 -> 480x288, frames/s ({threads} thread{plural}; batch {args.batch})",
                ["model", "precision", "params", "forward", "stream", "onnx forward", "onnx stream", "onnx export",
                 "train step"], rows)
    for name, ratios in relative.items():
        for precision, ratio in ratios.items():
            print(f"MMSD-Net {name} takes {ratio['forward']:.2f}x the time per frame of EDVR {name} (forward, "
                  f"{precision}), {ratio['stream']:.2f}x when streaming")
    if e2e:
        print_table(f"end to end: `Restorer.restore_file` of {e2e[0]['clip']}",
                    ["model", "engine", "precision", "decode/encode overlap", "frames", "fps", "real-time factor",
                     "peak RSS"],
                    [[r["label"], r["engine"], r["precision"], "on" if r["overlap"] else "off", str(r["frames"]),
                      f"{r['fps']:.2f}",
                      f"{r['real_time_factor']:.2f}", f"{r['peak_rss_mb']:.0f} MB"] for r in e2e])
    if sizes:
        print_table(f"peak memory and speed against input size: `restore_file`, model {args.size_model}, "
                    f"{args.size_frames} frames (median of {args.size_repeats})",
                    ["input", "output", "tile", "tiles/frame", "fps", "peak RSS"],
                    [[f"{r['input'][0]}x{r['input'][1]}", f"{r['output'][0]}x{r['output'][1]}",
                      str(r["tile"]) if r["tile"] else "whole frame", str(r["tiles"]), f"{r['fps']:.3f}",
                      f"{r['peak_rss_mb']:.0f} MB"] for r in sizes])
    for title, stages in profile.items():
        print_table(title, ["stage", "ms/frame"], [[k, f"{v:.1f}"] for k, v in stages.items()])
    report = {"meta": meta, "models": [{k: v for k, v in r.items() if k != "onnx_file"} for r in results],
              "mmsd_time_relative_to_edvr": relative, "end_to_end": e2e, "sizes": sizes, "profile": profile}
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def run_end_to_end(args: argparse.Namespace, todo: list[Entry], results: list[dict], folder: Path,
                   threads: int, precisions: list[str]) -> list[dict]:
    """restore_file of a synthesized clip, per model, engine and precision (torch; ONNX Runtime is fp32),
    each in a fresh process."""
    labels = {e.label for e in todo}
    if args.e2e is None:
        wanted = {label for label in E2E_DEFAULT if label in labels} | {e.label for e in todo if e.weights}
    else:
        wanted = set(args.e2e)
        if wanted - labels:
            raise MmsdError(f"--e2e: no model labelled {', '.join(sorted(wanted - labels))} in this run; "
                            f"labels: {', '.join(e.label for e in todo)}")
    chosen = [e for e in todo if e.label in wanted]
    if not chosen:
        return []
    if args.clip is None:
        print("end to end: synthesizing and encoding a clip ...", flush=True)
    clip = args.clip or make_clip(folder)
    duration, facts = describe_clip(clip)
    print(f"end to end on {clip.name}: {facts}", flush=True)
    onnx_files = {r["label"]: r["onnx_file"] for r in results if "onnx_file" in r}
    rows = []
    for entry in chosen:
        if entry.weights is not None or entry.arch == "bicubic":
            source = str(entry.weights or "bicubic")
        else:
            source = folder / f"{entry.label}.safetensors"
            weights.save_model(source, name=entry.arch, config=entry.config, state=entry.build().state_dict())
        models = [("torch", source, precision) for precision in precisions
                  if precision != "int8" or quantize.calibration_beside(source)] if "torch" in args.engines else []
        if entry.label in onnx_files:
            models.append(("onnx", onnx_files[entry.label], "fp32"))
        for (engine, model, precision), overlap in itertools.product(models, (True, False)):
            result = run_decode(clip, model, threads=threads, batch=args.batch, overlap=overlap, precision=precision,
                                workers=args.workers if engine == "torch" else None)
            result |= {"label": entry.label, "clip": facts, "clip_seconds": duration,
                       "real_time_factor": result["seconds"] / duration}
            rows.append(result)
            print(f"  {entry.label} ({engine}, {precision}, overlap {'on' if overlap else 'off'}): "
                  f"{result['fps']:.2f} fps end to end, real-time factor {result['real_time_factor']:.2f}, "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB",
                  flush=True)
    return rows


def run_sizes(args: argparse.Namespace, folder: Path, threads: int) -> list[dict]:
    """Peak RSS and fps of `restore_file` per input size and --tiles setting, each decode in a fresh
    process; the repeats interleave the settings (the median is kept, every run is in `runs`)."""
    clip = folder / "low.mp4"
    if not clip.is_file():
        print("sizes: synthesizing and encoding a clip ...", flush=True)
        clip = make_clip(folder)
    rows = []
    for width, height in args.sizes:
        source = sized_clip(clip, folder / f"in-{width}x{height}.mp4", width=width, height=height,
                            frames=args.size_frames)
        runs: dict[int | None, list[dict]] = {tile: [] for tile in args.tiles}
        for _ in range(args.size_repeats):
            for tile in args.tiles:
                result = run_decode(source, args.size_model, threads=threads, batch=args.batch, tile=tile)
                runs[tile].append(result)
                print(f"  {width}x{height}, tile {result['tile'] or 'whole frame'} ({result['tiles']} per frame): "
                      f"{result['fps']:.3f} fps, peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
        for tile, done in runs.items():
            middle = sorted(done, key=lambda r: r["fps"])[len(done) // 2]
            rows.append(middle | {"input": [width, height], "model": args.size_model,
                                  "peak_rss_mb": max(r["peak_rss_mb"] for r in done),
                                  "runs": [{"fps": r["fps"], "peak_rss_mb": r["peak_rss_mb"]} for r in done]})
    return rows


def run_profile(args: argparse.Namespace, todo: list[Entry], folder: Path,
                precisions: list[str]) -> dict[str, dict[str, float]]:
    """MMSD-Net stage by stage, per precision (plain forward at batch 1 and 4; streaming at --batch), and
    the decoder's other work."""
    profile = {}
    for entry, precision in itertools.product(todo, precisions):
        if entry.arch != "mmsd" or precision == "int8":  # the stages of int8 are not timed apart
            continue
        network = entry.build()
        for batch, cached in ((1, False), (4, False), (args.batch, True)):
            title = f"{entry.label} per stage, ms/frame, {precision}, batch {batch}"
            if cached:  # as the Restorer runs it
                network.to(memory_format=torch.channels_last)
                title += ", streaming (features once per frame, channels-last)"
            profile[title] = profile_mmsd(network, entry.config, batch=batch, precision=precision,
                                          repeats=max(1, math.ceil(args.frames / batch)), cached=cached)
    clip = args.clip or folder / "low.mp4"
    if not clip.is_file():
        clip = make_clip(folder)
    profile["decoder besides the network, ms/frame"] = profile_decoder(clip)
    return profile
