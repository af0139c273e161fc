"""Timers of the soft decoders (what `mmsd bench` runs): the forward, the stream, the file path in a
fresh process, a training step, and MMSD-Net stage by stage. Benchmarks are scripts that print
figures; no test asserts on them.

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

import concurrent.futures
import dataclasses
import itertools
import math
import multiprocessing
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

from mmsd.errors import MmsdWarning
from mmsd.models import RestorationOutput, build_model, load_config, parse_overrides, weights
from mmsd.models.precision import autocast
from mmsd.restore.files import OUTPUT_CRF, OUTPUT_PRESET
from mmsd.restore.restorer import Restorer

LR_HW = (72, 120)  # (H, W)
CONFIG_NAMES = ("small", "paper")
PRECISIONS = ("fp32", "bf16")


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
                         timing=timing, crf=OUTPUT_CRF, preset=OUTPUT_PRESET) as writer:
            for frame in restored:
                writer.write(frame)
        timings[f"x264 encode of the 480x288 output (CRF {OUTPUT_CRF}, {OUTPUT_PRESET})"] = time.perf_counter() - start
    return {name: 1000 * seconds / n for name, seconds in timings.items()}


def cpu_facts() -> dict:
    """What a speed figure is keyed by: the CPU's name, kind, speed flags, how /proc/cpuinfo describes its
    cores and threads, any ISA limit set in the environment, and whether bf16 is fast on it."""
    from mmsd.models.precision import cpu_flags, cpu_kind, cpu_topology, has_fast_bf16, isa_limits

    return {"cpu": cpu_name(), "cpu_kind": cpu_kind(), "cpu_flags": list(cpu_flags()), "cpu_topology": cpu_topology(),
            "isa_limits": isa_limits(), "fast_bf16": has_fast_bf16("cpu")}


def describe_cpu(facts: dict) -> str:
    """`cpu_facts` in one line: "AMD EPYC, 2 cores x 1 thread, AVX-512 BF16 (no AMX): avx512_bf16 ..."."""
    limits = "".join(f", {k}={v}" for k, v in facts["isa_limits"].items())
    return (f"{facts['cpu']}, {facts['cpu_topology'] or 'topology unknown'}, {facts['cpu_kind']}{limits}: "
            f"{' '.join(facts['cpu_flags']) or 'flags unknown'}")


def cpu_name() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
