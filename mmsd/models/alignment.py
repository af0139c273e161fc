"""Video branch (Fig. 2, Sec. 3.2): per-frame features -> deformable alignment -> fusion -> f_V.

Choices where the paper is silent:
- Feature extractor: conv3x3 + LeakyReLU + `extract_blocks` residual blocks, shared by all frames.
- Alignment: one modulated deformable conv (DCNv2) per neighbour at LR resolution, its
  offsets and masks predicted by two conv3x3+LeakyReLU layers from [neighbour, reference]
  features (TDAN/EDVR without the pyramid, to keep the CPU cost in budget). The reference
  frame's own features are used as they are (aligning a frame to itself is the identity).
- Fusion of the 2N+1 aligned features: conv1x1 over their concatenation (EDVR without TSA),
  then `trunk_blocks` residual blocks (paper: 4) give f_V.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmsd.models.blocks import conv3x3, lrelu, residual_stack
from mmsd.models.deform import ModulatedDeformConv2d


class FeatureExtractor(nn.Module):
    """Per-frame features: conv3x3 (3 -> C), LeakyReLU, residual blocks."""

    def __init__(self, channels: int, num_blocks: int) -> None:
        super().__init__()
        self.head = nn.Sequential(conv3x3(3, channels), lrelu())
        self.body = residual_stack(channels, num_blocks)

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor[B, 3, H, W]) -> Tensor[B, C, H, W]."""
        return self.body(self.head(x))


class DeformAlign(nn.Module):
    """Align neighbour features to the reference with a DCNv2 whose offsets come from both."""

    def __init__(self, channels: int, deform_groups: int) -> None:
        super().__init__()
        self.offset_feat = nn.Sequential(
            conv3x3(2 * channels, channels), lrelu(), conv3x3(channels, channels), lrelu()
        )
        self.dcn = ModulatedDeformConv2d(channels, channels, cond_channels=channels, deform_groups=deform_groups)
        self.act = lrelu()

    def forward(self, neighbour: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
        """neighbour, reference (Tensor[B', C, H, W]) -> aligned (Tensor[B', C, H, W]),
        offset (Tensor[B', 2*G*9, H, W]) in LR pixels."""
        cond = self.offset_feat(torch.cat([neighbour, reference], dim=1))
        aligned, offset = self.dcn(neighbour, cond)
        return self.act(aligned), offset

    def offset_parameters(self) -> list[nn.Parameter]:
        """Parameters that predict offsets and masks (EDVR trains them with a lower lr)."""
        return [*self.offset_feat.parameters(), *self.dcn.conv_offset.parameters()]


class VideoBranch(nn.Module):
    """2N+1 LR frames -> video feature maps f_V at LR size, and the mean |offset|."""

    def __init__(self, *, channels: int, num_frames: int, reference_index: int,
                 extract_blocks: int, deform_groups: int, trunk_blocks: int) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.reference_index = reference_index
        self.extract = FeatureExtractor(channels, extract_blocks)
        self.align = DeformAlign(channels, deform_groups)
        self.fuse = nn.Sequential(nn.Conv2d(num_frames * channels, channels, 1), lrelu())
        self.trunk = residual_stack(channels, trunk_blocks)

    def forward(self, lr: Tensor, features: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """lr (Tensor[B, T, 3, H, W]) -> f_V (Tensor[B, C, H, W]), offset_abs_mean (scalar Tensor or None if T=1).

        features (Tensor[B, T, C, H, W] or None): `self.extract` of every frame of lr, if already
        computed. A frame's features depend on that frame alone, so streaming inference extracts
        each frame once instead of once per window it is in (2N+1 times)."""
        b, t, _, h, w = lr.shape
        ref = self.reference_index
        if features is None:
            feats = self.extract(lr.reshape(b * t, 3, h, w)).view(b, t, -1, h, w)  # (B, T, C, H, W)
        elif features.dim() != 5 or features.shape[:2] != (b, t) or features.shape[3:] != (h, w):
            raise ValueError(f"expected frame features (B, T, C, H, W) = ({b}, {t}, C, {h}, {w}), "
                             f"got {tuple(features.shape)}")
        else:
            feats = features
        c = feats.shape[2]
        offset_abs_mean = None
        if t > 1:
            others = [i for i in range(t) if i != ref]
            neighbour = feats[:, others].reshape(b * (t - 1), c, h, w)  # (B*(T-1), C, H, W)
            reference = feats[:, ref:ref + 1].expand(b, t - 1, c, h, w).reshape(b * (t - 1), c, h, w)
            aligned, offset = self.align(neighbour, reference)
            offset_abs_mean = offset.abs().mean()
            aligned = aligned.view(b, t - 1, c, h, w)
            feats = torch.cat([aligned[:, :ref], feats[:, ref:ref + 1], aligned[:, ref:]], dim=1)  # (B, T, C, H, W)
        return self.trunk(self.fuse(feats.reshape(b, t * c, h, w))), offset_abs_mean
