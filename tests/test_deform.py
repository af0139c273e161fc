"""Modulated deformable convolution: the fast grid_sample op against a slow direct reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmsd.models.deform import ModulatedDeformConv2d, deform_conv2d_reference, modulated_deform_conv2d


def _case(*, b=2, c=4, c_out=3, h=6, w=7, k=3, groups=2, padding=1, dilation=1, scale=2.0,
          dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    h_out, w_out = h + 2 * padding - dilation * (k - 1), w + 2 * padding - dilation * (k - 1)
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype)
    # non-integer offsets, some reaching outside the map, so every bilinear case is exercised
    offset = torch.randn(b, 2 * groups * k * k, h_out, w_out, generator=g, dtype=dtype) * scale
    mask = torch.rand(b, groups * k * k, h_out, w_out, generator=g, dtype=dtype)
    weight = torch.randn(c_out, c, k, k, generator=g, dtype=dtype)
    bias = torch.randn(c_out, generator=g, dtype=dtype)
    return x, offset, mask, weight, bias


@pytest.mark.parametrize("groups,padding,dilation,k", [(1, 1, 1, 3), (2, 1, 1, 3), (4, 2, 2, 3), (2, 0, 1, 3), (2, 1, 1, 1)])
def test_matches_reference_values_and_gradients(groups, padding, dilation, k):
    tensors = [t.requires_grad_() for t in _case(groups=groups, padding=padding, dilation=dilation, k=k)]
    x, offset, mask, weight, bias = tensors
    fast = modulated_deform_conv2d(x, offset, mask, weight, bias, padding=padding, dilation=dilation)
    slow = deform_conv2d_reference(x, offset, mask, weight, bias, padding=padding, dilation=dilation)
    torch.testing.assert_close(fast, slow)
    with torch.no_grad():  # the inference path (plain ops, no custom backward)
        torch.testing.assert_close(modulated_deform_conv2d(x, offset, mask, weight, bias, padding=padding,
                                                           dilation=dilation), slow)
    upstream = torch.randn_like(fast)
    grads_fast = torch.autograd.grad(fast, tensors, upstream)
    grads_slow = torch.autograd.grad(slow, tensors, upstream)
    for name, gf, gs in zip(("x", "offset", "mask", "weight", "bias"), grads_fast, grads_slow):
        torch.testing.assert_close(gf, gs, msg=lambda m, name=name: f"grad of {name}: {m}")


def test_gradcheck_float64():
    x, offset, mask, weight, bias = _case(b=1, c=2, c_out=1, h=2, w=3, groups=2, scale=0.7, seed=1)
    inputs = tuple(t.requires_grad_() for t in (x, offset, mask, weight, bias))
    assert torch.autograd.gradcheck(lambda *a: modulated_deform_conv2d(*a, padding=1), inputs, eps=1e-6, atol=1e-5)


def test_gradients_when_only_offsets_and_masks_learn():
    x, offset, mask, weight, bias = _case()
    offset.requires_grad_(), mask.requires_grad_()
    fast = modulated_deform_conv2d(x, offset, mask, weight, bias)
    slow = deform_conv2d_reference(x, offset, mask, weight, bias)
    for gf, gs in zip(torch.autograd.grad(fast.sum(), [offset, mask]), torch.autograd.grad(slow.sum(), [offset, mask])):
        torch.testing.assert_close(gf, gs)


@pytest.mark.parametrize("padding,dilation", [(1, 1), (2, 2)])
def test_zero_offsets_unit_masks_is_plain_conv(padding, dilation):
    x, offset, mask, weight, bias = _case(groups=2, padding=padding, dilation=dilation, dtype=torch.float32)
    out = modulated_deform_conv2d(x, torch.zeros_like(offset), torch.ones_like(mask), weight, bias,
                                  padding=padding, dilation=dilation)
    torch.testing.assert_close(out, F.conv2d(x, weight, bias, padding=padding, dilation=dilation))


def test_integer_offset_shifts_the_input():
    x = torch.randn(1, 1, 5, 6)
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 1, 1] = 1.0  # centre tap only: output = input sampled at p + offset
    offset = torch.zeros(1, 18, 5, 6)
    offset[:, 2 * 4 + 1] = 1.0  # centre tap, dx = +1
    out = modulated_deform_conv2d(x, offset, torch.ones(1, 9, 5, 6), weight)
    torch.testing.assert_close(out[..., :-1], x[..., 1:])
    assert torch.all(out[..., -1] == 0)  # sampled outside the map


def test_module_starts_as_half_plain_conv_and_returns_offsets():
    layer = ModulatedDeformConv2d(4, 6, cond_channels=5, deform_groups=2)
    x, cond = torch.randn(2, 4, 6, 7), torch.randn(2, 5, 6, 7)
    out, offset = layer(x, cond)
    assert offset.shape == (2, 2 * 2 * 9, 6, 7) and torch.all(offset == 0)
    # zero-initialised offset conv: zero offsets and masks sigmoid(0) = 0.5
    torch.testing.assert_close(out, 0.5 * F.conv2d(x, layer.weight, padding=1) + layer.bias.view(1, -1, 1, 1))
    (out.sum()).backward()
    assert layer.conv_offset.weight.grad.abs().sum() > 0  # offsets can learn from step one


def test_matches_torchvision_when_it_imports():
    try:
        from torchvision.ops import deform_conv2d
    except Exception:  # torchvision is absent or its compiled ops do not load beside this torch
        pytest.skip("torchvision.ops.deform_conv2d is not usable here")
    x, offset, mask, weight, bias = _case(dtype=torch.float32)
    torch.testing.assert_close(modulated_deform_conv2d(x, offset, mask, weight, bias, padding=1),
                               deform_conv2d(x, offset, weight, bias, padding=1, mask=mask))


def test_rejects_bad_shapes():
    x, offset, mask, weight, bias = _case()
    with pytest.raises(ValueError, match="offset channels must be a multiple"):
        modulated_deform_conv2d(x, offset[:, :-1], mask, weight, bias)
    with pytest.raises(ValueError, match="mask must have"):
        modulated_deform_conv2d(x, offset, mask[:, :-1], weight, bias)
    with pytest.raises(ValueError, match="do not split into"):
        modulated_deform_conv2d(x[:, :3], offset, mask, weight[:, :3], bias)
    with pytest.raises(ValueError, match="not divisible by deform_groups"):
        ModulatedDeformConv2d(6, 6, cond_channels=4, deform_groups=4)
