"""Emotion-conditioned discriminator D(I, s) of the cGAN (Sec. 3.5).

The paper uses "the same architecture as [19]" (IcGAN): strided 4x4 convolutions whose
condition s enters as constant maps concatenated after the first block. Choices where the
paper is silent: four stride-2 stages (C, 2C, 4C, 8C), LeakyReLU(0.2), no normalisation
(batch-size independent, DDP-safe), then global average pooling and a Linear to one logit
so any HR size (full 480x288 frames or training crops) works; images are mapped to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsd.emotions import NUM_STATES


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True))


class Discriminator(nn.Module):
    """(image, emotion state) -> logit of "a real face in state s"."""

    def __init__(self, *, channels: int = 64, num_states: int = NUM_STATES) -> None:
        super().__init__()
        self.num_states = num_states
        self.first = _down(3, channels)
        self.body = nn.Sequential(
            _down(channels + num_states, 2 * channels),
            _down(2 * channels, 4 * channels),
            _down(4 * channels, 8 * channels),
        )
        self.head = nn.Linear(8 * channels, 1)

    def forward(self, image: Tensor, emotion: Tensor) -> Tensor:
        """image (Tensor[B, 3, H, W]) in [0, 1], emotion (Tensor[B] long, 0..14) -> logits (Tensor[B]).

        H and W must be at least 16 (four stride-2 stages)."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected image (B, 3, H, W), got {tuple(image.shape)}")
        if min(image.shape[2:]) < 16:
            raise ValueError(f"discriminator needs images of at least 16x16, got {image.shape[3]}x{image.shape[2]}")
        x = self.first(image * 2 - 1)  # (B, C, H/2, W/2)
        b, _, h, w = x.shape
        s = F.one_hot(emotion.long(), self.num_states).to(x.dtype)[:, :, None, None].expand(b, self.num_states, h, w)
        x = self.body(torch.cat([x, s], dim=1))  # (B, 8C, H/16, W/16)
        return self.head(x.mean(dim=(2, 3))).squeeze(1)
