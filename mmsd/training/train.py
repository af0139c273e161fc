"""Training: the Trainer behind `mmsd train --config NAME --data CACHE --out RUN` (the command: `mmsd.commands.train`).

The objective is the paper's Eq. 7, L = |I_hat - I|_1 + lambda1 L_adv + lambda2 L_E, with
lambda1 = 0.01, lambda2 = 0.001, Adam (0.5, 0.9), lr 1e-4, batch 8 (Sec. 4.1). The
adversarial term is off for the first two epochs (Sec. 4.1); since an epoch of a
cache is every (clip, frame, CRF) item, which is long on a CPU budget, the start can
also be given in iterations (`--adv-start`).

Choices where the paper is silent (all configurable):
- one model serves all CRFs: every CRF of the cache is mixed unless `--crf` picks some;
- the deformable-offset convolutions learn at 0.1x the learning rate (EDVR's guard
  against offset blow-up); the mean |offset| is logged;
- validation is face-region PSNR on a fixed ~5% of the *training actors'* clips,
  held out of training; the test actors are never touched here;
- training crops are centred in the face box by default (`--crop-focus face`): the face
  is ~140x135 of a 480x288 frame, so uniform 32x32 LR crops are mostly background;
- `--lr-schedule cosine` decays the lr from `--lr` to `--lr-min` over `--iterations`
  (the shipped CPU recipe, 5e-4 -> 1e-6; the paper's constant 1e-4 is the default). The
  horizon is `--iterations`: resuming a finished run with more iterations re-stretches
  the schedule, so the lr jumps back up at the resume point.

Determinism and resume: the sample at global position p is item perm_e[p % N] of
epoch e = p // N with a permutation seeded by (seed, e), and the dataset's crop is a
function of (seed, epoch, item) only; the checkpoint stores the weights, both
optimisers and the torch RNG, so `--resume RUN` continues exactly where the
checkpoint left off (10 + 10 iterations equal 20 straight). Checkpoints are written
atomically every `checkpoint_every` iterations, so a kill loses at most that many.

Precision (`--precision`, `mmsd.models.precision`): auto runs the forwards in bf16 autocast where the
hardware has fast bf16 and in fp32 elsewhere; the losses, weights, optimiser state and checkpoints
are fp32 either way, so a run may resume at another precision.

Multi-GPU: run the same command under `torchrun --nproc-per-node K`; each rank takes
its own share of every global batch position, gradients are averaged by DDP, and rank
0 alone logs, validates and writes checkpoints.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from mmsd.data.dataset import CacheDataset, collate, read_index
from mmsd.errors import MmsdError
from mmsd.evaluation import metrics
from mmsd.media.audio import model_norm
from mmsd.models import build_model, losses, weights
from mmsd.models.discriminator import Discriminator
from mmsd.models.precision import autocast, resolve as resolve_precision
from mmsd.training.sampling import IterationSampler, MixedPositions, Positions, init_distributed


LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Everything about optimisation; the network's own shape lives in its model config."""

    iterations: int = 20_000
    batch_size: int = 8
    patch: int = 32                     # LR patch side; the HR target is 4x that
    crop_focus: str = "face"            # crops centred in the face box, or "frame": anywhere
    lr: float = 1e-4
    lr_schedule: str = "constant"       # or "cosine": lr decays to lr_min over `iterations`
    lr_min: float = 1e-6
    betas: tuple[float, float] = (0.5, 0.9)
    offset_lr_scale: float = 0.1        # deformable offset/mask convs learn slower (EDVR)
    au_weight: float = 0.001            # lambda2
    gan: bool = False
    adv_weight: float = 0.01            # lambda1
    adv_start_epochs: float = 2.0       # the paper's warm-up without L_adv ...
    adv_start: int | None = None        # ... or, when set, in iterations
    d_lr: float = 1e-4
    crfs: tuple[int, ...] | None = None  # None: every CRF of the cache
    train_actors: tuple[int, ...] = tuple(range(1, 19))
    mix: tuple[tuple[str, float], ...] = ()  # (cache, share of the samples) of other content; the rest: `data`
    init: str | None = None             # weights file the network starts from (fine-tuning), else random
    voice_augment: float = 0.0          # share of samples hearing a voice variant of their audio (`mmsd voices`)
    audio_mismatch: float = 0.0         # share of samples hearing another clip's audio (lips and voice disagree)
    val_share: int = 20                 # hold out ~1/val_share of the training actors' clips
    val_every: int = 500
    val_frame_step: int = 10
    keep_best: bool = False             # the model file holds the best-validating weights, the start's included
    tune_only: tuple[str, ...] = ()     # train only these top-level parts (e.g. reconstruction), freeze the rest
    l2sp: float = 0.0                   # + l2sp * sum of squared distances of the weights from the starting ones
    checkpoint_every: int = 200
    snapshot_every: int = 0             # also keep the weights every this many iterations (learning curves)
    log_every: int = 10
    num_workers: int = 2
    seed: int = 0

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        mix = tuple((str(cache), float(share)) for cache, share in self.mix)
        object.__setattr__(self, "mix", mix)
        if any(share <= 0 for _, share in mix) or sum(share for _, share in mix) >= 1:
            raise ValueError(f"mix shares must be > 0 and sum to < 1 (the rest is the main cache), got {list(mix)}")
        if self.batch_size < 1 or self.patch < 4 or self.iterations < 0:
            raise ValueError(f"bad training sizes: batch {self.batch_size}, patch {self.patch}, "
                             f"iterations {self.iterations}")


