"""MMSDConfig: the knobs of MMSD-Net, and the named YAML configs of every network.

Dataclass defaults are the `paper` values. Where the paper (Sec. 3) is silent the choice
is ours and marked "(ours)" below; all of them are plain fields, overridable by YAML or
by `load_config(name, key=value)`.

Named configs are `configs/<model>-<name>.yaml` (`mmsd-small`, `edvr-paper`, ...);
`load_config("small", model="edvr")` reads one into that model's config dataclass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from mmsd.media.audio import MFCC_NORMS
from mmsd.models.bicubic import BicubicConfig
from mmsd.models.dbpn import DBPNConfig
from mmsd.models.edvr import EDVRConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
NAMED_CONFIGS = ("paper", "small")


@dataclass(frozen=True)
class MMSDConfig:
    """Architecture of MMSD-Net (Fig. 2-5) and of its discriminator."""

    # video branch (Sec. 3.2)
    channels: int = 64            # C: width of f_V, the fusions and the reconstruction (paper: 64)
    radius: int = 2               # N: T = 2N+1 frames per window (paper: N unstated; ours 2)
    causal: bool = False          # window t-2N..t, restoring its last frame (low-latency mode, ours)
    extract_blocks: int = 2       # residual blocks of the per-frame feature extractor (ours)
    deform_groups: int = 8        # DCNv2 offset groups (ours, as EDVR)
    trunk_blocks: int = 4         # residual blocks after the fusion of aligned frames (paper: 4)
    # audio branch (Sec. 3.2, Fig. 3)
    audio: bool = True            # off: the branch is absent, f_VA = f_V
    mfcc_per_frame: int = 4       # K MFCC vectors per video frame (ours)
    n_mfcc: int = 20              # M coefficients (ours)
    mfcc_norm: str = "none"       # "cmvn": running per-utterance mean/variance normalisation (ours,
                                  # mmsd.media.audio; issue 13); "none" for files written before it existed
    audio_hidden: int = 128       # BiLSTM hidden size per direction (ours)
    audio_layers: int = 3         # BiLSTM layers (paper: 3)
    audio_map_channels: int = 15  # channels of f_A; the FC is (channels x 9 x 15) (paper: 15x9x15)
    attention_channels: int = 32  # width of the embeddings theta, phi of eq. 2 (ours)
    # emotion branch (Sec. 3.4, Fig. 5)
    emotion: bool = True          # off: no AU generator, no eq. 5, f_VAE = f_VA
    au_hidden: int = 128          # width of the AU generator's Linear blocks (ours)
    au_dropout: float = 0.2       # dropout of the AU generator's Linear blocks (ours)
    emotion_hidden: int = 64      # width of the 3 FC layers AU -> channel attention (ours)
    au_stop_gradient: bool = False  # L_E trains the AU generator only, not f_V (ours; see MMSDNet)
    # reconstruction (Sec. 3.1)
    recon_blocks: int = 10        # residual blocks before the x4 upsampler (paper: 10)
    upsample_channels: int = 64   # width of the two pixel-shuffle x2 stages (ours; EDVR uses C)
    # discriminator (Sec. 3.5)
    disc_channels: int = 64       # width of its first block, doubled per stage (IcGAN D: 64)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"config {f.name} must be true or false, got {value!r}")
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"config {f.name} must be an integer, got {value!r}")
            if f.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"config {f.name} must be a number, got {value!r}")
            if f.type == "int" and value < (0 if f.name.endswith(("blocks", "radius")) else 1):
                raise ValueError(f"config {f.name} must be positive, got {value}")
        if self.channels % self.deform_groups != 0:
            raise ValueError(f"config channels={self.channels} is not divisible by deform_groups={self.deform_groups}")
        if self.mfcc_norm not in MFCC_NORMS:
            raise ValueError(f"config mfcc_norm must be one of {', '.join(MFCC_NORMS)}, got {self.mfcc_norm!r}")
        if not 0.0 <= self.au_dropout < 1.0:
            raise ValueError(f"config au_dropout must be in [0, 1), got {self.au_dropout}")

    @property
    def num_frames(self) -> int:
        """T = 2N+1."""
        return 2 * self.radius + 1

    @property
    def reference_index(self) -> int:
        """Index in the window of the frame being restored: the centre, or the last when causal."""
        return self.num_frames - 1 if self.causal else self.radius


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"config {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config {path} must be a mapping of key: value, got {type(data).__name__}")
    return data


def _check_keys(keys, where: str, config_type: type) -> None:
    known = {f.name for f in fields(config_type)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(known))}")


def load_config(name_or_path: str | Path = "paper", *, model: str = "mmsd", **overrides: Any):
    """Read a named config ('paper', 'small') of `model` or a YAML file, then apply overrides.

    Returns the model's config dataclass (MMSDConfig for 'mmsd'). Raises ValueError on an
    unknown model or name, a missing file, an unknown key or a bad value.
    """
    if model not in CONFIG_TYPES:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(CONFIG_TYPES)}")
    config_type = CONFIG_TYPES[model]
    if str(name_or_path) in NAMED_CONFIGS:
        path = CONFIG_DIR / f"{model}-{name_or_path}.yaml"
        values = _read_yaml(path) if path.exists() else {}  # bicubic has nothing to configure
    else:
        path = Path(name_or_path)
        if path.suffix not in (".yaml", ".yml"):
            raise ValueError(f"config {str(name_or_path)!r} is neither {' nor '.join(NAMED_CONFIGS)} nor a .yaml file")
        values = _read_yaml(path)
    _check_keys(values, path.name, config_type)
    _check_keys(overrides, "overrides", config_type)
    return config_type(**{**values, **overrides})


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """['channels=32', 'audio=false'] -> {'channels': 32, 'audio': False} (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


CONFIG_TYPES: dict[str, type] = {
    "mmsd": MMSDConfig, "edvr": EDVRConfig, "dbpn": DBPNConfig, "bicubic": BicubicConfig,
}


def config_dict(cfg: MMSDConfig) -> dict[str, Any]:
    """Plain dict of the config (for checkpoints and logs)."""
    return dataclasses.asdict(cfg)
