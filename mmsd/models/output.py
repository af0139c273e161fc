"""What every restoration network returns: a dataclass, never a flag-dependent tuple."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class RestorationOutput:
    """image (Tensor[B, 3, 4H, 4W]) in about [0, 1]; au (Tensor[B, 17]) predicted AU intensities when
    the network has an emotion branch; offset_abs_mean (Tensor[]) mean |deformable offset| when it
    aligns frames, logged to catch EDVR's offset blow-up."""

    image: Tensor
    au: Tensor | None = None
    offset_abs_mean: Tensor | None = None