def check_parts(parts: Sequence[str], available: Sequence[str]) -> None:
    """A one-line error unless every name of `parts` is one of a network's top-level parts `available`."""
    unknown = sorted(set(parts) - set(available))
    if unknown:
        raise MmsdError(f"no part {', '.join(unknown)} to tune; this network has {', '.join(available)}")


def freeze_except(model: nn.Module, parts: Sequence[str]) -> None:
    """Freeze every parameter of `model` outside its top-level submodules `parts` (fine-tuning a
    part of a network: the frozen parts get no gradient, so their backward is skipped too)."""
    check_parts(parts, [name for name, _ in model.named_children()])
    for name, param in model.named_parameters():
        param.requires_grad_(name.split(".")[0] in parts)


def config_from_dict(cls, values: dict):
    """A frozen dataclass from a dict, rejecting unknown keys and restoring tuples from JSON lists."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def split_keys(cache: Path, cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """(training keys, validation keys) among the training actors' clips, fixed by the key names."""
    keys = sorted(c.key for c in read_index(cache) if c.actor in cfg.train_actors)
    if not keys:
        raise MmsdError(f"{cache}: no clips of training actors {cfg.train_actors[0]}..{cfg.train_actors[-1]}")
    val = [k for k in keys if zlib.crc32(k.encode()) % cfg.val_share == 0] or keys[:1]
    train = [k for k in keys if k not in set(val)] or keys
    return train, val


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Optimises one generator (and, with `gan`, the emotion-conditioned discriminator)."""

    def __init__(self, *, model_name: str, model_config: dict, cfg: TrainConfig, cache: Path, out: Path,
                 device: str = "auto", init_state: dict[str, torch.Tensor] | None = None,
                 train_keys: Sequence[str] | None = None, val_keys: Sequence[str] | None = None,
                 precision: str = "auto"):
        """init_state: weights to start from (fine-tuning); train_keys / val_keys: clip keys to use
        instead of the default split of the training actors' clips; precision: of the forwards
        (auto, fp32, bf16; `mmsd.models.precision`)."""
        self.cfg, self.cache, self.out = cfg, Path(cache), Path(out)
        self.model_name, self.model_config = model_name, model_config
        self.dist = init_distributed(device)
        self.precision = resolve_precision(precision, self.dist.device)
        torch.manual_seed(cfg.seed)
        self.model = build_model(model_name, model_config).to(self.dist.device)
        if init_state is None and cfg.init:
            from mmsd.models.weights import read_model

            init_state = read_model(cfg.init)[2]
        if init_state is not None:
            try:
                self.model.load_state_dict(init_state)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[-1].strip()
                raise MmsdError(f"the starting weights do not fit the {model_name} config ({first})") from None
        if cfg.tune_only:
            freeze_except(self.model, cfg.tune_only)
        # L2-SP (Li et al., 2018): fine-tuning pulled towards the starting weights, not towards zero
        self.start_weights = {}
        if cfg.l2sp > 0 and init_state is not None:
            self.start_weights = {name: p.detach().clone() for name, p in self.model.named_parameters()
                                  if p.requires_grad}
        self.disc = (Discriminator(channels=model_config.get("disc_channels", 64)).to(self.dist.device)
                     if cfg.gan else None)
        self.opt_g = torch.optim.Adam(self._param_groups(self.model), lr=cfg.lr, betas=cfg.betas)
        self.opt_d = (torch.optim.Adam([{"params": self.disc.parameters(), "lr": cfg.d_lr, "initial_lr": cfg.d_lr}],
                                       lr=cfg.d_lr, betas=cfg.betas)
                      if self.disc is not None else None)
        self.ddp_model = self._wrap(self.model)
        self.ddp_disc = self._wrap(self.disc) if self.disc is not None else None
        radius = int(model_config.get("radius", 2))
        causal = bool(model_config.get("causal", False))
        mfcc_norm = model_norm(model_config)
        if train_keys is None or val_keys is None:
            default_train, default_val = split_keys(self.cache, cfg)
            train_keys = default_train if train_keys is None else train_keys
            val_keys = default_val if val_keys is None else val_keys
        self.train_set = CacheDataset(self.cache, actors=cfg.train_actors, keys=train_keys, crfs=cfg.crfs,
                                      radius=radius, causal=causal, patch=cfg.patch, crop_focus=cfg.crop_focus,
                                      seed=cfg.seed, mfcc_norm=mfcc_norm, voice_augment=cfg.voice_augment,
                                      audio_mismatch=cfg.audio_mismatch)
        self.val_set = CacheDataset(self.cache, actors=cfg.train_actors, keys=val_keys, crfs=cfg.crfs,
                                    radius=radius, causal=causal, frame_step=cfg.val_frame_step, mfcc_norm=mfcc_norm)
        if len(self.train_set) == 0:
            raise MmsdError(f"{self.cache}: no training samples (CRFs {cfg.crfs})")
        self.mix_sets = [CacheDataset(Path(cache), actors=None, crfs=cfg.crfs, radius=radius, causal=causal,
                                      patch=cfg.patch, crop_focus=cfg.crop_focus, seed=cfg.seed, mfcc_norm=mfcc_norm,
                                      voice_augment=cfg.voice_augment, audio_mismatch=cfg.audio_mismatch)
                         for cache, _ in cfg.mix]
        global_batch = cfg.batch_size * self.dist.world
        self.adv_start = (cfg.adv_start if cfg.adv_start is not None
                          else math.ceil(cfg.adv_start_epochs * len(self.train_set) / global_batch))
        self.iteration = 0
        self.best: _Best | None = None  # with keep_best: the best validation so far and its weights
        self._wall_before, self._session_start = 0.0, time.monotonic()

    def wall_seconds(self) -> float:
        """Training wall time over all sessions of this run (up to the last checkpoint, then this one)."""
        return self._wall_before + time.monotonic() - self._session_start

    def _param_groups(self, model: nn.Module) -> list[dict]:
        offsets = {id(p) for p in getattr(model, "offset_parameters", lambda: [])()}
        trained = [p for p in model.parameters() if p.requires_grad]
        slow = [p for p in trained if id(p) in offsets]
        rest = [p for p in trained if id(p) not in offsets]
        groups = [{"params": rest, "lr": self.cfg.lr}]
        if slow:
            groups.append({"params": slow, "lr": self.cfg.lr * self.cfg.offset_lr_scale})
        return [g | {"initial_lr": g["lr"]} for g in groups]

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.dist.world == 1:
            return module
        ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    # ----------------------------------------------------------------- checkpoints

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.safetensors"

    def save_checkpoint(self) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        opt_tensors, opt_rest = weights.flatten_optimizer("opt_g", self.opt_g.state_dict())
        tensors |= opt_tensors
        meta = {"iteration": self.iteration, "opt_g": opt_rest, "wall_seconds": round(self.wall_seconds(), 1)}
        if self.disc is not None:
            tensors |= {f"disc.{k}": v for k, v in self.disc.state_dict().items()}
            d_tensors, d_rest = weights.flatten_optimizer("opt_d", self.opt_d.state_dict())
            tensors |= d_tensors
            meta["opt_d"] = d_rest
        if self.best is not None:
            tensors |= {f"best.{k}": v for k, v in self.best.state.items()}
            meta["best"] = {"iteration": self.best.iteration, "validation": self.best.validation}
        tensors["rng.torch"] = torch.get_rng_state()
        weights.atomic_save(tensors, self.checkpoint_path, {"state": json.dumps(meta)})

    def load_checkpoint(self) -> None:
        tensors, metadata = weights.read(self.checkpoint_path)
        meta = json.loads(metadata["state"])

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        self.model.load_state_dict(part("model."))
        self.opt_g.load_state_dict(weights.unflatten_optimizer("opt_g", tensors, meta["opt_g"]))
        if self.disc is not None:
            self.disc.load_state_dict(part("disc."))
            self.opt_d.load_state_dict(weights.unflatten_optimizer("opt_d", tensors, meta["opt_d"]))
        if "best" in meta:
            self.best = _Best(meta["best"]["iteration"], meta["best"]["validation"], part("best."))
        torch.set_rng_state(tensors["rng.torch"])
        self.iteration = int(meta["iteration"])
        self._wall_before = float(meta.get("wall_seconds", 0.0))

    def snapshot_path(self, iteration: int) -> Path:
        """RUN/snapshots/model-ITERATION.safetensors (the folder made on first use)."""
        (self.out / "snapshots").mkdir(exist_ok=True)
        return self.out / "snapshots" / f"model-{iteration:06d}.safetensors"

    def save_model(self, path: Path, info: dict, state: dict[str, torch.Tensor] | None = None) -> None:
        """The network (its current weights, or `state`) as a model file."""
        weights.save_model(path, name=self.model_name, config=self.model_config,
                           state=self.model.state_dict() if state is None else state, info=info)

    # ----------------------------------------------------------------- steps

    def lr_factor(self, iteration: int) -> float:
        """Multiplier of every base learning rate at `iteration` (a function of it alone, so resume is exact)."""
        cfg = self.cfg
        if cfg.lr_schedule == "constant" or cfg.iterations == 0:
            return 1.0
        floor = cfg.lr_min / cfg.lr
        progress = min(iteration / cfg.iterations, 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def _set_lr(self) -> None:
        factor = self.lr_factor(self.iteration)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = group["initial_lr"] * factor

    def _step(self, batch) -> dict[str, float]:
        cfg = self.cfg
        batch = batch.to(self.dist.device)
        self._set_lr()
        self.model.train()
        with autocast(self.precision, self.dist.device):  # the losses below stay fp32
            out = self.ddp_model(batch.lr, mfcc=batch.mfcc, emotion=batch.emotion, crop=batch.crop)
        image = out.image.float()
        l1 = F.l1_loss(image, batch.hr)
        loss, terms = l1, {"l1": l1.item()}
        if out.au is not None:
            l_e = losses.au_loss(out.au.float(), batch.au, batch.au_mask)
            loss = loss + cfg.au_weight * l_e
            terms["au"] = l_e.item()
        if self.start_weights:
            drift = sum(((p - self.start_weights[name]) ** 2).sum() for name, p in self.model.named_parameters()
                        if name in self.start_weights)
            loss = loss + cfg.l2sp * drift
            terms["drift"] = drift.item()
        if self.disc is not None and self.iteration >= self.adv_start:
            # D: real HR vs restored (detached), both under the sent emotion state
            d_loss = losses.discriminator_loss(self._disc_logits(batch.hr, batch.emotion),
                                               self._disc_logits(image.detach(), batch.emotion))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            l_adv = losses.generator_adversarial_loss(self._disc_logits(image, batch.emotion))
            loss = loss + cfg.adv_weight * l_adv
            terms |= {"adv": l_adv.item(), "d": d_loss.item()}
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if getattr(out, "offset_abs_mean", None) is not None:
            terms["offset"] = float(out.offset_abs_mean.detach())
        return terms

    def _disc_logits(self, image: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """D(image, s) (Tensor[B], fp32), its forward at the run's precision."""
        with autocast(self.precision, self.dist.device):
            return self.ddp_disc(image, emotion).float()

    @torch.inference_mode()
    def validate(self) -> dict[str, float]:
        """Mean face-region PSNR (dB) of restored vs HR on the held-out clips, per CRF and overall."""
        self.model.eval()
        per_crf: dict[int, list[float]] = {}
        for i in range(len(self.val_set)):
            sample = collate([self.val_set[i]]).to(self.dist.device)
            with autocast(self.precision, self.dist.device):
                image = self.model(sample.lr, mfcc=sample.mfcc, emotion=sample.emotion).image
            restored = metrics.to_uint8(image[0].float().permute(1, 2, 0).cpu().numpy())
            target = metrics.to_uint8(sample.hr[0].permute(1, 2, 0).cpu().numpy())
            box = sample.face_box[0].tolist()
            score = metrics.psnr(metrics.region(restored, box), metrics.region(target, box))
            per_crf.setdefault(int(sample.crf[0]), []).append(min(score, 100.0))
        result = {f"crf{c}": float(np.mean(v)) for c, v in sorted(per_crf.items())}
        result["mean"] = float(np.mean([s for v in per_crf.values() for s in v])) if per_crf else float("nan")
        return result

    # ----------------------------------------------------------------- loop

    def fit(self, *, resume: bool = False, progress: bool = True) -> dict:
        """Train to cfg.iterations (from the last checkpoint with `resume`); `progress`: the bar on stderr."""
        cfg, main = self.cfg, self.dist.main
        if resume:
            self.load_checkpoint()
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
        log = _CsvLog(self.out / "log.csv", keep_until=self.iteration) if main else None
        val_log = _CsvLog(self.out / "val.csv", keep_until=self.iteration) if main else None
        positions = (MixedPositions([self.train_set, *self.mix_sets],
                                     [1 - sum(share for _, share in cfg.mix), *(share for _, share in cfg.mix)],
                                     cfg.seed)
                     if cfg.mix else Positions(self.train_set, cfg.seed))
        loader = DataLoader(
            positions,
            batch_size=cfg.batch_size,
            sampler=IterationSampler(start=self.iteration, stop=cfg.iterations, batch_size=cfg.batch_size,
                                      rank=self.dist.rank, world=self.dist.world),
            num_workers=cfg.num_workers,
            collate_fn=collate,
            # a private generator: worker seeding must not consume the global (checkpointed) RNG
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        started, first = time.monotonic(), self.iteration
        self._session_start = started
        bar = tqdm(total=cfg.iterations, initial=self.iteration, disable=not (main and progress), desc="train",
                   dynamic_ncols=True, unit="it")
        last_val: dict[str, float] = {}
        if main and cfg.keep_best and self.best is None:  # the starting weights are a candidate too
            self._validated(self.validate(), val_log, bar)
        for batch in loader:
            terms = self._step(batch)
            self.iteration += 1
            bar.update(1)
            if main and (self.iteration % cfg.log_every == 0 or self.iteration == cfg.iterations):
                rate = (self.iteration - first) / max(time.monotonic() - started, 1e-9)
                bar.set_postfix({k: f"{v:.4g}" for k, v in terms.items()})
                log.write({"iteration": self.iteration, **terms, "it_per_s": round(rate, 3)})
            if main and self.iteration % cfg.val_every == 0:
                last_val = self._validated(self.validate(), val_log, bar)
            if main and (self.iteration % cfg.checkpoint_every == 0 or self.iteration == cfg.iterations):
                self.save_checkpoint()
            if main and cfg.snapshot_every and self.iteration % cfg.snapshot_every == 0:
                self.save_model(self.snapshot_path(self.iteration), info={"iterations": self.iteration})
        bar.close()
        if main:
            if not last_val or self.iteration % cfg.val_every:
                last_val = self._validated(self.validate(), val_log)
            self.save_checkpoint()
            info = {"iterations": self.iteration, "train_config": dataclasses.asdict(cfg), "data": str(self.cache),
                    "validation_face_psnr": last_val, "wall_seconds": round(self.wall_seconds(), 1),
                    "precision": self.precision}  # of the forwards (`mmsd models` says "trained in")
            state = None
            if self.best is not None:
                last_val, state = self.best.validation, self.best.state
                info |= {"best_iteration": self.best.iteration, "validation_face_psnr": last_val}
            self.save_model(self.out / "model.safetensors", info=info, state=state)
        return last_val

    def _validated(self, result: dict[str, float], val_log: _CsvLog, bar: tqdm | None = None) -> dict[str, float]:
        """Log a validation of the current weights (and show it above `bar`) and, with keep_best, keep them
        if they are the best yet."""
        val_log.write({"iteration": self.iteration, **result})
        if bar is not None:
            bar.write(f"iteration {self.iteration}: validation face PSNR "
                      + ", ".join(f"{k} {v:.2f} dB" for k, v in result.items()))
        if self.cfg.keep_best and (self.best is None or result["mean"] > self.best.validation["mean"]):
            state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best = _Best(self.iteration, result, state)
        return result


@dataclass(frozen=True)
class _Best:
    """The best validation of a keep_best run: its iteration, scores (as `Trainer.validate`) and weights."""

    iteration: int
    validation: dict[str, float]
    state: dict[str, torch.Tensor]


class _CsvLog:
    """An append-only CSV whose rows past `keep_until` (from a run killed after its checkpoint) are dropped."""

    def __init__(self, path: Path, keep_until: int):
        self.path = path
        rows = []
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= keep_until]
        self.fields = list(rows[0].keys()) if rows else None
        self._rewrite(rows)

    def _rewrite(self, rows: list[dict]) -> None:
        with open(self.path, "w", newline="") as f:
            if self.fields:
                writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)

    def write(self, row: dict) -> None:
        if self.fields is None or set(row) - set(self.fields):
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f)) if self.fields else []
            self.fields = list(dict.fromkeys([*(self.fields or []), *row]))
            self._rewrite(rows)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore").writerow(row)


