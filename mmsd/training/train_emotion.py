"""Training the emotion classifier (`mmsd train-emotion --data CACHE --out mmsd/shipped/emotion.safetensors`,
`mmsd.commands.train_emotion`).

Data: every `frame_step`-th stored HR frame (480x288) of each clip, cut by the same Haar
path as at inference (`emotion_classifier.find_face` and `face_crop`). Where Haar finds
no face, the cache's per-frame face box stands in: a landmark extent (brows to chin) is
first mapped to the box Haar would give (side 1.18 x its height, centre 0.23 x its
height higher: medians over 290 frames of training actors of the synthetic corpus); a
box of a Haar-cropped clip is used as it is. The crops are computed once and kept in
memory (72x72 uint8, about 5 KB each).

Split by speaker: actors 1-18 train, of which `val_actors` (17, 18) are held out for
validation, which picks the kept weights (the best validation per-frame accuracy);
test actors 19-24 are only scored at the end, for the report and the file's metadata.
Per-frame accuracy is over the cropped frames; per-clip accuracy takes the majority of a
clip's per-frame predictions.

Training: cross-entropy with label smoothing, Adam with a cosine learning rate, random
batches of training crops, each view moved (+-margin), zoomed (+-15 %), stretched
(aspect +-10 %), turned (+-10 degrees), mirrored and gamma-changed inside its context crop.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mmsd.data.dataset import ClipIndex, ClipMeta
from mmsd.emotions import NUM_STATES
from mmsd.sender.emotion_classifier import (EmotionClassifier, EmotionNet, EmotionNetConfig, FaceBox, face_crop,
                                           find_face)

LANDMARK_TO_HAAR_SIDE = 1.18  # Haar box side / landmark-extent height
LANDMARK_TO_HAAR_SHIFT = -0.23  # Haar box centre y - extent centre y, in extent heights


@dataclass(frozen=True)
class EmotionTrainConfig:
    """Optimisation and data selection of `mmsd train-emotion`."""

    iterations: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    lr_min: float = 2e-5
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    frame_step: int = 2  # every frame_step-th stored HR frame of a clip
    train_actors: tuple[int, ...] = tuple(range(1, 19))
    val_actors: tuple[int, ...] = (17, 18)  # held out of the training actors
    test_actors: tuple[int, ...] = tuple(range(19, 25))
    val_every: int = 250
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.iterations, self.batch_size, self.frame_step, self.val_every) < 1:
            raise ValueError(f"iterations, batch, frame step and val-every must be >= 1, got {self.iterations}, "
                             f"{self.batch_size}, {self.frame_step}, {self.val_every}")
        if not set(self.val_actors) <= set(self.train_actors):
            raise ValueError(f"validation actors {list(self.val_actors)} must be among the training actors")
        if set(self.test_actors) & set(self.train_actors):
            raise ValueError(f"actors {sorted(set(self.test_actors) & set(self.train_actors))} "
                             "cannot be both training and test actors")


@dataclass
class Crops:
    """Face crops of some clips, one row per cropped frame."""

    images: np.ndarray  # (F, X, X) uint8 gray context crops
    labels: np.ndarray  # (F,) int64 state ids
    clips: np.ndarray  # (F,) int64 index into `keys`
    keys: list[str]  # clip keys
    haar: np.ndarray  # (F,) bool: Haar found the face (else the cache's box stood in)

    def __len__(self) -> int:
        return len(self.labels)


def collect_crops(index: ClipIndex, clips: list[ClipMeta], cfg: EmotionNetConfig, *, frame_step: int,
                  progress: bool = True, desc: str = "crops") -> Crops:
    """Crop every frame_step-th HR frame of `clips` (see the module docstring)."""
    images, labels, owners, haar = [], [], [], []
    bar = tqdm(clips, desc=desc, unit="clip", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    for ci, clip in enumerate(bar):
        reader = index.reader(clip)
        for t in clip.hr_frames[::frame_step]:
            frame = reader.hr(t)  # (H, W, 3)
            box = find_face(frame, cfg)
            haar.append(box is not None)
            if box is None:
                box = stand_in_box(reader.arrays["face_box"][t], clip.crop_source)
            images.append(face_crop(frame, box, cfg))
            labels.append(clip.emotion)
            owners.append(ci)
    side = cfg.context
    return Crops(images=np.stack(images) if images else np.zeros((0, side, side), np.uint8),
                 labels=np.asarray(labels, np.int64), clips=np.asarray(owners, np.int64),
                 keys=[c.key for c in clips], haar=np.asarray(haar, bool))


def stand_in_box(face_box: np.ndarray, crop_source: str) -> FaceBox:
    """A Haar-like face box from the cache's face box (x0, y0, x1, y1) of one frame."""
    x0, y0, x1, y1 = (float(v) for v in face_box)
    if crop_source != "landmarks":  # the cache's box is already the Haar box (or the centre guess)
        return x0, y0, x1, y1
    height = y1 - y0
    side = LANDMARK_TO_HAAR_SIDE * height
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + LANDMARK_TO_HAAR_SHIFT * height
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


