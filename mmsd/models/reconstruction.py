"""Reconstruction (Sec. 3.1): residual blocks, x4 upsampling, plus the bicubic-upsampled frame.

Choices where the paper is silent: two conv3x3 + pixel-shuffle x2 + LeakyReLU stages at
width `upsample_channels` (C in `paper`; narrower in `small`, where the 2x-resolution conv
is the most expensive layer), a final conv3x3 to RGB that starts at zero (the untrained
network outputs the bicubic frame), and bicubic with align_corners=False for the skip
(`mmsd.models.blocks.upsample_bicubic`, torch's interpolate as a conv).
No clamp: the output may leave [0, 1]; clamp for display and metrics, not for the L1 loss.
"""

from __future__ import annotations

from torch import Tensor, nn

from mmsd.models.blocks import Upsampler, residual_stack, upsample_bicubic

SCALE = 4


class Reconstruction(nn.Module):
    """f_VAE at LR -> residual RGB at 4x, added to bicubic(reference frame)."""

    def __init__(self, *, channels: int, num_blocks: int, upsample_channels: int) -> None:
        super().__init__()
        self.body = residual_stack(channels, num_blocks)
        self.up = Upsampler(channels, SCALE, mid_channels=upsample_channels, zero_last=True)

    def forward(self, feats: Tensor, frame: Tensor) -> Tensor:
        """feats (Tensor[B, C, H, W]), frame (Tensor[B, 3, H, W]) -> Tensor[B, 3, 4H, 4W]."""
        base = upsample_bicubic(frame, SCALE)
        return base + self.up(self.body(feats))
