"""The Restorer API: streaming soft decoding of a decoded low-resolution video.

    from mmsd.restore.restorer import Restorer

    restorer = Restorer("mmsd")                      # shipped name, a .safetensors path, or "bicubic"
    report = restorer.restore_file("low.mp4", "restored.mp4")
    print(report.frames, report.fps)

Around this class: `mmsd.restore.loading` (the models by name, loading weights), `mmsd.restore.threads`
(read-ahead, in-order encoding, frame workers), `mmsd.restore.files` (the file path of `restore_file`),
`mmsd.restore.tiling` and `mmsd.restore.onnx_engine`.

Choices:

* Window. Frame t is restored from frames t-N..t+N (N = the model config's ``radius``;
  ``causal`` models use t-2N..t), indices outside the video replicated from the first or
  last frame, exactly as the training cache builds windows. MFCC windows follow the
  same indices.
* Streaming. Frames, audio and MFCC are pulled lazily: at most batch + 2N frames (and
  the audio of their windows) are held at once, so memory does not grow with length.
* Inputs a model does not use (config ``audio`` / ``emotion`` false or absent) are
  passed as None. A model that uses audio gets all-zero MFCC for a file without audio
  (what `mmsd.media.audio` gives for missing audio, and what training saw for silent clips);
  one that uses emotion gets the neutral state when none is given.
* Output. x264 at CRF 12 (preset veryfast) by default: the restoration, not the re-encode,
  should decide the quality (`mmsd.restore.files.OUTPUT_PRESET` says why veryfast). Every frame keeps its input's timestamp, at a constant or a
  variable frame rate, and each frame's MFCC is cut at that time (`mmsd.media.timing`). The
  input's first audio stream is copied packet for packet (no re-encode) into the same
  atomic write, interleaved with the video.
* Per-frame features. A network with a ``frame_features`` method (MMSD-Net) extracts each
  frame's features once, as the frame enters the window, and every window it is in reuses
  them (the network's forward would extract them 2N+1 times); the output is the same.
* Engines. ``torch`` runs the network in PyTorch (inference mode; on the CPU with
  channels-last weights, which moves the network given as an ``nn.Module`` too). ``onnx`` runs an ONNX
  graph with ONNX Runtime on the CPU: a ``.onnx`` file written by `mmsd export --onnx`, or
  a weights name or file exported on first use into a cache (see `mmsd.restore.onnx_engine`). It
  recomputes the per-frame features in every window. See docs/speed.md for the figures.
* Tiles. A frame larger than ``tile`` input pixels a side is restored in overlapping tiles
  whose outputs are blended (`mmsd.restore.tiling`), so memory follows the tile, not the frame: each
  tile has its own 2N+1 window (and per-frame features, cached per tile while they fit
  ``TILE_CACHE_BYTES``), MMSD-Net's audio maps are cut to the tile's place in the frame, and
  its AU generator reads the whole frame's mean of f_V (a first pass over the tiles). The
  overlap covers the network's receptive field, so the result equals the whole frame's up to
  float rounding (one grey level). The ONNX graphs have no input for the tile's place, so they
  tile only networks without audio and emotion branches. A frame that fits one tile is
  restored whole, exactly as before. Outputs over ``MAX_OUTPUT_PIXELS`` (3840x2160) are
  refused unless ``max_output_pixels=None``: such an input is not the low-resolution stream
  this tool is for.
* Workers. On the CPU, a centred model restores ``workers`` frames at once (default: one per torch
  thread), each on a thread of its own with one torch thread: a batch-1 forward of these small
  networks leaves a second core mostly idle (bf16, Xeon: radius 1 streams 22 fps on one thread, 25 on
  two, 42 as two workers of one thread; docs/speed.md). Every frame is computed as alone, so the output
  does not depend on the number of workers; the latency grows by workers - 1 frames, which is why
  causal (low-latency) models default to one worker, and so do GPUs and the onnx engine. Each
  worker holds the working memory of one frame (of one tile, for a tiled frame).
* Precision. ``auto`` (the default) runs the torch engine's forwards in bf16 autocast where the
  hardware has fast bf16 (AMX or AVX512-BF16 CPUs, bf16 GPUs); elsewhere on the CPU MMSD-Net's
  convolutions in int8 when the model has a calibration (`mmsd.models.quantize`), else fp32, as
  `mmsd.models.precision` decides; the weights stay fp32. The onnx engine runs fp32.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import mmsd.models as models
from mmsd import emotions
from mmsd.errors import MmsdError
from mmsd.media.audio import MfccConfig, RunningCmvn, model_norm
from mmsd.models import quantize
from mmsd.models.precision import autocast, resolve as resolve_precision
from mmsd.restore import tiling
from mmsd.restore.files import OUTPUT_CRF, OUTPUT_PRESET, DecodeReport, restore_file
from mmsd.restore.loading import DEFAULT_MODEL, int8_calibration, load_network, to_onnx
from mmsd.restore.threads import Workers, run_on_one_thread

ENGINES = ("torch", "onnx")
# Tiles of 192 input pixels keep the default model's peak memory near 1 GB at any input size
# (docs/speed.md), and the paper's 120x72 frames fit one tile.
DEFAULT_TILE = 192
TILE_CACHE_BYTES = 384 * 2**20  # per-frame features and f_V of the tiles, kept while they fit this
MAX_OUTPUT_WIDTH, MAX_OUTPUT_HEIGHT = 3840, 2160  # 4K UHD
MAX_OUTPUT_PIXELS = MAX_OUTPUT_WIDTH * MAX_OUTPUT_HEIGHT


class Restorer:
    """A restoration network with its window, audio and emotion settings, ready for inference.

    Args:
        model: a shipped name (``shipped_models()``), a path to a model file written by
            `mmsd.models.weights.save_model`, ``"bicubic"``, a ``.onnx`` file written by `mmsd export`,
            or an ``nn.Module`` (then ``config`` is required: a dict with at least ``radius``
            and ``causal``). For the torch engine on the CPU the network is prepared in place:
            channels-last, and MMSD-Net's audio encoder set to run on one thread.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        batch_size: frames restored per forward pass. None: 1 on the CPU (per frame as fast as
            batch 4 or faster, and the lowest latency; docs/speed.md), 4 on a GPU.
        engine: ``"torch"``, or ``"onnx"`` (ONNX Runtime, CPU, as many threads as
            ``torch.get_num_threads()``). None: ``onnx`` for a ``.onnx`` file, else ``torch``.
        tile: input pixels per side of the tiles a frame is restored in (`mmsd.restore.tiling`); 0: the whole
            frame at once. None: ``DEFAULT_TILE`` (more for a network whose receptive field needs it).
            A frame that fits one tile is restored whole, as with 0.
        max_output_pixels: refuse (MmsdError, before restoring anything) a video whose output would
            have more pixels than this; None: no limit.
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"int8"`` (`mmsd.models.precision`; bf16 and int8
            with the torch engine only, int8 on the CPU with a calibration). The resolved one is
            ``self.precision``.
        workers: frames restored at once, each on a thread of its own with torch's threads shared
            among them (at least one each); 1: one frame at a time on all of torch's threads, in the
            caller's thread. None: one per torch thread for a centred model with the torch engine on
            the CPU, else 1 (causal models keep their zero latency, GPUs batch instead).
        calibration: the int8 calibration file of the model (`mmsd.models.quantize`). None: the one kept
            beside a named or file model's weights, if any (an ``nn.Module`` has none unless given).
    """

    def __init__(
        self,
        model: str | os.PathLike | nn.Module = DEFAULT_MODEL,
        *,
        config: dict | None = None,
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
        engine: str | None = None,
        tile: int | None = None,
        max_output_pixels: int | None = MAX_OUTPUT_PIXELS,
        precision: str = "auto",
        workers: int | None = None,
        calibration: str | os.PathLike | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        if workers is not None and workers < 1:
            raise MmsdError(f"workers must be >= 1, got {workers}")
        onnx_file = not isinstance(model, nn.Module) and str(model).endswith(".onnx")
        self.engine = engine or ("onnx" if onnx_file else "torch")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; known: {', '.join(ENGINES)}")
        if onnx_file and self.engine != "onnx":
            raise ValueError(f"{model} is an ONNX graph: it runs with engine 'onnx'")
        self.device = _device(device)
        if self.engine == "onnx" and self.device.type != "cpu":
            raise MmsdError(f"the onnx engine runs on the CPU, not on {self.device}")
        self.batch_size = batch_size or (1 if self.device.type == "cpu" else 4)
        if self.engine == "onnx" and precision not in ("auto", "fp32"):
            raise ValueError(f"precision {precision!r}: the onnx engine runs fp32 (use auto or fp32)")
        # what the user asked for ('mmsd-real', a path): reports name it; self.name is the architecture
        self.label = str(model) if not isinstance(model, nn.Module) else type(model).__name__.lower()
        if onnx_file:
            from mmsd.restore.onnx_engine import OnnxNetwork

            network = OnnxNetwork(model)
            self.name, self.config = network.name, network.config
        else:
            if isinstance(model, nn.Module):
                if config is None:
                    raise ValueError("Restorer(nn.Module) needs config= (a dict with radius and causal)")
                self.name, self.config, network = type(model).__name__.lower(), dict(config), model
            else:
                self.name, self.config, network = load_network(model)
            if calibration is None and self.engine == "torch" and not isinstance(model, nn.Module):
                calibration = int8_calibration(model)
            network = network.to(self.device).eval()
            if self.engine == "torch" and self.device.type == "cpu":
                # oneDNN's convolutions run 10-90% faster on NHWC weights and activations (docs/speed.md)
                network = network.to(memory_format=torch.channels_last)
                audio_encoder = getattr(getattr(network, "audio", None), "encoder", None)
                if isinstance(audio_encoder, nn.Module):
                    run_on_one_thread(audio_encoder)
            if self.engine == "onnx":
                network = to_onnx(network, self.name, self.config, cache=not isinstance(model, nn.Module))
        self.precision = ("fp32" if self.engine == "onnx" else
                          resolve_precision(precision, self.device, int8_ready=calibration is not None))
        if self.precision == "int8" and calibration is None and self.name == "bicubic":
            self.precision = "fp32"  # nothing to quantize
        if self.precision == "int8":
            network = quantize.quantize_with(network, calibration, self.label)
        self.model = network
        # MMSD-Net's per-frame features, computed once per frame instead of once per window
        self._frame_features = getattr(network, "frame_features", None) if self.engine == "torch" else None
        self.radius = int(self.config.get("radius", 2))
        self.causal = bool(self.config.get("causal", False))
        self.scale = int(self.config.get("scale", 4))
        self.uses_audio = bool(self.config.get("audio", False))
        self.uses_emotion = bool(self.config.get("emotion", False))
        self.mfcc_norm = model_norm(self.config)
        self.mfcc_config = MfccConfig(
            per_frame=int(self.config.get("mfcc_per_frame", MfccConfig.per_frame)),
            n_mfcc=int(self.config.get("n_mfcc", MfccConfig.n_mfcc)),
        )
        self._set_tiling(network, tile, max_output_pixels)
        parallel = self.engine == "torch" and self.device.type == "cpu" and not self.causal
        self.workers = workers or (torch.get_num_threads() if parallel else 1)
        self._features_lock = threading.Lock()  # workers share the window's per-frame features

    def _set_tiling(self, network, tile: int | None, max_output_pixels: int | None) -> None:
        arch = next((name for name, (_, cls) in models.MODELS.items() if isinstance(network, cls)), self.name)
        # LR pixels around a tile's share of the frame that its output depends on (mmsd.restore.tiling)
        self.context = tiling.receptive_radius(arch, self.config)
        least = tiling.min_tile(self.context)
        if tile is None:
            tile = max(DEFAULT_TILE, 2 * tiling.overlap(self.context))
        elif tile < 0:
            raise MmsdError(f"tile must be >= 0 input pixels (0: whole frames), got {tile}")
        elif 0 < tile < least:
            raise MmsdError(f"tile {tile} is too small for model {self.name}: its receptive field reaches "
                            f"{self.context} pixels, so tiles need at least {least} input pixels a side")
        self.tile = tile
        self.max_output_pixels = max_output_pixels
        # the AU generator pools f_V over the frame: tiles share the frame's mean (computed in a first pass)
        self._pools = self.engine == "torch" and self.uses_emotion and hasattr(network, "video_features")
        self._takes_crop = self.engine == "torch" and self.uses_audio and arch in models.MODELS
        self._plans: dict[tuple[int, int], tiling.Plan] = {}

    @property
    def latency_frames(self) -> int:
        """Frames the decoder must receive after frame t before it can output frame t: the
        window's look-ahead (N centred, 0 causal) plus the rest of the frames restored at once
        (batch size x workers - 1)."""
        return (0 if self.causal else self.radius) + self.batch_size * self.workers - 1

    @property
    def offsets(self) -> range:
        """Window offsets relative to the restored frame: -N..N, or -2N..0 when causal."""
        return range(-2 * self.radius, 1) if self.causal else range(-self.radius, self.radius + 1)

    def restore_frames(
        self,
        frames: Iterable[np.ndarray],
        *,
        mfcc: Iterable[np.ndarray] | None = None,
        emotion: int | str | emotions.EmotionState | Iterable[int] | None = None,
    ) -> Iterator[np.ndarray]:
        """Restore a stream of frames, lazily, one output per input frame.

        Args:
            frames: (H, W, 3) uint8 RGB LR frames, all the same size.
            mfcc: per-frame raw MFCC (`mmsd.media.audio.mfcc_for_frames`), (K, M) float32 each (an
                iterable or a (T, K, M) array), at least as many as frames; normalised here as the
                model's config says (mfcc_norm). None: silence (zeros) if the model uses audio.
            emotion: one state for every frame (id, name or EmotionState), or an iterable of
                per-frame state ids. None: neutral if the model uses emotion.
        Yields:
            (scale * H, scale * W, 3) uint8 RGB restored frames, in order.
        """
        frames = iter(frames)
        features = iter(mfcc) if (self.uses_audio and mfcc is not None) else None
        if features is not None and self.mfcc_norm == "cmvn":
            features = map(RunningCmvn(), features)
        states = _state_iter(emotion) if self.uses_emotion else None
        lookahead = 0 if self.causal else self.radius
        window: deque[_WindowFrame] = deque()
        base = 0  # index of window[0]
        total: int | None = None  # number of frames, once the input has run out
        done = 0  # frames handed to the workers so far
        size: tuple[int, int] | None = None  # (H, W) of the first frame
        with Workers(self.workers) as workers:
            while True:
                while total is None and base + len(window) < done + self.batch_size + lookahead:
                    frame = next(frames, None)
                    if frame is None:
                        total = base + len(window)
                        break
                    index = base + len(window)
                    frame = _check_frame(frame, index, size)
                    if size is None:
                        self.check_output_size(*frame.shape[:2])
                        self.plan(*frame.shape[:2])
                    size = frame.shape[:2]
                    vectors = self._next_mfcc(features, index) if self.uses_audio else None
                    state = next(states) if states is not None else None
                    pixels = torch.from_numpy(frame).permute(2, 0, 1)  # (3, H, W) uint8
                    window.append(_WindowFrame(pixels, vectors, state))
                available = total if total is not None else base + len(window) - lookahead
                count = min(self.batch_size, available - done)
                if count <= 0:
                    break
                last = (total if total is not None else base + len(window)) - 1
                rows = [[window[min(max(t + o, 0), last) - base] for o in self.offsets]
                        for t in range(done, done + count)]  # B windows of T frames
                for restored in workers.submit(self._run, rows):  # (B, sH, sW, 3) each
                    yield from restored
                done += count
                while base < done + self.offsets[0]:  # frames no later window needs
                    window.popleft()
                    base += 1
            for restored in workers.drain():
                yield from restored

    def check_output_size(self, height: int, width: int) -> None:
        """MmsdError if frames of height x width input pixels restore to more than max_output_pixels."""
        out_w, out_h = self.scale * width, self.scale * height
        if self.max_output_pixels is not None and out_w * out_h > self.max_output_pixels:
            raise MmsdError(
                f"the input is {width}x{height} (W x H), so the output would be {out_w}x{out_h}, larger than "
                f"{MAX_OUTPUT_WIDTH}x{MAX_OUTPUT_HEIGHT}: this tool restores low-resolution streams (e.g. 120x72 "
                f"from `mmsd encode`); downscale the input (`mmsd encode`), or pass --force to restore it anyway "
                f"(slow, memory bounded by --tile)"
            )

    def plan(self, height: int, width: int) -> tiling.Plan:
        """The tiling of frames of height x width input pixels (one tile when the frame fits)."""
        key = (height, width)
        if key not in self._plans:
            plan = tiling.plan(height, width, tile=self.tile, context=self.context, scale=self.scale)
            if len(plan.tiles) > 1 and self.engine == "onnx" and (self.uses_audio or self.uses_emotion):
                raise MmsdError(
                    f"the onnx engine cannot restore {width}x{height} frames in tiles of {self.tile} with model "
                    f"{self.name}: its graph has no input for a tile's place in the frame, which the audio and "
                    f"emotion branches need; use the torch engine, or --tile 0 (memory grows with the frame)")
            self._plans[key] = plan
        return self._plans[key]

    def _next_mfcc(self, features: Iterator[np.ndarray] | None, index: int) -> np.ndarray:
        k, m = self.mfcc_config.per_frame, self.mfcc_config.n_mfcc
        if features is None:
            return np.zeros((k, m), np.float32)
        vectors = next(features, None)
        if vectors is None:
            raise ValueError(f"the MFCC features ran out at frame {index}")
        vectors = np.asarray(vectors, np.float32)
        if vectors.shape != (k, m):
            raise ValueError(f"frame {index}: expected MFCC of shape (K={k}, M={m}), got {vectors.shape}")
        return vectors

    @torch.inference_mode()
    def _run(self, rows: list[list[_WindowFrame]]) -> np.ndarray:
        """Restore the centre frames of `rows`, B windows of T frames: (B, sH, sW, 3) uint8."""
        with autocast(self.precision, self.device):
            return self._restore(rows)

    def _restore(self, rows: list[list[_WindowFrame]]) -> np.ndarray:
        count, t = len(rows), len(self.offsets)
        flat = [frame for row in rows for frame in row]
        mfcc = None
        if self.uses_audio:
            mfcc = torch.from_numpy(np.stack([frame.mfcc for frame in flat])).to(self.device)  # (B*T, K, M)
            mfcc = mfcc.view(count, t, *mfcc.shape[1:])  # (B, T, K, M)
        emotion = None
        if self.uses_emotion:
            centre = self.offsets.index(0)
            emotion = torch.tensor([row[centre].state for row in rows], device=self.device)  # (B,)
        plan = self.plan(*flat[0].pixels.shape[1:])
        if len(plan.tiles) > 1:
            return self._run_tiled(flat, count, mfcc, emotion, plan)
        lr = _to_float(torch.stack([frame.pixels for frame in flat]).to(self.device))  # (B*T, 3, H, W)
        lr = lr.view(count, t, *lr.shape[1:])  # (B, T, 3, H, W)
        if self._frame_features is None:
            image = self.model(lr, mfcc=mfcc, emotion=emotion).image  # (B, 3, sH, sW)
        else:
            with self._features_lock:  # each frame's once, whichever worker needs it first
                new = _unique(frame for frame in flat if frame.features is None)
                if new:
                    pixels = _to_float(torch.stack([frame.pixels for frame in new]).to(self.device))  # (N, 3, H, W)
                    for frame, features in zip(new, self._frame_features(pixels)):
                        frame.features = features  # (C, H, W)
            features = torch.stack([frame.features for frame in flat])  # (B*T, C, H, W)
            features = features.view(count, t, *features.shape[1:])  # (B, T, C, H, W)
            image = self.model(lr, mfcc=mfcc, emotion=emotion, frame_features=features).image  # (B, 3, sH, sW)
        return _to_uint8(image)

    def _run_tiled(self, flat: list[_WindowFrame], count: int, mfcc: torch.Tensor | None,
                   emotion: torch.Tensor | None, plan: tiling.Plan) -> np.ndarray:
        """`_run` tile by tile (mmsd.restore.tiling); flat: the B windows' T frames. Returns (B, sH, sW, 3) uint8."""
        t, s = len(self.offsets), self.scale
        pixels = torch.stack([frame.pixels for frame in flat])  # (B*T, 3, H, W) uint8
        # per-frame features and f_V per tile are kept while they fit the budget, else recomputed
        channels = int(self.config.get("channels", 64))
        held = len(_unique(flat)) * self.workers  # the frames of every worker's windows
        keep = channels * 4 * plan.pixels * (held + count) <= TILE_CACHE_BYTES

        def inputs(k: int, tile: tiling.Tile, with_features: bool) -> tuple[torch.Tensor, dict]:
            rows, cols = slice(tile.rows.start, tile.rows.stop), slice(tile.cols.start, tile.cols.stop)
            lr = _to_float(pixels[:, :, rows, cols].to(self.device))  # (B*T, 3, h, w)
            lr = lr.view(count, t, *lr.shape[1:])  # (B, T, 3, h, w)
            extra = {}
            if self._takes_crop:  # the audio maps of this tile's part of the frame
                extra["crop"] = torch.tensor([tile.box], device=self.device).expand(count, 4)  # (B, 4)
            if with_features and keep and self._frame_features is not None:
                features = self._tile_features(flat, k, rows, cols)  # (B*T, C, h, w)
                extra["frame_features"] = features.view(count, t, *features.shape[1:])  # (B, T, C, h, w)
            return lr, extra

        pooled, video = None, {}
        if self._pools:  # pass 1: f_V of every tile, and its mean over the frame
            total = None
            for k, tile in enumerate(plan.tiles):
                lr, extra = inputs(k, tile, with_features=True)
                f_v = self.model.video_features(lr, extra.get("frame_features"))  # (B, C, h, w)
                weight = (tile.row_input[:, None] * tile.col_input[None, :]).to(f_v)  # (h, w)
                part = (f_v * weight).sum(dim=(2, 3))  # (B, C)
                total = part if total is None else total + part
                if keep:
                    video[k] = f_v
            pooled = total / (plan.height * plan.width)  # (B, C)
        out = np.empty((count, s * plan.height, s * plan.width, 3), np.uint8)
        strip, top = None, 0  # output rows top.. of the current row of tiles, accumulated in float
        for k, tile in enumerate(plan.tiles):
            if tile.cols.start == 0:  # a new row of tiles: rows above it are complete
                start = s * tile.rows.start
                rest = None
                if strip is not None:
                    out[:, top:start] = _to_uint8(strip[:, :, : start - top])
                    rest = strip[:, :, start - top:]
                height = s * (tile.rows.stop - tile.rows.start)
                strip = torch.zeros(count, 3, height, s * plan.width, device=self.device)  # (B, 3, s*h, sW)
                if rest is not None:
                    strip[:, :, : rest.shape[2]] = rest
                top = start
            lr, extra = inputs(k, tile, with_features=k not in video)
            if self._pools:
                extra |= {"video_features": video.pop(k, None), "pooled": pooled}
            image = self.model(lr, mfcc=mfcc, emotion=emotion, **extra).image  # (B, 3, s*h, s*w)
            weight = (tile.row_weight[:, None] * tile.col_weight[None, :]).to(image)  # (s*h, s*w)
            strip[:, :, : image.shape[2], s * tile.cols.start: s * tile.cols.stop] += image * weight
        out[:, top:] = _to_uint8(strip)
        return out

    def _tile_features(self, flat: list[_WindowFrame], k: int, rows: slice, cols: slice) -> torch.Tensor:
        """The per-frame features of tile k of each frame in `flat`, computed once per frame and tile:
        Tensor[len(flat), C, h, w]."""
        with self._features_lock:
            new = _unique(frame for frame in flat if (frame.tile_features or {}).get(k) is None)
            if new:
                crops = torch.stack([frame.pixels[:, rows, cols] for frame in new])  # (N, 3, h, w) uint8
                crops = _to_float(crops.to(self.device))
                for frame, features in zip(new, self._frame_features(crops)):
                    frame.tile_features = frame.tile_features or {}
                    frame.tile_features[k] = features  # (C, h, w)
        return torch.stack([frame.tile_features[k] for frame in flat])

    def restore_file(
        self,
        src: str | os.PathLike,
        dst: str | os.PathLike,
        *,
        emotion: int | str | emotions.EmotionState | None = None,
        progress: bool = True,
        crf: float = OUTPUT_CRF,
        preset: str = OUTPUT_PRESET,
        on_warning: Callable[[str], None] | None = None,
        overlap: bool = True,
    ) -> DecodeReport:
        """Restore every frame of ``src`` into ``dst`` (x264 + the original audio stream, copied).

        The emotion comes from ``emotion`` if given, else from the file's side information,
        else neutral (with a warning if the model uses it). Warnings go to ``on_warning``
        (default: `warnings.warn`). Writes atomically: on any error or KeyboardInterrupt
        nothing is left at ``dst``. With ``overlap``, decoding runs ahead and encoding runs
        behind the network, each on a thread of its own (PyAV releases the GIL while FFmpeg works).
        """
        return restore_file(self, src, dst, emotion=emotion, progress=progress, crf=crf, preset=preset,
                            on_warning=on_warning, overlap=overlap)


