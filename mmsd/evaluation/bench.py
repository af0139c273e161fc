"""`mmsd bench`: how fast the soft decoders run here. A script that prints figures; no test asserts on them.

    mmsd bench                                  # every model, small and paper, both engines, end to end
    mmsd bench --models mmsd edvr --configs small --frames 8 --threads 1
    mmsd bench --profile                        # + MMSD-Net per stage, and the decoder's other work per frame
    mmsd bench --models mmsd --train-steps 5    # + a training step (batch 8, 32x32 LR) per precision
    mmsd bench --models mmsd --only "mmsd (shipped)" mmsd-paper   # just these of the models

Measured at the paper's LR size (120x72 -> 480x288), T = 2N+1 = 5, in each precision of
``--precisions`` (default fp32 and bf16, see `mmsd.models.precision`; ONNX Runtime runs fp32, so its
figures sit in the fp32 rows):

* forward: frames/s of the network's plain forward, batch ``--batch``, ``--frames`` frames,
  in PyTorch and (onnx forward) in ONNX Runtime;
* stream: frames/s of `Restorer.restore_frames` over ``--frames`` random frames (its ``--workers``, windowing,
  uint8 conversion and, for MMSD-Net under torch, the per-frame feature cache), engine torch
  and onnx;
* end to end: `Restorer.restore_file` on a synthesized clip (a test actor, 480x288, sent at
  120x72 with x264 CRF 40 and emotion side information): frames/s, the real-time factor
  (processing time / video duration; < 1 keeps up with playback) and the decoder's peak
  RSS, each decode in a fresh process, with decoding and encoding overlapped with the network
  (the default) and without; ``--clip`` times a video of your own instead (its frame rate,
  constant or variable with the shortest and longest frame interval, is printed with it);
* MMSD-Net's time per frame relative to EDVR of the same width, from the forward rows of
  this run;
* with ``--sizes``: peak RSS and frames/s against the input size (`restore_file`, each in a fresh
  process, ``--size-frames`` frames of the synthesized clip resized to each size, silent), for each
  ``--tiles`` setting (``default``: the Restorer's tiling, 0: whole frames), interleaved
  ``--size-repeats`` times; the guard on large outputs is off (as ``--force``).
* with ``--train-steps K``: seconds per training step (forward, L1 + AU loss, backward, Adam;
  batch 8 of 32x32 LR patches, as `mmsd train` runs by default), median of K.

Models: every shipped model (`mmsd models`) with its weights, and the named ``small`` and
``paper`` configs of each network (`mmsd.models.load_config`) with random weights (speed
does not depend on the values); ``edvr-small`` has the width of ``mmsd-small`` (C = 32),
``edvr-paper`` that of ``mmsd-paper`` (C = 64). Timings are medians of repeated runs; the
machine's load average before and after is in the JSON: other jobs on the CPU move every figure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmsd.errors import MmsdError, MmsdWarning
from mmsd.media.fileio import atomic_path
from mmsd.models import MODELS, RestorationOutput, build_model, load_config, parse_overrides, weights
from mmsd.models.precision import autocast, has_fast_bf16
from mmsd.restore.restorer import Restorer, set_threads

LR_HW = (72, 120)  # (H, W)
CONFIG_NAMES = ("small", "paper")
PRECISIONS = ("fp32", "bf16")
E2E_DEFAULT = ("bicubic", "mmsd-small")


@dataclass
class Entry:
    """One network to time: a label, its architecture and config, and a weights file if shipped."""

    label: str
    arch: str
    config: dict
    weights: Path | None = None  # None: random weights

    def build(self) -> nn.Module:
        network = build_model(self.arch, self.config)
        if self.weights is not None:
            network.load_state_dict(weights.read_model(self.weights)[2])
        return network.eval()


def entries(archs: list[str], config_names: list[str], variants: list[list[str]] = ()) -> list[Entry]:
    """Shipped models first, then the random-weight configs of each architecture, each also with the
    overrides of every variant (KEY=VALUE items, labelled 'ARCH-CONFIG KEY=VALUE,...'). A bad variant
    raises ValueError."""
    found = []
    for path in sorted(weights.SHIPPED_DIR.glob("*.safetensors")):
        arch, config, _, _ = weights.read_model(path)
        if arch in archs:
            found.append(Entry(f"{path.stem} (shipped)", arch, config, path))
    for arch in archs:
        if arch == "bicubic":  # nothing to configure
            found.append(Entry("bicubic", "bicubic", dataclasses.asdict(load_config("paper", model="bicubic"))))
            continue
        for name in config_names:
            found.append(Entry(f"{arch}-{name}", arch, dataclasses.asdict(load_config(name, model=arch))))
            for variant in variants:
                config = load_config(name, model=arch, **parse_overrides(variant))
                found.append(Entry(f"{arch}-{name} {','.join(variant)}", arch, dataclasses.asdict(config)))
    return found


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first calls pick kernels and grow the allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _random_inputs(config: dict, batch: int, size: tuple[int, int] = LR_HW
                   ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """lr (B, T, 3, H, W) of `size` (H, W), and mfcc (B, T, K, M) and emotion (B,) if the network uses them."""
    g = torch.Generator().manual_seed(0)
    t = 2 * int(config.get("radius", 2)) + 1
    lr = torch.rand(batch, t, 3, *size, generator=g)
    mfcc = torch.randn(batch, t, int(config.get("mfcc_per_frame", 4)), int(config.get("n_mfcc", 20)), generator=g)
    emotion = torch.randint(0, 15, (batch,), generator=g)
    return lr, (mfcc if config.get("audio") else None), (emotion if config.get("emotion") else None)


def time_forward(network: nn.Module, config: dict, *, frames: int, batch: int, precision: str = "fp32") -> float:
    """Frames/s of the plain forward at 120x72, `batch` windows per call."""
    lr, mfcc, emotion = _random_inputs(config, batch)
    calls = max(1, math.ceil(frames / batch))
    with torch.inference_mode(), autocast(precision):
        seconds = _median_seconds(lambda: network(lr, mfcc, emotion), calls)
    return batch / seconds


def time_train_step(network: nn.Module, config: dict, *, steps: int, precision: str = "fp32", batch: int = 8,
                    patch: int = 32) -> float:
    """Median seconds of a training step as `mmsd train` takes it: forward at `precision`, fp32 L1 (+ 0.001
    AU) loss, backward, Adam; `batch` random windows of patch x patch LR crops. Trains `network` in place."""
    lr, mfcc, emotion = _random_inputs(config, batch, (patch, patch))
    g = torch.Generator().manual_seed(1)
    scale = int(config.get("scale", 4))
    hr = torch.rand(batch, 3, scale * patch, scale * patch, generator=g)
    crop = torch.tensor([[0.3, 0.2, 0.3 + patch / LR_HW[1], 0.2 + patch / LR_HW[0]]]).expand(batch, 4)  # (B, 4)
    network.train()
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def step() -> None:
        with autocast(precision):
            out = network(lr, mfcc, emotion, crop=crop)
        loss = F.l1_loss(out.image.float(), hr)
        if out.au is not None:
            loss = loss + 0.001 * out.au.float().square().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return _median_seconds(step, steps)


def time_stream(restorer: Restorer, *, frames: int) -> float:
    """Frames/s of Restorer.restore_frames over `frames` random 120x72 frames (and random MFCC)."""
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (frames, *LR_HW, 3), dtype=np.uint8)
    mfcc = rng.standard_normal((frames, restorer.mfcc_config.per_frame, restorer.mfcc_config.n_mfcc)).astype(np.float32)

    def restore(count: int) -> None:
        for _ in restorer.restore_frames(video[:count], mfcc=mfcc, emotion="happy-strong"):
            pass

    restore(min(frames, restorer.batch_size))  # warm-up
    start = time.perf_counter()
    restore(frames)
    return frames / (time.perf_counter() - start)


def _decode_job(source: str, model: str, threads: int, batch: int, overlap: bool, tile: int | None,
                precision: str, workers: int | None) -> dict:
    """In a fresh process: restore `source` with `model`; the report and this process's peak RSS."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="mmsd-bench-") as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", MmsdWarning)  # bf16 where it is slow: measured on purpose
        restorer = Restorer(model, batch_size=batch, tile=tile, max_output_pixels=None, precision=precision,
                            workers=workers)
        report = restorer.restore_file(source, Path(folder) / "restored.mp4", progress=False,
                                       on_warning=lambda m: None, overlap=overlap)
    plan = restorer.plan(report.height // restorer.scale, report.width // restorer.scale)
    return {"frames": report.frames, "seconds": report.seconds, "fps": report.fps,
            "peak_rss_mb": report.peak_rss_mb, "engine": report.engine, "precision": report.precision,
            "overlap": overlap, "output": [report.width, report.height], "tile": restorer.tile,
            "tiles": len(plan.tiles), "workers": restorer.workers}


def run_decode(source: Path, model: str | Path, *, threads: int, batch: int, overlap: bool = True,
               tile: int | None = None, precision: str = "fp32", workers: int | None = None) -> dict:
    """`_decode_job` in a spawned process, so its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_decode_job, str(source), str(model), threads, batch, overlap, tile, precision,
                           workers).result()


def sized_clip(clip: Path, path: Path, *, width: int, height: int, frames: int) -> Path:
    """The first `frames` frames of `clip` resized to width x height, x264 CRF 40, with its side
    information and no audio: an input of that size for `restore_file`."""
    from mmsd.data.degrade import resize
    from mmsd.media.codec import VideoWriter, probe, read_frames
    from mmsd.media.sideinfo import TAG

    info = probe(clip)
    with VideoWriter(path, width=width, height=height, fps=info.fps, crf=40, preset="fast",
                     metadata={TAG: info.metadata[TAG]}) as writer:
        for frame in itertools.islice(read_frames(clip), frames):
            writer.write(resize(frame, width, height))
    return path


def make_clip(folder: Path) -> Path:
    """A synthesized test-actor clip, 480x288, sent as `mmsd encode` sends it: 120x72, x264 CRF 40,
    AAC and emotion side information. Returns low.mp4."""
    from mmsd import emotions
    from mmsd.data.synth.generate import SynthConfig, write_clip
    from mmsd.media import sideinfo
    from mmsd.sender.encode import encode_file

    state = emotions.parse("happy-strong")
    source = write_clip(SynthConfig(out=folder, actors=(24,), width=480, height=288), 24, state, 1, 1,
                        path=folder / "source.mp4")
    low = folder / "low.mp4"
    encode_file(source, low, side=sideinfo.SideInfo(scale=4, segments=((0, state.id),)), crf=40, progress=False)
    return low


def describe_clip(clip: Path) -> tuple[float, str]:
    """(duration in seconds, "N frames, W x H at <rate>") of a clip; the rate says "variable frame
    rate" with the shortest and longest frame interval when it is one."""
    from mmsd.media.codec import frame_timing, probe

    info, timing = probe(clip), frame_timing(clip)
    duration = info.duration or info.num_frames / float(timing.fps)
    return duration, f"{info.num_frames} frames, {info.width}x{info.height} (W x H) at {timing.describe()}"


def profile_mmsd(network: nn.Module, config: dict, *, batch: int, repeats: int, cached: bool,
                 precision: str = "fp32") -> dict[str, float]:
    """ms per frame of each stage of MMSD-Net's forward, timed with forward hooks. `cached`: as the
    streaming decoder runs it, each window extracting the features of its one new frame only."""
    stages = {
        "video: per-frame features": [network.video.extract],
        "video: offset features": [network.video.align.offset_feat],
        "video: offset conv": [network.video.align.dcn.conv_offset],
        "video: deformable conv": [network.video.align.dcn],  # its offset conv is taken out below
        "video: fuse + trunk": [network.video.fuse, network.video.trunk],
    }
    if config.get("audio"):
        stages["audio: BiLSTM + maps"] = [network.audio]
        stages["A/V fusion"] = [network.av_fusion]
    if config.get("emotion"):
        stages["emotion: AUs, attention, fusion"] = [network.au_generator, network.au_attention,
                                                     network.emotion_fusion]
    stages["reconstruction: residual blocks"] = [network.reconstruction.body]
    stages["reconstruction: x4 upsampler"] = [network.reconstruction.up]
    totals = dict.fromkeys(stages, 0.0)
    started: dict[str, float] = {}

    def enter(name):
        return lambda module, inputs: started.__setitem__(name, time.perf_counter())

    def leave(name):
        return lambda module, inputs, output: totals.__setitem__(
            name, totals[name] + time.perf_counter() - started[name])

    handles = [hook for name, modules in stages.items() for module in modules
               for hook in (module.register_forward_pre_hook(enter(name)), module.register_forward_hook(leave(name)))]
    lr, mfcc, emotion = _random_inputs(config, batch)
    b, t = lr.shape[:2]
    whole = 0.0
    try:
        with torch.inference_mode(), autocast(precision):
            features = network.frame_features(lr.flatten(0, 1)).view(b, t, -1, *LR_HW) if cached else None
            for step in range(repeats + 1):  # step 0 warms up
                if step == 1:
                    totals.update(dict.fromkeys(totals, 0.0))
                start = time.perf_counter()
                if cached:
                    network.frame_features(lr[:, 0])  # (B, C, H, W): the new frame of each window
                network(lr, mfcc, emotion, frame_features=features)
                whole += (time.perf_counter() - start) if step else 0.0
    finally:
        for handle in handles:
            handle.remove()
    ms = {name: 1000 * value / repeats / b for name, value in totals.items()}
    ms["video: deformable conv"] -= ms["video: offset conv"]
    ms["other (bicubic skip, concatenation, checks)"] = 1000 * whole / repeats / b - sum(ms.values())
    ms["total"] = 1000 * whole / repeats / b
    return ms


class _NoNetwork(nn.Module):
    """Returns a black image of the right size: what is left of the decoder is its own work."""

    def forward(self, lr, mfcc=None, emotion=None):
        b, _, _, h, w = lr.shape
        return RestorationOutput(image=lr.new_zeros(b, 3, 4 * h, 4 * w))


def profile_decoder(clip: Path) -> dict[str, float]:
    """ms per frame of what `restore_file` does besides the network, on the clip (after a first
    MFCC call, which builds the filters once per process)."""
    from mmsd.media.audio import MfccConfig, iter_mfcc
    from mmsd.media.codec import VideoWriter, frame_timing, iter_audio, read_frames

    timing = frame_timing(clip)
    next(iter_mfcc(iter_audio(clip, MfccConfig.sample_rate), timing))  # the first call builds the filters
    timings: dict[str, float] = {}
    start = time.perf_counter()
    frames = list(read_frames(clip))
    n = len(frames)
    timings["decode the LR video (PyAV)"] = time.perf_counter() - start
    start = time.perf_counter()
    mfcc = list(itertools.islice(iter_mfcc(iter_audio(clip, MfccConfig.sample_rate), timing), n))
    timings["decode audio + MFCC"] = time.perf_counter() - start
    window = Restorer(_NoNetwork(), config={"radius": 2, "audio": True, "emotion": True})
    start = time.perf_counter()
    list(window.restore_frames(frames, mfcc=mfcc, emotion="happy-strong"))
    timings["windows, uint8 <-> float, batching"] = time.perf_counter() - start
    start = time.perf_counter()
    restored = list(Restorer("bicubic").restore_frames(frames))
    timings["bicubic network (for scale)"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="mmsd-bench-") as folder:
        start = time.perf_counter()
        with VideoWriter(Path(folder) / "out.mp4", width=restored[0].shape[1], height=restored[0].shape[0],
                         timing=timing, crf=12, preset="fast") as writer:
            for frame in restored:
                writer.write(frame)
        timings["x264 encode of the 480x288 output (CRF 12, fast)"] = time.perf_counter() - start
    return {name: 1000 * seconds / n for name, seconds in timings.items()}


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.rjust(width) if i else cell.ljust(width)
                     for i, (cell, width) in enumerate(zip(cells, widths)))


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print(_row(header, widths))
    for r in rows:
        print(_row([str(c) for c in r], widths))


