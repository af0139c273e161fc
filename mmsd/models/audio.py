"""Audio branch (Fig. 3, Sec. 3.2): MFCC window -> BiLSTM -> 1-D vector -> FC -> 2-D maps f_A.

Choices where the paper is silent:
- Input normalisation: BatchNorm1d over the M coefficients (raw MFCCs span ~100x between
  c0 and the rest; the running statistics learn the corpus' scale, no fixed constants).
- The sequence is the window's T*K MFCC vectors in time order; the 1-D vector is the
  concatenation of the last layer's final forward and backward hidden states (2 x hidden).
- "FC of dimension 15x9x15" is read as audio_map_channels=15 maps of 9 x 15 (H x W),
  i.e. 120x72 / 8; each of the three upsampling blocks is conv3x3 + pixel shuffle x2 +
  LeakyReLU, giving 15 maps of 72 x 120 (H x W).
- Other LR sizes: f_A is resampled bilinearly (align_corners=False) to f_V's H x W. A
  training patch gets the part of f_A that its box covers (`box`, see AudioBranch.forward),
  so the maps keep their meaning in face coordinates; without a box, the whole frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsd.models.blocks import PixelShuffleUp, lrelu

BASE_HW = (9, 15)   # (H, W) of the FC's maps: 120x72 (W x H) / 8
FULL_HW = (72, 120)  # (H, W) after three x2 upsamplings: the paper's LR frame


class AudioEncoder(nn.Module):
    """MFCC window -> 1-D audio feature vector."""

    def __init__(self, *, n_mfcc: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_mfcc)
        self.lstm = nn.LSTM(n_mfcc, hidden, num_layers=layers, batch_first=True, bidirectional=True)

    def forward(self, mfcc: Tensor) -> Tensor:
        """mfcc (Tensor[B, T, K, M]) -> Tensor[B, 2*hidden] (fp32, also under autocast)."""
        device = mfcc.device.type
        if torch.is_autocast_enabled(device):
            # fp32 under autocast: oneDNN has no bf16 LSTM without AVX-512 (it raises), and these
            # steps are too small to gain from bf16 anyway
            with torch.autocast(device, enabled=False):
                return self.forward(mfcc.float())
        b, t, k, m = mfcc.shape
        seq = self.norm(mfcc.reshape(b * t * k, m)).view(b, t * k, m)  # (B, A=T*K, M)
        _, (h_n, _) = self.lstm(seq)  # h_n: (layers*2, B, hidden)
        return torch.cat([h_n[-2], h_n[-1]], dim=1)


class AudioToMaps(nn.Module):
    """1-D vector -> FC to (C_A, 9, 15) -> three x2 upsampling blocks -> (C_A, 72, 120)."""

    def __init__(self, in_features: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.fc = nn.Sequential(nn.Linear(in_features, channels * BASE_HW[0] * BASE_HW[1]), lrelu())
        self.up = nn.Sequential(*(PixelShuffleUp(channels, channels) for _ in range(3)))

    def forward(self, vector: Tensor) -> Tensor:
        """vector (Tensor[B, F]) -> Tensor[B, C_A, 72, 120]."""
        maps = self.fc(vector).view(-1, self.channels, *BASE_HW)  # (B, C_A, 9, 15)
        return self.up(maps)


def fit_maps(maps: Tensor, size: tuple[int, int], box: Tensor | None = None) -> Tensor:
    """Resample full-frame maps to an LR input of `size` (H, W).

    maps (Tensor[B, C, h, w]); box (Tensor[B, 4] or None): the input's region of the full
    frame as fractions (x0, y0, x1, y1) in [0, 1]; None is the whole frame (0, 0, 1, 1).
    Returns Tensor[B, C, H, W]; bilinear, align_corners=False, borders replicated. With a box the
    sampling runs in fp32, also under autocast: a bf16 grid (8-bit mantissa) would place the maps up
    to a pixel off within a tile.
    """
    device = maps.device.type
    if box is not None and torch.is_autocast_enabled(device):
        with torch.autocast(device, enabled=False):
            return fit_maps(maps.float(), size, box.float())
    if box is None:
        # an exported graph keeps (H, W) symbolic, so it resamples always (to the same size: exact)
        if not torch.compiler.is_exporting() and tuple(maps.shape[2:]) == tuple(size):
            return maps
        return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    box = box.to(maps.dtype)
    x0, y0, x1, y1 = box.unbind(dim=1)
    zero = torch.zeros_like(x0)
    # affine_grid maps output [-1, 1] onto [2*x0 - 1, 2*x1 - 1] (and the same for y)
    theta = torch.stack([
        torch.stack([x1 - x0, zero, x0 + x1 - 1], dim=1),
        torch.stack([zero, y1 - y0, y0 + y1 - 1], dim=1),
    ], dim=1)  # (B, 2, 3)
    grid = F.affine_grid(theta, [maps.shape[0], maps.shape[1], *size], align_corners=False)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)


class AudioBranch(nn.Module):
    """MFCC window -> audio feature maps f_A at the LR input's size."""

    def __init__(self, *, n_mfcc: int, hidden: int, layers: int, map_channels: int) -> None:
        super().__init__()
        self.encoder = AudioEncoder(n_mfcc=n_mfcc, hidden=hidden, layers=layers)
        self.to_maps = AudioToMaps(2 * hidden, map_channels)

    def forward(self, mfcc: Tensor, size: tuple[int, int], box: Tensor | None = None) -> Tensor:
        """mfcc (Tensor[B, T, K, M]), size (H, W), box (Tensor[B, 4] or None, see fit_maps)
        -> f_A (Tensor[B, C_A, H, W])."""
        return fit_maps(self.to_maps(self.encoder(mfcc)), size, box)
