"""The two fusion stages (Fig. 4 and Fig. 5): audio-video attention (eq. 2-3), emotion (eq. 5).

Choices where the paper is silent: theta and phi are conv1x1 embeddings to
`attention_channels` (as the non-local block [30] they cite); the inner product is scaled
by 1/sqrt(attention_channels) so the sigmoid starts unsaturated; s enters eq. 5 as 15
constant maps (its one-hot broadcast over H x W). Both fusion convs start as the identity
on the video features and zero on what they add (audio maps, emotion maps), so an
untrained network with a branch switched on computes what it computes without it, and
a branch only changes the output as far as training finds it useful (default-initialised
1x1 convs would instead scramble and shrink f_V at every fusion, which slowed training).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _identity_then_zero(conv: nn.Conv2d) -> None:
    """A conv1x1 over [x, extra] that starts as x: identity on the first C_out inputs, zero elsewhere."""
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    with torch.no_grad():
        conv.weight[:, : conv.out_channels, 0, 0].copy_(torch.eye(conv.out_channels))


class AudioVideoFusion(nn.Module):
    """w = sigmoid(<theta(f_V), phi(f_A)>) per pixel (eq. 2); f_VA = Conv1x1([f_V, w * f_A]) (eq. 3)."""

    def __init__(self, *, video_channels: int, audio_channels: int, embed_channels: int) -> None:
        super().__init__()
        self.theta = nn.Conv2d(video_channels, embed_channels, 1)
        self.phi = nn.Conv2d(audio_channels, embed_channels, 1)
        self.fuse = nn.Conv2d(video_channels + audio_channels, video_channels, 1)
        _identity_then_zero(self.fuse)
        self.scale = embed_channels ** -0.5

    def forward(self, f_v: Tensor, f_a: Tensor) -> tuple[Tensor, Tensor]:
        """f_v (Tensor[B, C, H, W]), f_a (Tensor[B, C_A, H, W]) ->
        f_VA (Tensor[B, C, H, W]), attention w (Tensor[B, 1, H, W]) in (0, 1)."""
        w = torch.sigmoid((self.theta(f_v) * self.phi(f_a)).sum(dim=1, keepdim=True) * self.scale)
        return self.fuse(torch.cat([f_v, w * f_a], dim=1)), w


class EmotionFusion(nn.Module):
    """f_VAE = Conv1x1([w_VA (x) f_VA, s]) (eq. 5): channel attention, then s as constant maps."""

    def __init__(self, *, channels: int, num_states: int) -> None:
        super().__init__()
        self.fuse = nn.Conv2d(channels + num_states, channels, 1)
        _identity_then_zero(self.fuse)

    def forward(self, f_va: Tensor, w_va: Tensor, s: Tensor) -> Tensor:
        """f_va (Tensor[B, C, H, W]), w_va (Tensor[B, C]), s (Tensor[B, 15] one-hot) -> Tensor[B, C, H, W]."""
        b, _, h, w = f_va.shape
        s_maps = s[:, :, None, None].expand(b, s.shape[1], h, w)  # (B, 15, H, W)
        return self.fuse(torch.cat([f_va * w_va[:, :, None, None], s_maps], dim=1))