def cpu_name() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
    parser.add_argument("--threads", type=int, help="torch (and ONNX Runtime) threads (default: torch's, "
                                                    f"{torch.get_num_threads()} here)")
    parser.add_argument("--workers", type=int,
                        help="frames restored at once by the torch engine, each on its share of the threads (default:"
                             " the Restorer's, one per thread for a centred model on the CPU; 1: one frame at a time)")
    parser.add_argument("--engines", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS,
                        help="arithmetic of the torch engine's forwards, each timed (default: fp32 bf16; "
                             "bf16 is autocast, fast only with AMX/AVX512-BF16)")
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
            "precisions": precisions, "cpu": cpu_name(), "fast_bf16": has_fast_bf16("cpu"),
            "load_average_before": list(os.getloadavg())}
    if "onnx" in args.engines:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    plural = "s" if threads > 1 else ""
    print(f"mmsd bench: {threads} thread{plural}, {os.cpu_count()} CPUs ({meta['cpu']}, "
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
            network = entry.build()  # afresh: the Restorer below makes it channels-last
            result = {"label": entry.label, "arch": entry.arch, "weights": str(entry.weights or "random"),
                      "params": sum(p.numel() for p in network.parameters()), "precision": precision}
            if "torch" in args.engines:
                result["forward_fps"] = time_forward(network, entry.config, frames=args.frames, batch=args.batch,
                                                     precision=precision)
                restorer = Restorer(network, config=entry.config, batch_size=args.batch, precision=precision,
                                    workers=args.workers)
                result["stream_fps"] = time_stream(restorer, frames=args.frames)
                result["workers"] = restorer.workers
            if args.train_steps and entry.arch != "bicubic":
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
        models = [("torch", source, precision) for precision in precisions] if "torch" in args.engines else []
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
        if entry.arch != "mmsd":
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
