"""Modulated deformable convolution (DCNv2) in pure PyTorch.

torchvision's compiled `deform_conv2d` does not import beside our CPU torch build, so
the op is written with `grid_sample`: one bilinear sampling call gathers all kernel taps
of all offset groups at once (the "im2col" of a deformable conv), the modulation masks
scale the columns, and a single matmul applies the weights. The backward pass is written
out by hand around `grid_sampler_2d_backward` (first derivatives only). Stride is 1 (all
the alignment needs); padding and dilation are free.

Layouts follow torchvision's `ops.deform_conv2d`, so weights and offsets are exchangeable:
    offset (Tensor[B, 2 * G * kh * kw, H_out, W_out]): (dy, dx) pairs, group-major, then tap
        (tap k = ky * kw + kx); channel 2 * (g * kh * kw + k) is dy, the next one dx.
    mask (Tensor[B, G * kh * kw, H_out, W_out]): modulation of tap k of group g.
Input channel c belongs to offset group c // (C / G). Samples outside the map read 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _output_size(size: int, kernel: int, padding: int, dilation: int) -> int:
    return size + 2 * padding - dilation * (kernel - 1)


def _check(x: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, padding: int, dilation: int) -> int:
    """Validate shapes; return the number of offset groups G."""
    if x.dim() != 4 or offset.dim() != 4 or mask.dim() != 4:
        raise ValueError(f"x, offset, mask must be 4-D, got {tuple(x.shape)}, {tuple(offset.shape)}, {tuple(mask.shape)}")
    _, c, h, w = x.shape
    _, c_in, kh, kw = weight.shape
    if c_in != c:
        raise ValueError(f"weight expects {c_in} input channels, x has {c}")
    taps = kh * kw
    if offset.shape[1] % (2 * taps) != 0:
        raise ValueError(f"offset channels must be a multiple of 2*kh*kw={2 * taps}, got {offset.shape[1]}")
    groups = offset.shape[1] // (2 * taps)
    if c % groups != 0:
        raise ValueError(f"{c} input channels do not split into {groups} offset groups")
    out_hw = (_output_size(h, kh, padding, dilation), _output_size(w, kw, padding, dilation))
    if tuple(offset.shape[2:]) != out_hw or tuple(mask.shape[2:]) != out_hw:
        raise ValueError(f"offset/mask must be {out_hw} spatially, got {tuple(offset.shape[2:])}/{tuple(mask.shape[2:])}")
    if mask.shape[1] != groups * taps:
        raise ValueError(f"mask must have G*kh*kw={groups * taps} channels, got {mask.shape[1]}")
    return groups


def _base_positions(kh: int, kw: int, h_out: int, w_out: int, padding: int, dilation: int, like: Tensor):
    """Undeformed sampling rows and columns of every tap: two (kh*kw, H_out, W_out) tensors."""
    ky = torch.arange(kh, dtype=like.dtype, device=like.device) * dilation
    kx = torch.arange(kw, dtype=like.dtype, device=like.device) * dilation
    oy = torch.arange(h_out, dtype=like.dtype, device=like.device) - padding
    ox = torch.arange(w_out, dtype=like.dtype, device=like.device) - padding
    rows = (ky.view(kh, 1, 1, 1) + oy.view(1, 1, h_out, 1)).expand(kh, kw, h_out, w_out)
    cols = (kx.view(1, kw, 1, 1) + ox.view(1, 1, 1, w_out)).expand(kh, kw, h_out, w_out)
    return rows.reshape(kh * kw, h_out, w_out), cols.reshape(kh * kw, h_out, w_out)


def _sample_columns(x: Tensor, offset: Tensor, mask: Tensor, kh: int, kw: int, padding: int, dilation: int):
    """The deformable im2col: every tap of every group sampled by one grid_sample, then masked.

    Returns x_g (B*G, C/G, H, W), grid (B*G, kk*Ho, Wo, 2), mask_g (B, G, 1, kk, Ho*Wo),
    sampled and columns (B, G, C/G, kk, Ho*Wo) with columns = sampled * mask_g.
    """
    b, c, h, w = x.shape
    taps = kh * kw
    groups = mask.shape[1] // taps
    h_out, w_out = offset.shape[2:]
    rows, cols = _base_positions(kh, kw, h_out, w_out, padding, dilation, x)
    off = offset.view(b, groups, taps, 2, h_out, w_out)
    # grid_sample with align_corners=False puts pixel i at (2i + 1) / size - 1
    grid_x = (cols + off[:, :, :, 1]) * (2 / w) + (1 / w - 1)  # (B, G, kk, Ho, Wo)
    grid_y = (rows + off[:, :, :, 0]) * (2 / h) + (1 / h - 1)
    grid = torch.stack((grid_x, grid_y), dim=-1).view(b * groups, taps * h_out, w_out, 2)
    x_g = x.reshape(b * groups, c // groups, h, w)
    sampled = F.grid_sample(x_g, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.view(b, groups, c // groups, taps, h_out * w_out)
    mask_g = mask.reshape(b, groups, 1, taps, h_out * w_out)
    return x_g, grid, mask_g, sampled, sampled * mask_g


def _deform_conv_inference(x: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, padding: int,
                           dilation: int) -> Tensor:
    """The forward of `_ModulatedDeformConv` with nothing kept for a backward: the grid is built in one
    pass from a precomputed normalised base (no full-size intermediates) and the columns are masked in
    place. Equal to the autograd path up to float rounding; about a third faster at 64 channels."""
    b, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    taps = kh * kw
    groups = mask.shape[1] // taps
    h_out, w_out = offset.shape[2:]
    rows, cols = _base_positions(kh, kw, h_out, w_out, padding, dilation, x)
    # grid_sample with align_corners=False puts pixel i at (2i + 1) / size - 1
    base = torch.stack((cols * (2 / w) + (1 / w - 1), rows * (2 / h) + (1 / h - 1)), dim=-1)  # (kk, Ho, Wo, 2)
    off = offset.view(b, groups, taps, 2, h_out, w_out).flip(3).permute(0, 1, 2, 4, 5, 3)  # (B, G, kk, Ho, Wo, 2)
    # (2/W, 2/H) built with new_full, not new_tensor, which would fix H and W in an ONNX export
    scale = torch.stack((base.new_full((), 2 / w), base.new_full((), 2 / h)))
    grid = torch.addcmul(base, off, scale).reshape(b * groups, taps * h_out, w_out, 2)
    sampled = F.grid_sample(x.reshape(b * groups, c // groups, h, w), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (B*G, C/G, kk*Ho, Wo)
    columns = sampled.view(b, groups, c // groups, taps, h_out * w_out).mul_(
        mask.reshape(b, groups, 1, taps, h_out * w_out))
    out = torch.bmm(weight.reshape(c_out, c * taps).expand(b, -1, -1), columns.view(b, c * taps, h_out * w_out))
    return out.view(b, c_out, h_out, w_out)


class _ModulatedDeformConv(torch.autograd.Function):
    """Backward written out around grid_sampler_2d_backward: in-place masking and fewer copies
    make a training step about a third faster than autograd through the same ops."""

    @staticmethod
    def forward(ctx, x, offset, mask, weight, padding, dilation):
        b, c, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        h_out, w_out = offset.shape[2:]
        x_g, grid, mask_g, sampled, columns = _sample_columns(x, offset, mask, kh, kw, padding, dilation)
        weight_2d = weight.reshape(c_out, c * kh * kw)
        # bmm on the expanded weight: matmul(2-D, 3-D) would fold and copy the large columns
        out = torch.bmm(weight_2d.expand(b, -1, -1), columns.view(b, c * kh * kw, h_out * w_out))  # (B, C_out, Ho*Wo)
        ctx.save_for_backward(x_g, grid, mask_g, weight_2d, sampled, columns)
        ctx.sizes = (b, c, h, w, mask_g.shape[1], kh, kw, h_out, w_out)
        return out.view(b, c_out, h_out, w_out)

    @staticmethod
    def backward(ctx, grad_out):
        # a backward called inside autocast must not turn these matmuls to bf16 (mixed-dtype gradients)
        with torch.autocast(grad_out.device.type, enabled=False):
            return _ModulatedDeformConv._backward(ctx, grad_out)

    @staticmethod
    def _backward(ctx, grad_out):
        x_g, grid, mask_g, weight_2d, sampled, columns = ctx.saved_tensors
        b, c, h, w, groups, kh, kw, h_out, w_out = ctx.sizes
        taps = kh * kw
        g = grad_out.reshape(b, -1, h_out * w_out)  # (B, C_out, Ho*Wo)
        grad_weight = torch.bmm(g, columns.view(b, c * taps, -1).transpose(1, 2)).sum(0)
        grad_columns = torch.bmm(weight_2d.t().expand(b, -1, -1), g).view_as(sampled)
        grad_mask = (grad_columns * sampled).sum(2)  # (B, G, kk, Ho*Wo)
        grad_sampled = grad_columns.mul_(mask_g)
        grad_x, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad_sampled.view(b * groups, c // groups, taps * h_out, w_out), x_g, grid,
            0, 0, False, [ctx.needs_input_grad[0], True],  # bilinear, zeros, align_corners=False
        )
        grad_grid = grad_grid.view(b, groups, taps, h_out, w_out, 2)
        grad_offset = torch.stack((grad_grid[..., 1] * (2 / h), grad_grid[..., 0] * (2 / w)), dim=3)
        return (
            None if grad_x is None else grad_x.view(b, c, h, w),
            grad_offset.view(b, 2 * groups * taps, h_out, w_out),
            grad_mask.view(b, groups * taps, h_out, w_out),
            grad_weight.view(-1, c, kh, kw),
            None,
            None,
        )


def modulated_deform_conv2d(
    x: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, bias: Tensor | None = None,
    *, padding: int = 1, dilation: int = 1,
) -> Tensor:
    """Modulated deformable convolution, stride 1 (first derivatives only).

    Args:
        x (Tensor[B, C, H, W]): input.
        offset (Tensor[B, 2*G*kh*kw, H_out, W_out]): sampling offsets in pixels, (dy, dx).
        mask (Tensor[B, G*kh*kw, H_out, W_out]): modulation scalars (DCNv2 uses sigmoid outputs).
        weight (Tensor[C_out, C, kh, kw]), bias (Tensor[C_out] or None).
    Returns:
        Tensor[B, C_out, H_out, W_out], H_out = H + 2*padding - dilation*(kh-1); fp32 under autocast.
    """
    _check(x, offset, mask, weight, padding, dilation)
    device = x.device.type
    if torch.is_autocast_enabled(device):
        # The whole op stays fp32 under autocast: grid_sample in bf16 is ~3x slower on the CPU, and
        # bf16 offsets (8-bit mantissa) would round sampling positions to 1/8 px beyond 16 px.
        with torch.autocast(device, enabled=False):
            return modulated_deform_conv2d(x.float(), offset.float(), mask.float(), weight.float(),
                                           None if bias is None else bias.float(), padding=padding, dilation=dilation)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, offset, mask, weight)):
        out = _ModulatedDeformConv.apply(x, offset, mask, weight, padding, dilation)
    else:  # inference: plain ops, nothing saved, traceable for export
        out = _deform_conv_inference(x, offset, mask, weight, padding, dilation)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def _bilinear_reference(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Sample x (B, C, H, W) at real positions rows, cols (B, Ho, Wo); zero outside. -> (B, C, Ho, Wo)."""
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    r0, c0 = torch.floor(rows), torch.floor(cols)
    out = x.new_zeros(b, c, *rows.shape[1:])
    for dr in (0, 1):
        for dc in (0, 1):
            rr, cc = r0 + dr, c0 + dc
            weight = (1 - (rows - rr).abs()) * (1 - (cols - cc).abs())  # (B, Ho, Wo)
            inside = (rr >= 0) & (rr <= h - 1) & (cc >= 0) & (cc <= w - 1)
            index = (rr.clamp(0, h - 1) * w + cc.clamp(0, w - 1)).long().view(b, 1, -1).expand(b, c, -1)
            value = flat.gather(2, index).view_as(out)
            out = out + value * (weight * inside).unsqueeze(1)
    return out


