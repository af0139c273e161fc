"""The trainer's data order and ranks: which sample each global position is, and which positions each
rank takes, so that a run is deterministic, resumes exactly, and splits the same way under torchrun.

The sample at global position p is item perm_e[p % N] of epoch e = p // N with a permutation seeded by
(seed, e) (`Positions`), or, for a mixture of caches, drawn from RNG(seed, p) (`MixedPositions`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler

from mmsd.data.dataset import CacheDataset


class Positions(Dataset):
    """Global sample position p -> item perm_e[p % N] of the base dataset at epoch e = p // N."""

    def __init__(self, base: CacheDataset, seed: int):
        self.base, self.seed = base, seed
        self._epoch, self._perm = -1, None

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, position: int):
        epoch, offset = divmod(position, len(self.base))
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.base))
            self.base.set_epoch(epoch)
        return self.base[int(self._perm[offset])]


class MixedPositions(Dataset):
    """Global sample position p -> an item of one of several datasets, dataset d with probability
    shares[d]; the dataset, the item and its crop epoch are drawn from RNG(seed, p), so a position
    gives the same sample in any worker and after a resume (items are drawn with replacement)."""

    def __init__(self, bases: Sequence[CacheDataset], shares: Sequence[float], seed: int):
        self.bases, self.seed = list(bases), seed
        self.shares = np.asarray(shares, np.float64) / np.sum(shares)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, position: int):
        rng = np.random.default_rng([self.seed, 0x313, position])
        base = self.bases[int(rng.choice(len(self.bases), p=self.shares))]
        base.set_epoch(int(rng.integers(2**31)))
        return base[int(rng.integers(len(base)))]


class IterationSampler(Sampler[int]):
    """Positions of this rank's share of each global batch, from `start` to `stop` iterations."""

    def __init__(self, *, start: int, stop: int, batch_size: int, rank: int, world: int):
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch_size, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.batch

    def __iter__(self):
        for iteration in range(self.start, self.stop):
            base = (iteration * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if world == 1:
        return Dist(device=torch.device("cuda" if want_cuda else "cpu"))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if want_cuda else "gloo")
    if want_cuda:
        torch.cuda.set_device(local)
    return Dist(rank=rank, world=world, device=torch.device(f"cuda:{local}" if want_cuda else "cpu"))
