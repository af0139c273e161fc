"""Parameter count and multiply-accumulates (MACs) per restored frame.

MACs are counted with forward hooks: Conv2d, ConvTranspose2d, Linear, LSTM (4 gates x hidden x (input + hidden)
per step, layer and direction) and the deformable conv (its matmul plus 4 MACs per bilinear
sample). Element-wise ops (activations, attention products, interpolation) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmsd.models.deform import ModulatedDeformConv2d


@dataclass(frozen=True)
class Complexity:
    params: int
    macs_per_frame: int
    lr_size: tuple[int, int]  # (H, W)

    def __str__(self) -> str:
        h, w = self.lr_size
        return f"{self.params / 1e6:.2f} M params, {self.macs_per_frame / 1e9:.2f} GMACs/frame at {w}x{h} LR"


def _macs(module: nn.Module, inputs, output) -> int:
    if isinstance(module, nn.Conv2d):
        k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        return output.numel() * k
    if isinstance(module, nn.ConvTranspose2d):  # every input value meets C_out/groups x kh x kw weights
        return inputs[0].numel() * module.weight.shape[1] * module.kernel_size[0] * module.kernel_size[1]
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, nn.LSTM):
        batch, steps = inputs[0].shape[:2]
        dirs = 2 if module.bidirectional else 1
        total = 0
        for layer in range(module.num_layers):
            width = module.input_size if layer == 0 else module.hidden_size * dirs
            total += dirs * steps * batch * 4 * module.hidden_size * (width + module.hidden_size)
        return total
    if isinstance(module, ModulatedDeformConv2d):
        out = output[0]
        taps = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]  # C_in * kh * kw
        return out.numel() * taps + 4 * out.shape[0] * taps * out.shape[2] * out.shape[3]
    return 0


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """MACs of one forward pass of `model` on `inputs` (in eval mode, without gradients)."""
    total = 0

    def hook(module, args, output):
        nonlocal total
        total += _macs(module, args, output)

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.LSTM, ModulatedDeformConv2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def complexity(model: nn.Module, lr_size: tuple[int, int] = (72, 120)) -> Complexity:
    """Params and MACs of any restoration model here (its `cfg` has `radius`) for one frame of
    LR size (H, W) (default 120x72); audio inputs take the model's MFCC shape, else 4 x 20."""
    cfg = model.cfg
    h, w = lr_size
    frames = 2 * cfg.radius + 1
    macs = count_macs(model, torch.zeros(1, frames, 3, h, w),
                      torch.zeros(1, frames, getattr(cfg, "mfcc_per_frame", 4), getattr(cfg, "n_mfcc", 20)),
                      torch.zeros(1, dtype=torch.long))
    return Complexity(params=sum(p.numel() for p in model.parameters()), macs_per_frame=macs, lr_size=(h, w))
