"""EDVR baseline (Wang et al., CVPRW 2019), after BasicSR's `edvr_arch.py`.

Feature extraction -> PCD alignment (a 3-level pyramid of deformable convolutions,
coarse to fine, then a cascading one at full resolution) -> TSA fusion (temporal
attention by embedding correlation with the centre frame, then pyramid spatial
attention) -> reconstruction (residual blocks, two pixel-shuffle x2) + the upsampled
centre frame. It uses our pure-PyTorch modulated deformable convolution.

Sizes: the pyramid halves twice, so an LR size is padded (replicate) to a multiple
of 4 and the output cropped back; any LR size works. The global skip is bicubic
(BasicSR uses bilinear) so that all our models share one base image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmsd.models.blocks import ResidualBlock, Upsampler, upsample_bicubic
from mmsd.models.deform import ModulatedDeformConv2d
from mmsd.models.output import RestorationOutput


@dataclass(frozen=True)
class EDVRConfig:
    channels: int = 64
    radius: int = 2                 # N: the window has 2N+1 frames
    causal: bool = False            # window t-2N..t, the reference being the newest frame
    deform_groups: int = 8
    extract_blocks: int = 5
    reconstruct_blocks: int = 10    # EDVR-M; EDVR-L uses 40
    scale: int = 4

    def __post_init__(self):
        if self.scale != 4:
            raise ValueError(f"EDVR is built for x4, got scale {self.scale}")
        if self.channels % self.deform_groups:
            raise ValueError(f"channels {self.channels} do not split into {self.deform_groups} deform groups")


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PCDAlignment(nn.Module):
    """Align a neighbour's pyramid to the reference's: offsets at level l refine the 2x-upsampled
    offsets of level l+1; a last cascading deformable conv refines the full-resolution result."""

    def __init__(self, channels: int, deform_groups: int, levels: int = 3):
        super().__init__()
        self.levels = levels
        c = channels
        conv = lambda cin: nn.Conv2d(cin, c, 3, padding=1)  # noqa: E731
        self.offset_in = nn.ModuleList([conv(2 * c) for _ in range(levels)])
        self.offset_merge = nn.ModuleList([conv(2 * c) for _ in range(levels - 1)])  # with the coarser offsets
        self.offset_out = nn.ModuleList([conv(c) for _ in range(levels - 1)])
        self.dcn = nn.ModuleList([ModulatedDeformConv2d(c, c, cond_channels=c, deform_groups=deform_groups)
                                  for _ in range(levels)])
        self.feat_merge = nn.ModuleList([conv(2 * c) for _ in range(levels - 1)])  # with the coarser features
        self.cascade_offset = nn.Sequential(conv(2 * c), nn.LeakyReLU(0.1), conv(c), nn.LeakyReLU(0.1))
        self.cascade_dcn = ModulatedDeformConv2d(c, c, cond_channels=c, deform_groups=deform_groups)

    def forward(self, neighbour: list[torch.Tensor], reference: list[torch.Tensor]):
        """Pyramids fine-to-coarse [(B, C, H, W), (B, C, H/2, W/2), (B, C, H/4, W/4)] ->
        (aligned (B, C, H, W), mean |offset| over all deformable convs)."""
        offset = feat = None
        offset_sum = 0.0
        for level in reversed(range(self.levels)):  # coarse to fine
            o = _lrelu(self.offset_in[level](torch.cat([neighbour[level], reference[level]], dim=1)))
            if offset is not None:
                o = _lrelu(self.offset_merge[level](torch.cat([o, _up2(offset) * 2], dim=1)))
                o = _lrelu(self.offset_out[level](o))
            f, raw_offset = self.dcn[level](neighbour[level], o)
            offset_sum = offset_sum + raw_offset.abs().mean()
            if feat is not None:
                f = self.feat_merge[level](torch.cat([f, _up2(feat)], dim=1))
            feat = _lrelu(f) if level > 0 else f
            offset = o
        cascade = self.cascade_offset(torch.cat([feat, reference[0]], dim=1))
        aligned, raw_offset = self.cascade_dcn(feat, cascade)
        return _lrelu(aligned), (offset_sum + raw_offset.abs().mean()) / (self.levels + 1)


class TSAFusion(nn.Module):
    """Temporal attention (sigmoid of per-pixel correlation with the reference embedding) and
    pyramid spatial attention over the fused map."""

    def __init__(self, channels: int, num_frames: int):
        super().__init__()
        c = channels
        self.embed_ref = nn.Conv2d(c, c, 3, padding=1)
        self.embed_nbr = nn.Conv2d(c, c, 3, padding=1)
        self.fuse = nn.Conv2d(num_frames * c, c, 1)
        self.attn1 = nn.Conv2d(num_frames * c, c, 1)
        self.attn2 = nn.Conv2d(2 * c, c, 1)
        self.attn_level1 = nn.Conv2d(c, c, 1)
        self.attn_level2 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.attn_level3 = nn.Conv2d(c, c, 3, padding=1)
        self.attn3 = nn.Conv2d(c, c, 3, padding=1)
        self.attn4 = nn.Conv2d(c, c, 1)
        self.attn5 = nn.Conv2d(c, c, 3, padding=1)
        self.attn_add1 = nn.Conv2d(c, c, 1)
        self.attn_add2 = nn.Conv2d(c, c, 1)
        self.pool_max = nn.MaxPool2d(3, stride=2, padding=1)
        self.pool_avg = nn.AvgPool2d(3, stride=2, padding=1)

    def forward(self, aligned: torch.Tensor, ref_index: int) -> torch.Tensor:
        """aligned (B, T, C, H, W) -> fused (B, C, H, W); H, W divisible by 4."""
        b, t, c, h, w = aligned.shape
        # 1. temporal attention
        ref = self.embed_ref(aligned[:, ref_index])
        emb = self.embed_nbr(aligned.reshape(b * t, c, h, w)).view(b, t, c, h, w)
        prob = torch.sigmoid((emb * ref.unsqueeze(1)).sum(dim=2, keepdim=True))  # (B, T, 1, H, W)
        weighted = (aligned * prob).reshape(b, t * c, h, w)
        fused = _lrelu(self.fuse(weighted))
        # 2. spatial attention over a two-level pyramid
        attn = _lrelu(self.attn1(weighted))
        attn = _lrelu(self.attn2(torch.cat([self.pool_max(attn), self.pool_avg(attn)], dim=1)))  # H/2
        level = _lrelu(self.attn_level1(attn))
        level = _lrelu(self.attn_level2(torch.cat([self.pool_max(level), self.pool_avg(level)], dim=1)))  # H/4
        level = _up2(_lrelu(self.attn_level3(level)))
        attn = _up2(_lrelu(self.attn3(attn)) + level)
        attn = self.attn5(_lrelu(self.attn4(attn)))
        add = self.attn_add2(_lrelu(self.attn_add1(attn)))
        return fused * torch.sigmoid(attn) * 2 + add


class EDVR(nn.Module):
    def __init__(self, cfg: EDVRConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        num_frames = 2 * cfg.radius + 1
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.extract = nn.Sequential(*[ResidualBlock(c) for _ in range(cfg.extract_blocks)])
        self.down = nn.ModuleList([
            nn.Sequential(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                          nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.1))
            for _ in range(2)
        ])
        self.align = PCDAlignment(c, cfg.deform_groups)
        self.fusion = TSAFusion(c, num_frames)
        self.reconstruct = nn.Sequential(*[ResidualBlock(c) for _ in range(cfg.reconstruct_blocks)])
        self.upsample = Upsampler(c, scale=4)

    def offset_parameters(self) -> list[nn.Parameter]:
        """Parameters of the offset/mask predictors, trained at a lower learning rate."""
        return [p for m in self.modules() if isinstance(m, ModulatedDeformConv2d)
                for p in m.conv_offset.parameters()]

    def forward(self, lr: torch.Tensor, mfcc: torch.Tensor | None = None,
                emotion: torch.Tensor | None = None, *, crop: torch.Tensor | None = None) -> RestorationOutput:
        """lr (Tensor[B, T, 3, H, W]) in [0, 1]; mfcc, emotion and crop are ignored (single modality)."""
        b, t, _, height, width = lr.shape
        ref_index = t - 1 if self.cfg.causal else t // 2
        centre = lr[:, ref_index]
        pad_h, pad_w = -height % 4, -width % 4
        # padding by zero is a copy; padding always keeps the size symbolic in an ONNX export
        frames = F.pad(lr.reshape(b * t, 3, height, width), (0, pad_w, 0, pad_h), mode="replicate")
        # 1. features and their pyramid, per frame
        level1 = self.extract(_lrelu(self.head(frames)))  # (B*T, C, H, W)
        level2 = self.down[0](level1)
        level3 = self.down[1](level2)
        pyramid = [lvl.view(b, t, *lvl.shape[1:]) for lvl in (level1, level2, level3)]
        reference = [lvl[:, ref_index] for lvl in pyramid]
        # 2. PCD alignment of every frame (the reference too, as EDVR does) to the reference
        aligned, offsets = zip(*(self.align([lvl[:, i] for lvl in pyramid], reference) for i in range(t)))
        # 3. TSA fusion, 4. reconstruction + x4 upsampling, 5. global skip
        fused = self.fusion(torch.stack(aligned, dim=1), ref_index)
        image = self.upsample(self.reconstruct(fused))[..., : 4 * height, : 4 * width]
        base = upsample_bicubic(centre, 4)
        return RestorationOutput(image=image + base, offset_abs_mean=torch.stack(offsets).mean().detach())
