"""D-DBPN baseline (Haris et al., CVPR 2018): dense deep back-projection, single frame.

Iterative up- and down-projection units with error feedback; every unit after the
first sees the concatenation of all earlier units' outputs of its resolution (the
"dense" D-DBPN), and the HR maps of all up-units are concatenated for the final
convolution. For x4 each projection is an 8x8 (de)convolution, stride 4, padding 2.

It restores the centre frame of the window alone: the paper compares against DBPN as
a single-image method. Deviation, configurable: `global_residual` adds the bicubic
upsampled input to the output (as our MMSD-Net and EDVR do), so all three learn a
residual under the same short CPU budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmsd.models.blocks import upsample_bicubic
from mmsd.models.output import RestorationOutput


@dataclass(frozen=True)
class DBPNConfig:
    features: int = 256          # n0, the first feature layer
    channels: int = 64           # nr, the projection units' width
    stages: int = 7              # up/down projection pairs (D-DBPN: 7)
    scale: int = 4
    radius: int = 2              # the window the data pipeline provides; only its centre is used
    causal: bool = False         # with a causal window the newest frame is the one restored
    global_residual: bool = True

    def __post_init__(self):
        if self.scale != 4:
            raise ValueError(f"DBPN is built for x4 (8x8 kernels, stride 4), got scale {self.scale}")
        if self.stages < 2:
            raise ValueError(f"DBPN needs at least 2 stages, got {self.stages}")


def _projection(kind: type[nn.Module], channels: int) -> nn.Sequential:
    return nn.Sequential(kind(channels, channels, 8, stride=4, padding=2), nn.PReLU(channels))


class UpProjection(nn.Module):
    """LR maps (B, C, H, W) -> HR maps (B, C, 4H, 4W), correcting with the back-projected error."""

    def __init__(self, channels: int, inputs: int = 1):
        super().__init__()
        self.squeeze = (nn.Sequential(nn.Conv2d(channels * inputs, channels, 1), nn.PReLU(channels))
                        if inputs > 1 else nn.Identity())
        self.up1 = _projection(nn.ConvTranspose2d, channels)
        self.down = _projection(nn.Conv2d, channels)
        self.up2 = _projection(nn.ConvTranspose2d, channels)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        low = self.squeeze(low)
        high = self.up1(low)
        return self.up2(self.down(high) - low) + high


class DownProjection(nn.Module):
    """HR maps (B, C, 4H, 4W) -> LR maps (B, C, H, W), the mirror of UpProjection."""

    def __init__(self, channels: int, inputs: int = 1):
        super().__init__()
        self.squeeze = (nn.Sequential(nn.Conv2d(channels * inputs, channels, 1), nn.PReLU(channels))
                        if inputs > 1 else nn.Identity())
        self.down1 = _projection(nn.Conv2d, channels)
        self.up = _projection(nn.ConvTranspose2d, channels)
        self.down2 = _projection(nn.Conv2d, channels)

    def forward(self, high: torch.Tensor) -> torch.Tensor:
        high = self.squeeze(high)
        low = self.down1(high)
        return self.down2(self.up(low) - high) + low


class DBPN(nn.Module):
    def __init__(self, cfg: DBPNConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.head = nn.Sequential(
            nn.Conv2d(3, cfg.features, 3, padding=1), nn.PReLU(cfg.features),
            nn.Conv2d(cfg.features, c, 1), nn.PReLU(c),
        )
        self.ups = nn.ModuleList([UpProjection(c, inputs=i + 1) for i in range(cfg.stages)])
        self.downs = nn.ModuleList([DownProjection(c, inputs=i + 1) for i in range(cfg.stages - 1)])
        self.tail = nn.Conv2d(c * cfg.stages, 3, 3, padding=1)

    def forward(self, lr: torch.Tensor, mfcc: torch.Tensor | None = None,
                emotion: torch.Tensor | None = None, *, crop: torch.Tensor | None = None) -> RestorationOutput:
        """lr (Tensor[B, T, 3, H, W]) in [0, 1]; mfcc, emotion and crop are ignored (single modality)."""
        centre = lr[:, -1] if self.cfg.causal else lr[:, lr.shape[1] // 2]  # (B, 3, H, W)
        # an 8x8 stride-4 padding-2 projection maps H <-> 4H exactly, so any LR size works
        lows, highs = [self.head(centre)], []
        for i, up in enumerate(self.ups):
            highs.append(up(torch.cat(lows, dim=1)))
            if i < len(self.downs):
                lows.append(self.downs[i](torch.cat(highs, dim=1)))
        image = self.tail(torch.cat(highs, dim=1))  # (B, 3, 4H, 4W)
        if self.cfg.global_residual:
            image = image + upsample_bicubic(centre, 4)
        return RestorationOutput(image=image)