# --------------------------------------------------------------------------- run folder


def start(*, cache: Path, out: Path, model_name: str, model_config: dict, cfg: TrainConfig,
          device: str = "auto", precision: str = "auto") -> dict:
    """A new run in `out` (refused if it already holds one)."""
    out = Path(out)
    if (out / "run.json").exists():
        raise MmsdError(f"{out} already holds a run; continue it with --resume {out}")
    trainer = Trainer(model_name=model_name, model_config=model_config, cfg=cfg, cache=cache, out=out,
                      device=device, precision=precision)
    if trainer.dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps({
            "model": model_name, "model_config": model_config,
            "train_config": dataclasses.asdict(cfg), "data": str(cache),
        }, indent=2))
    return trainer.fit()


def resume(out: Path, *, iterations: int | None = None, device: str = "auto", precision: str = "auto") -> dict:
    """Continue the run in `out` from its last checkpoint, optionally to a new iteration count."""
    out = Path(out)
    try:
        run = json.loads((out / "run.json").read_text())
    except FileNotFoundError:
        raise MmsdError(f"{out}: no run to resume (run.json missing)") from None
    values = run["train_config"] | ({"iterations": iterations} if iterations else {})
    trainer = Trainer(model_name=run["model"], model_config=run["model_config"],
                      cfg=config_from_dict(TrainConfig, values), cache=Path(run["data"]), out=out, device=device,
                      precision=precision)
    if not trainer.checkpoint_path.exists():
        raise MmsdError(f"{out}: no checkpoint yet; start the run again")
    return trainer.fit(resume=True)


