"""The sender-side emotion classifier behind `mmsd encode --emotion auto` (issue 6).

A small CNN reads one gray face crop and gives the probabilities of the 15 states of
`mmsd.emotions`; over a video, the per-frame probabilities are smoothed in time and
run-length coded into the (first frame, state id) segments of `mmsd.media.sideinfo`.

Legend: B crops in a batch, S the network's input side (64), X = S + 2 * margin the
context crop's side (72), N sampled frames. Boxes are (x0, y0, x1, y1) in pixels of
the frame they were found in.

Face crop: OpenCV's Haar frontal-face cascade (`mmsd.data.degrade.detect_face`, the detector
`mmsd prepare` uses) gives the largest face of the full-quality RGB frame. Its box runs
from mid-forehead to just under the lips, so the crop is a square `zoom` (1.15) times the
box side, centred `shift` (0.08) box sides below the box centre: brows to chin. The crop
is converted to gray and area-resized to a X x X context crop; the network sees its
centre S x S (training moves, zooms, turns and mirrors the view inside the context).
Gray is enough: the shapes of brows, eyes and mouth carry the expression, and each crop
is standardised to zero mean and unit variance inside the network, so lighting and skin
tone matter less. The detector looks only for faces of at least `haar_min_face` (0.2) of
the frame's short side: a talking head is larger, and smaller sizes cost time.

Track (`EmotionClassifier.track`): every k-th frame is classified, k = round(fps /
samples_per_second); frames where Haar finds no face are skipped. `segment_track`
averages the probabilities over a centred window, run-length codes the most probable
state, and merges every segment shorter than the minimum into the neighbour whose state
its frames found more probable, so a file carries few segments.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mmsd.data.degrade import DegradeConfig, detect_face
from mmsd.emotions import NUM_STATES, STATES
from mmsd.errors import MmsdError
from mmsd.media.sideinfo import Segment
from mmsd.models import weights

MODEL_NAME = "emotion-cnn"  # the model name in the weights file's metadata

FaceBox = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels


@dataclass(frozen=True)
class EmotionNetConfig:
    """The crop geometry and the network's shape; stored with the weights."""

    crop: int = 64                  # S: the network's input side, gray
    margin: int = 4                 # context pixels around the S x S view (room for training jitter)
    zoom: float = 1.15              # crop side / Haar box side
    shift: float = 0.08             # crop centre below the Haar box centre, in box sides
    haar_min_face: float = 0.2      # smallest face the detector looks for / frame's short side
    channels: tuple[int, int, int, int] = (16, 32, 64, 96)
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if self.crop < 16 or self.crop % 16:
            raise ValueError(f"crop must be a positive multiple of 16 (the net downsamples 16x), got {self.crop}")
        if self.margin < 0 or self.zoom <= 0 or not 0 < self.haar_min_face < 1:
            raise ValueError(f"bad crop geometry: margin {self.margin}, zoom {self.zoom}, "
                             f"haar_min_face {self.haar_min_face}")
        if len(self.channels) != 4 or min(self.channels) < 1:
            raise ValueError(f"channels must be 4 positive widths, got {self.channels}")

    @property
    def context(self) -> int:
        """X: the side of the stored crop, S plus the margin on both sides."""
        return self.crop + 2 * self.margin


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class EmotionNet(nn.Module):
    """Gray face crop -> logits of the 15 emotion states (about 0.1 M parameters)."""

    def __init__(self, cfg: EmotionNetConfig = EmotionNetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        c1, c2, c3, c4 = cfg.channels
        self.features = nn.Sequential(
            _conv(1, c1, stride=2),                   # S/2
            _conv(c1, c2), nn.MaxPool2d(2),           # S/4
            _conv(c2, c3), nn.MaxPool2d(2),           # S/8
            _conv(c3, c4), nn.MaxPool2d(2),           # S/16
        )
        side = cfg.crop // 16
        # flatten, not pool: where a feature sits (brows or mouth) is part of the expression
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(c4 * side * side, NUM_STATES))

    def forward(self, crops: Tensor) -> Tensor:
        """crops (Tensor[B, 1, S, S]) float in [0, 1] -> logits (Tensor[B, 15])."""
        side = self.cfg.crop
        if crops.ndim != 4 or tuple(crops.shape[1:]) != (1, side, side):
            raise ValueError(f"expected crops (B, 1, {side}, {side}), got {tuple(crops.shape)}")
        mean = crops.mean(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
        std = crops.std(dim=(2, 3), keepdim=True).clamp_min(1e-2)
        return self.head(self.features((crops - mean) / std))


# --------------------------------------------------------------------------- face crops


def find_face(frame: np.ndarray, cfg: EmotionNetConfig) -> FaceBox | None:
    """The largest Haar frontal face of an RGB frame (H, W, 3) uint8, or None."""
    return detect_face([frame], DegradeConfig(haar_min_face=cfg.haar_min_face))


def face_crop(frame: np.ndarray, box: FaceBox, cfg: EmotionNetConfig) -> np.ndarray:
    """The X x X uint8 gray context crop of an RGB frame (H, W, 3) around a Haar face box.

    Parts of the crop outside the frame repeat the frame's edge pixels.
    """
    import cv2

    x0, y0, x1, y1 = box
    box_side = max(x1 - x0, y1 - y0)
    if not box_side > 0:
        raise ValueError(f"face box must have a positive size, got {box}")
    side = max(1, round(cfg.zoom * box_side * cfg.context / cfg.crop))
    left = round((x0 + x1) / 2 - side / 2)
    top = round((y0 + y1) / 2 + cfg.shift * box_side - side / 2)
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)  # (H, W)
    height, width = gray.shape
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    patch = gray[top: top + side, left: left + side]  # (side, side)
    return cv2.resize(patch, (cfg.context, cfg.context), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- track


@dataclass(frozen=True)
class TrackConfig:
    """How a video's per-frame probabilities become a few segments."""

    samples_per_second: float = 5.0     # classify every round(fps / this)-th frame
    window_seconds: float = 1.0         # probabilities averaged over this centred window
    min_segment_seconds: float = 2.0    # shorter segments merge into a neighbour

    def __post_init__(self) -> None:
        if self.samples_per_second <= 0 or self.window_seconds < 0 or self.min_segment_seconds < 0:
            raise ValueError(f"bad track settings: {self}")

    def step(self, fps: float) -> int:
        """Classify every step-th frame."""
        return max(1, round(float(fps) / self.samples_per_second))


def segment_track(probs: np.ndarray, frames: np.ndarray, *, num_frames: int, window: int,
                  min_segment: int) -> tuple[Segment, ...]:
    """Smoothed, run-length coded states: ((first frame, state id), ...) from frame 0.

    probs (N, 15): probabilities of the sampled frames `frames` (N,), 0-based and strictly
    increasing, all < num_frames. window: the probabilities of the samples within
    +-window/2 frames are averaged. min_segment: no segment is shorter than this many
    frames, unless the whole video is (then it is one segment).
    """
    probs, frames = np.asarray(probs, np.float64), np.asarray(frames, np.int64)
    if probs.ndim != 2 or probs.shape[1] != NUM_STATES or len(frames) != len(probs) or not len(frames):
        raise ValueError(f"expected probs (N, {NUM_STATES}) and frames (N,) with N >= 1, "
                         f"got {probs.shape} and {frames.shape}")
    if np.any(np.diff(frames) <= 0) or frames[0] < 0 or frames[-1] >= num_frames:
        raise ValueError(f"sampled frames must increase strictly within 0..{num_frames - 1}")
    # 1. moving average over a centred window of frames (cumulative sums)
    sums = np.concatenate([np.zeros((1, NUM_STATES)), np.cumsum(probs, axis=0)])  # (N + 1, 15)
    low = np.searchsorted(frames, frames - window / 2, side="left")
    high = np.searchsorted(frames, frames + window / 2, side="right")
    smooth = (sums[high] - sums[low]) / (high - low)[:, None]  # (N, 15)
    # 2. runs of the most probable state: [first sample, state]
    states = smooth.argmax(axis=1)
    firsts = np.flatnonzero(np.r_[True, states[1:] != states[:-1]])
    runs = [[int(i), int(states[i])] for i in firsts]

    def length(r: int) -> int:
        start = frames[runs[r][0]] if r else 0
        end = frames[runs[r + 1][0]] if r + 1 < len(runs) else num_frames
        return int(end - start)

    # 3. merge the shortest run into the neighbour its samples prefer, until none is too short
    while len(runs) > 1:
        r = min(range(len(runs)), key=length)
        if length(r) >= min_segment:
            break
        end = runs[r + 1][0] if r + 1 < len(runs) else len(frames)
        support = smooth[runs[r][0]: end].sum(axis=0)  # (15,)
        neighbours = [n for n in (r - 1, r + 1) if 0 <= n < len(runs)]
        target = max(neighbours, key=lambda n: support[runs[n][1]])
        if target == r + 1:
            runs[r + 1][0] = runs[r][0]
        del runs[r]
        runs = [run for i, run in enumerate(runs) if i == 0 or run[1] != runs[i - 1][1]]
    return tuple((int(frames[first]) if i else 0, state) for i, (first, state) in enumerate(runs))


@dataclass(frozen=True)
class EmotionTrack:
    """The classifier's reading of a whole video."""

    segments: tuple[Segment, ...]  # (first frame, state id), from frame 0
    num_frames: int
    sampled: int  # frames the detector looked at
    faces: int  # of those, frames with a face (the classified ones)

    def describe(self) -> str:
        """'happy-strong (frames 0-74), neutral (frames 75-149)'."""
        ends = [first - 1 for first, _ in self.segments[1:]] + [self.num_frames - 1]
        return ", ".join(f"{STATES[state].name} (frames {first}-{end})"
                         for (first, state), end in zip(self.segments, ends))


@dataclass(frozen=True)
class FramePredictions:
    """Per-frame output of `EmotionClassifier.predict_frames`."""

    probs: np.ndarray  # (N, 15) float32; uniform 1/15 where no face was found
    face: np.ndarray  # (N,) bool: the detector found a face


# --------------------------------------------------------------------------- inference API


class EmotionClassifier:
    """Face crops, frames or a whole video -> emotion state probabilities or segments.

    Frames are RGB (H, W, 3) uint8 at full quality (the sender's, before downsampling).
    """

    def __init__(self, net: EmotionNet, *, device: str | torch.device = "cpu", info: dict | None = None) -> None:
        self.cfg = net.cfg
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.info = dict(info or {})

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device = "cpu") -> EmotionClassifier:
        """A classifier from a weights file written by `mmsd train-emotion`; MmsdError if it is not one."""
        name, config, tensors, info = weights.read_model(path)
        if name != MODEL_NAME:
            raise MmsdError(f"{path}: holds model {name!r}, not the emotion classifier ({MODEL_NAME!r})")
        try:
            cfg = EmotionNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
            net = EmotionNet(cfg)
            net.load_state_dict(tensors, strict=True)
        except (TypeError, ValueError, RuntimeError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MmsdError(f"{path}: weights do not fit the emotion classifier ({first_line})") from None
        return cls(net, device=device, info=info)

    def save(self, path: str | Path, *, info: dict | None = None) -> None:
        """Write the weights, config and `info` atomically (safetensors)."""
        weights.save_model(path, name=MODEL_NAME, config=dataclasses.asdict(self.cfg),
                           state=self.net.state_dict(), info=info)

    @torch.no_grad()
    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """Context crops (B, X, X) uint8 gray (`face_crop`) -> probabilities (B, 15) float32."""
        crops = np.asarray(crops)
        x, m, s = self.cfg.context, self.cfg.margin, self.cfg.crop
        if crops.dtype != np.uint8 or crops.ndim != 3 or crops.shape[1:] != (x, x):
            raise ValueError(f"expected uint8 crops (B, {x}, {x}), got {crops.dtype} {crops.shape}")
        if not len(crops):
            return np.zeros((0, NUM_STATES), np.float32)
        view = torch.from_numpy(np.ascontiguousarray(crops[:, m: m + s, m: m + s]))  # (B, S, S)
        view = view.to(self.device).unsqueeze(1).float().div_(255)  # (B, 1, S, S)
        self.net.eval()
        return torch.softmax(self.net(view), dim=1).cpu().numpy()

    def predict_frames(self, frames: Sequence[np.ndarray]) -> FramePredictions:
        """Probabilities of each frame's largest face; uniform rows for frames without one."""
        crops, face = [], np.zeros(len(frames), bool)
        for i, frame in enumerate(frames):
            box = find_face(frame, self.cfg)
            if box is not None:
                crops.append(face_crop(frame, box, self.cfg))
                face[i] = True
        probs = np.full((len(frames), NUM_STATES), 1.0 / NUM_STATES, np.float32)
        if crops:
            probs[face] = self.predict_crops(np.stack(crops))
        return FramePredictions(probs=probs, face=face)

    def track(self, frames: Iterable[np.ndarray], *, fps: float | Fraction,
              config: TrackConfig = TrackConfig(), batch_size: int = 32) -> EmotionTrack:
        """Read a video's frames once, in order (a stream: only crops of one batch are kept),
        and return its emotion segments; MmsdError when no sampled frame shows a face."""
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        step = config.step(float(fps))
        pending: list[np.ndarray] = []
        found: list[int] = []
        probs: list[np.ndarray] = []
        count = sampled = 0
        for index, frame in enumerate(frames):
            count += 1
            if index % step:
                continue
            sampled += 1
            box = find_face(frame, self.cfg)
            if box is None:
                continue
            pending.append(face_crop(frame, box, self.cfg))
            found.append(index)
            if len(pending) == batch_size:
                probs.append(self.predict_crops(np.stack(pending)))
                pending = []
        if pending:
            probs.append(self.predict_crops(np.stack(pending)))
        if not found:
            raise MmsdError(f"the face detector found no face in any of the {sampled} frames it looked at;"
                            " give --emotion STATE or --emotion-track CSV instead of --emotion auto")
        segments = segment_track(np.concatenate(probs), np.asarray(found), num_frames=count,
                                 window=round(config.window_seconds * float(fps)),
                                 min_segment=math.ceil(config.min_segment_seconds * float(fps)))
        return EmotionTrack(segments=segments, num_frames=count, sampled=sampled, faces=len(found))