def deform_conv2d_reference(
    x: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, bias: Tensor | None = None,
    *, padding: int = 1, dilation: int = 1,
) -> Tensor:
    """Slow direct DCNv2 (a loop over groups and taps, explicit bilinear gathers), for tests."""
    groups = _check(x, offset, mask, weight, padding, dilation)
    b, c, _, _ = x.shape
    c_out, _, kh, kw = weight.shape
    taps, cg = kh * kw, c // groups
    h_out, w_out = offset.shape[2:]
    rows = torch.arange(h_out, dtype=x.dtype, device=x.device).view(1, h_out, 1) - padding
    cols = torch.arange(w_out, dtype=x.dtype, device=x.device).view(1, 1, w_out) - padding
    out = x.new_zeros(b, c_out, h_out, w_out)
    for g in range(groups):
        xg = x[:, g * cg:(g + 1) * cg]
        for k in range(taps):
            ky, kx = divmod(k, kw)
            dy = offset[:, 2 * (g * taps + k)]
            dx = offset[:, 2 * (g * taps + k) + 1]
            value = _bilinear_reference(xg, rows + ky * dilation + dy, cols + kx * dilation + dx)
            value = value * mask[:, g * taps + k].unsqueeze(1)
            out = out + torch.einsum("oc,bchw->bohw", weight[:, g * cg:(g + 1) * cg, ky, kx], value)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer whose offsets and masks are predicted from a conditioning map (BasicSR's DCNv2Pack).

    `conv_offset` (3x3, cond_channels -> 3*G*kh*kw) is zero-initialised, so training starts
    from zero offsets and masks sigmoid(0) = 0.5 everywhere, i.e. a plain convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, *, cond_channels: int,
                 kernel_size: int = 3, deform_groups: int = 8, dilation: int = 1) -> None:
        super().__init__()
        if in_channels % deform_groups != 0:
            raise ValueError(f"in_channels={in_channels} is not divisible by deform_groups={deform_groups}")
        self.deform_groups = deform_groups
        self.padding = dilation * (kernel_size - 1) // 2
        self.dilation = dilation
        taps = kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.conv_offset = nn.Conv2d(cond_channels, 3 * deform_groups * taps, 3, padding=1)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """x (Tensor[B, C_in, H, W]), cond (Tensor[B, cond_channels, H, W]) ->
        (Tensor[B, C_out, H, W], offset Tensor[B, 2*G*kh*kw, H, W])."""
        o = self.conv_offset(cond)
        n = o.shape[1] // 3
        offset, mask = o[:, : 2 * n], torch.sigmoid(o[:, 2 * n:])
        out = modulated_deform_conv2d(x, offset, mask, self.weight, self.bias,
                                      padding=self.padding, dilation=self.dilation)
        return out, offset
