"""Restoration networks: MMSD-Net (Sec. 3) with its discriminator, losses and configs, and baselines.

Legend: B batch, T frames (2N+1), C channels, H W LR height and width,
K MFCC vectors per frame, M MFCC coefficients. Frame sizes are said W x H (120x72).

Every model is built from a frozen config dataclass and returns a RestorationOutput:
    model = build_model("mmsd", dataclasses.asdict(load_config("small")))
"""

from __future__ import annotations

from torch import nn

from mmsd.models.bicubic import Bicubic, BicubicConfig
from mmsd.models.complexity import Complexity, complexity, count_macs
from mmsd.models.config import MMSDConfig, config_dict, load_config, parse_overrides
from mmsd.models.dbpn import DBPN, DBPNConfig
from mmsd.models.discriminator import Discriminator
from mmsd.models.edvr import EDVR, EDVRConfig
from mmsd.models.losses import GeneratorLoss, LossTerms, au_loss, discriminator_loss, generator_adversarial_loss, l1_loss
from mmsd.models.mmsd import MMSDNet, MMSDOutput, param_groups
from mmsd.models.output import RestorationOutput

# name -> (config dataclass, network class)
MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "mmsd": (MMSDConfig, MMSDNet),
    "edvr": (EDVRConfig, EDVR),
    "dbpn": (DBPNConfig, DBPN),
    "bicubic": (BicubicConfig, Bicubic),
}


def build_model(name: str, config: dict) -> nn.Module:
    """Build network `name` from a dict of its config's fields (dataclasses.asdict of the config).

    Raises ValueError on an unknown name or unknown config keys."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    config_type, network = MODELS[name]
    known = set(config_type.__dataclass_fields__)
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown {name} config key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return network(config_type(**config))


__all__ = [
    "MODELS", "Bicubic", "BicubicConfig", "Complexity", "DBPN", "DBPNConfig", "Discriminator", "EDVR",
    "EDVRConfig", "GeneratorLoss", "LossTerms", "MMSDConfig", "MMSDNet", "MMSDOutput", "RestorationOutput",
    "au_loss", "build_model", "complexity", "config_dict", "count_macs", "discriminator_loss",
    "generator_adversarial_loss", "l1_loss", "load_config", "param_groups", "parse_overrides",
]
