"""Bicubic upsampling of the window's reference frame: the "no restoration" baseline of Table 1."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmsd.models.blocks import upsample_bicubic
from mmsd.models.output import RestorationOutput


@dataclass(frozen=True)
class BicubicConfig:
    radius: int = 2        # the window the pipeline provides; only its reference frame is used
    causal: bool = False   # reference = the newest frame instead of the centre
    scale: int = 4


class Bicubic(nn.Module):
    def __init__(self, cfg: BicubicConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, lr: torch.Tensor, mfcc: torch.Tensor | None = None,
                emotion: torch.Tensor | None = None, *, crop: torch.Tensor | None = None) -> RestorationOutput:
        """lr (Tensor[B, T, 3, H, W]) -> image (Tensor[B, 3, sH, sW]), clamped to [0, 1]."""
        reference = lr[:, -1] if self.cfg.causal else lr[:, lr.shape[1] // 2]
        image = upsample_bicubic(reference, self.cfg.scale)
        return RestorationOutput(image=image.clamp(0.0, 1.0))