# --------------------------------------------------------------------------- training


def augment(context: torch.Tensor, cfg: EmotionNetConfig, generator: torch.Generator) -> torch.Tensor:
    """Random views: context (Tensor[B, X, X]) uint8 -> Tensor[B, 1, S, S] float in [0, 1]."""
    batch = len(context)
    x = context.unsqueeze(1).float().div_(255)  # (B, 1, X, X)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator)

    # affine_grid maps output to input coordinates in [-1, 1] of the context crop
    # aspect changes stand in for other face shapes: identities are few, expressions must generalise
    scale = cfg.crop / cfg.context * torch.exp(uniform(-0.15, 0.15))
    aspect = torch.exp(uniform(-0.1, 0.1))
    scale_x, scale_y = scale * aspect, scale / aspect
    angle = uniform(-math.radians(10), math.radians(10))
    mirror = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    reach = 2 * cfg.margin / cfg.context
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([
        torch.stack([scale_x * cos * mirror, -scale_y * sin, uniform(-reach, reach)], dim=1),
        torch.stack([scale_x * sin * mirror, scale_y * cos, uniform(-reach, reach)], dim=1),
    ], dim=1)  # (B, 2, 3)
    grid = F.affine_grid(theta, [batch, 1, cfg.crop, cfg.crop], align_corners=False)  # (B, S, S, 2)
    view = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gamma = torch.exp(uniform(-0.3, 0.3)).view(batch, 1, 1, 1)
    return view.clamp_(1e-4, 1.0).pow_(gamma)


@dataclass(frozen=True)
class Scores:
    """Accuracies of a classifier on one split; the confusion matrix counts frames."""

    frame_accuracy: float
    clip_accuracy: float
    frames: int
    clips: int
    confusion: np.ndarray  # (15, 15) int64: rows true state, columns predicted state

    def per_state(self) -> np.ndarray:
        """Per-frame accuracy of each true state (15,), NaN for states without frames."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / totals

    def as_dict(self) -> dict:
        return {"frame_accuracy": self.frame_accuracy, "clip_accuracy": self.clip_accuracy,
                "frames": self.frames, "clips": self.clips}


def score(classifier: EmotionClassifier, crops: Crops, batch_size: int = 256) -> Scores:
    """Per-frame and per-clip (majority of frames) accuracy and the frame confusion matrix."""
    if not len(crops):
        raise ValueError("no crops to score")
    probs = np.concatenate([classifier.predict_crops(crops.images[i: i + batch_size])
                            for i in range(0, len(crops), batch_size)])
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((NUM_STATES, NUM_STATES), np.int64)
    np.add.at(confusion, (crops.labels, predicted), 1)
    clip_hits = []
    for ci in np.unique(crops.clips):
        mine = crops.clips == ci
        votes = np.bincount(predicted[mine], minlength=NUM_STATES)
        clip_hits.append(votes.argmax() == crops.labels[mine][0])
    return Scores(frame_accuracy=float((predicted == crops.labels).mean()), clip_accuracy=float(np.mean(clip_hits)),
                  frames=len(crops), clips=len(clip_hits), confusion=confusion)


def fit(train: Crops, val: Crops | None, *, net_cfg: EmotionNetConfig, cfg: EmotionTrainConfig,
        progress: bool = True) -> tuple[EmotionClassifier, Scores | None]:
    """Train on `train`; with `val`, keep the weights of the best validation per-frame accuracy."""
    if not len(train):
        raise ValueError("fit needs at least one training crop")
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    order = np.random.default_rng(cfg.seed)
    net = EmotionNet(net_cfg)
    classifier = EmotionClassifier(net)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    images, labels = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    queue = np.zeros(0, np.int64)
    best: tuple[float, dict] | None = None
    best_scores: Scores | None = None
    bar = tqdm(range(cfg.iterations), desc="train-emotion", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    for iteration in bar:
        while len(queue) < cfg.batch_size:  # epochs of shuffled crops
            queue = np.concatenate([queue, order.permutation(len(train))])
        chosen, queue = torch.from_numpy(queue[: cfg.batch_size]), queue[cfg.batch_size:]
        progress_part = iteration / max(1, cfg.iterations - 1)
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress_part))
        for group in optimizer.param_groups:
            group["lr"] = lr
        net.train()
        logits = net(augment(images[chosen], net_cfg, generator))
        loss = F.cross_entropy(logits, labels[chosen], label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        done = iteration + 1
        if val is not None and len(val) and (done % cfg.val_every == 0 or done == cfg.iterations):
            scores = score(classifier, val)
            marker = ""
            if best is None or scores.frame_accuracy > best[0]:
                best, best_scores, marker = (scores.frame_accuracy, copy.deepcopy(net.state_dict())), scores, " (best)"
            tqdm.write(f"iteration {done}: validation accuracy {scores.frame_accuracy:.1%} per frame, "
                       f"{scores.clip_accuracy:.1%} per clip{marker}")
    if best is not None:
        net.load_state_dict(best[1])
    net.eval()
    return classifier, best_scores
