"""Training losses of eq. 4, 6 and 7, as small modules over model outputs and batch targets.

Adversarial losses take logits (numerically stable softplus forms):
    generator:      L_adv = -E[log D(G(x), s)]                = softplus(-fake).mean()
    discriminator:  -E[log D(I, s)] - E[log(1 - D(G(x), s))]  = softplus(-real).mean() + softplus(fake).mean()
L_E is the squared L2 norm of eq. 4 (sum over the 17 AUs), averaged over the samples that
have an AU target (au_mask); samples without one contribute neither loss nor gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsd.models.mmsd import MMSDOutput


def l1_loss(image: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error; image, target (Tensor[B, 3, H, W])."""
    return F.l1_loss(image, target)


def generator_adversarial_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating -E[log sigmoid(D(G(x), s))]; fake_logits (Tensor[B])."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E[log D(real)] - E[log(1 - D(fake))]; logits (Tensor[B])."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def au_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Masked squared L2 (eq. 4): pred, target (Tensor[B, 17]), mask (Tensor[B] bool).

    Mean over masked-in samples of sum over AUs; 0 (with a graph) when no sample has a target."""
    mask = mask.to(torch.bool)
    per_sample = (pred - torch.where(mask[:, None], target, pred.detach())).pow(2).sum(dim=1)  # (B,)
    return (per_sample * mask).sum() / mask.sum().clamp(min=1)


@dataclass
class LossTerms:
    """The total loss and its terms (detached terms are for logging)."""

    total: Tensor
    l1: Tensor
    adv: Tensor | None
    au: Tensor | None


class GeneratorLoss(nn.Module):
    """L = ||I_hat - I||_1 + adv_weight * L_adv + au_weight * L_E (eq. 7; paper: 0.01 and 0.001)."""

    def __init__(self, *, adv_weight: float = 0.01, au_weight: float = 0.001) -> None:
        super().__init__()
        self.adv_weight = adv_weight
        self.au_weight = au_weight

    def forward(self, output: MMSDOutput, hr: Tensor, au: Tensor | None = None, au_mask: Tensor | None = None,
                fake_logits: Tensor | None = None) -> LossTerms:
        """output.image and hr (Tensor[B, 3, 4H, 4W]); au (Tensor[B, 17]) and au_mask (Tensor[B] bool)
        are used when the model predicts AUs; fake_logits (Tensor[B]) = D(output.image, s), or None
        while the adversarial term is off (the first epochs)."""
        l1 = l1_loss(output.image, hr)
        total = l1
        adv = au_term = None
        if fake_logits is not None:
            adv = generator_adversarial_loss(fake_logits)
            total = total + self.adv_weight * adv
        if output.au is not None and au is not None and au_mask is not None:
            au_term = au_loss(output.au, au, au_mask)
            total = total + self.au_weight * au_term
        return LossTerms(total=total, l1=l1, adv=adv, au=au_term)