def _unique(frames: Iterable[_WindowFrame]) -> list[_WindowFrame]:
    """`frames` without repeats (a window near the ends of the video repeats its first or last frame), in order."""
    return list({id(frame): frame for frame in frames}.values())


@dataclass
class _WindowFrame:
    """One decoded frame held in the sliding window, with what belongs to it."""

    pixels: torch.Tensor  # (3, H, W) uint8
    mfcc: np.ndarray | None  # (K, M), when the model uses audio
    state: int | None  # emotion state id, when the model uses emotion
    features: torch.Tensor | None = None  # (C, H, W), the network's frame_features once computed
    tile_features: dict[int, torch.Tensor] | None = None  # tile number -> (C, h, w), when tiled


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float images in [0, 1] (clamped here; bf16 widened first) -> (B, H, W, 3) uint8 frames."""
    return image.float().clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float32 in [0, 1], as the networks were trained."""
    return frames.float().div_(255.0)


def _device(device: str | torch.device) -> torch.device:
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MmsdError(f"device {device} requested, but CUDA is not available here (use --device cpu)")
    return device


def _state_iter(emotion) -> Iterator[int]:
    """Endless state ids of one state, or the ids of a per-frame iterable (ValueError when it runs out)."""
    if emotion is None:
        emotion = emotions.NEUTRAL
    if isinstance(emotion, (int, np.integer, str, emotions.EmotionState)):
        state = emotions.parse(emotion).id
        while True:
            yield state
    count = 0
    for value in emotion:
        yield emotions.parse(value).id
        count += 1
    raise ValueError(f"the per-frame emotion states ran out after {count} frames")


def _check_frame(frame, index: int, size: tuple[int, int] | None) -> np.ndarray:
    """frame as a (H, W, 3) uint8 array; ValueError if it is not one or not of the first frame's (H, W)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame {index}: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    if size is not None and frame.shape[:2] != size:
        raise ValueError(f"frame {index}: size {frame.shape[1]}x{frame.shape[0]} (W x H) differs from the"
                         f" first frame's {size[1]}x{size[0]}")
    return frame


