"""Emotion branch (Fig. 5, Sec. 3.4): AU generator (eq. 4) and AU -> channel attention.

Choices where the paper is silent: f_V is global-average-pooled to a C-vector and
concatenated with s; the AU generator's three Linear layers have ReLU+Dropout after the
first two, the third outputs the 17 AU intensities unconstrained (OpenFace's 0..5 scale);
the channel attention is 3 Linear layers with ReLU between and 2*sigmoid at the end, its
last layer zero-initialised: w_VA starts at exactly 1 (f_VA passes unchanged) and can
learn to weaken or strengthen each channel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NUM_AUS = 17  # OpenFace AU intensities (AU01_r ... AU45_r)


class AUGenerator(nn.Module):
    """[pooled f_V, s] -> predicted AU intensities f_E hat."""

    def __init__(self, *, channels: int, num_states: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(channels + num_states, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, NUM_AUS),
        )

    def forward(self, f_v: Tensor, s: Tensor, pooled: Tensor | None = None) -> Tensor:
        """f_v (Tensor[B, C, H, W]), s (Tensor[B, 15]) -> Tensor[B, 17]. pooled (Tensor[B, C] or None):
        the mean of f_V to read instead of f_v's own (a tile's caller passes the whole frame's)."""
        return self.mlp(torch.cat([f_v.mean(dim=(2, 3)) if pooled is None else pooled, s], dim=1))


class AUAttention(nn.Module):
    """AUs -> 3 FC -> channel attention w_VA in (0, 2)^C, 1 before training."""

    def __init__(self, *, channels: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(NUM_AUS, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, au: Tensor) -> Tensor:
        """au (Tensor[B, 17]) -> Tensor[B, C]."""
        return 2.0 * torch.sigmoid(self.mlp(au))
