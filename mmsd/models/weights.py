"""Weights and training state on disk, as safetensors: loading never runs code.

A model file holds the network's tensors and, in its string metadata, the model's
name and its config as JSON, so `load_model(path)` can rebuild the network without
any other file. Training checkpoints add the optimisers' tensors and the RNG state
under prefixed keys; everything that is not a tensor goes into the JSON metadata.
Every write goes to a temporary file in the same folder and is renamed into place,
so a kill never leaves a half-written file at the target path.

A model is found by name (``mmsd decode --model mmsd``) in the models shipped inside the
package (`SHIPPED_DIR`, package data, so any install has them), then in the folders of the
environment variable ``MMSD_MODELS`` (separated like PATH), as ``NAME.safetensors``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmsd.errors import MmsdError
from mmsd.media.fileio import atomic_path

# The shipped models and their cards, NAME.safetensors and NAME.md: package data of `mmsd`. A wheel or
# sdist install unpacks them as plain files (safetensors memory-maps them, so they must be files).
SHIPPED_DIR = Path(str(resources.files("mmsd").joinpath("shipped")))
MODELS_ENV = "MMSD_MODELS"  # a user's model folders, searched after the shipped ones

FORMAT = "mmsd-weights/1"


def atomic_save(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """save_file(tensors, path) through a temporary file in the same folder."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


def read(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata of a safetensors file; MmsdError if it is not one."""
    metadata = read_metadata(path)
    try:
        tensors = load_file(path)
    except (SafetensorError, ValueError, OSError) as exc:
        raise MmsdError(f"{path}: not a safetensors weights file ({exc})") from None
    return tensors, metadata


def read_metadata(path: str | Path) -> dict[str, str]:
    """String metadata of a safetensors file, from its header alone (no tensor is read)."""
    path = Path(path)
    if not path.is_file():
        raise MmsdError(f"{path}: no such weights file")
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if not 0 < header_len <= path.stat().st_size - 8:
                raise ValueError(f"header length {header_len} does not fit the file")
            header = json.loads(f.read(header_len))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (ValueError, OSError) as exc:
        raise MmsdError(f"{path}: not a safetensors weights file ({exc})") from None
    return header.get("__metadata__", {}) or {}


def model_dirs() -> list[Path]:
    """Where a model name is looked up, in order: the shipped models, then each folder of $MMSD_MODELS."""
    extra = [Path(entry).expanduser() for entry in os.environ.get(MODELS_ENV, "").split(os.pathsep) if entry]
    for folder in extra:
        if not folder.is_dir():
            raise MmsdError(f"{MODELS_ENV}: {folder} is not a folder")
    return [SHIPPED_DIR, *extra]


def find_model(name: str) -> Path | None:
    """NAME.safetensors from the first folder of `model_dirs()` that has it; None if none has."""
    for folder in model_dirs():
        path = folder / f"{name}.safetensors"
        if path.is_file():
            return path
    return None


def named_models(kinds: Iterable[str] | None = None) -> dict[str, Path]:
    """Name -> file of every model reachable by name, sorted by name (a name in an earlier folder of
    `model_dirs()` hides the same name later); with `kinds`, only the files whose model name is one
    of them (e.g. the restoration networks, leaving out the sender's emotion classifier)."""
    found: dict[str, Path] = {}
    for folder in model_dirs():
        for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
            found.setdefault(path.stem, path)
    if kinds is not None:
        kinds = set(kinds)
        found = {name: path for name, path in found.items() if read_metadata(path).get("model") in kinds}
    return dict(sorted(found.items()))


def save_model(path: str | Path, *, name: str, config: dict, state: dict[str, torch.Tensor],
               info: dict | None = None) -> None:
    """Write a model file: tensors + {format, model name, config JSON, free-form info JSON}."""
    metadata = {
        "format": FORMAT,
        "model": name,
        "config": json.dumps(config, sort_keys=True),
        "info": json.dumps(info or {}, sort_keys=True),
    }
    atomic_save(state, path, metadata)


def read_model(path: str | Path) -> tuple[str, dict, dict[str, torch.Tensor], dict]:
    """(model name, config dict, tensors, info dict) of a model file written by save_model."""
    tensors, metadata = read(path)
    if metadata.get("format") != FORMAT or "model" not in metadata:
        raise MmsdError(f"{path}: safetensors file without mmsd model metadata (format {FORMAT})")
    return metadata["model"], json.loads(metadata["config"]), tensors, json.loads(metadata.get("info", "{}"))


def flatten_optimizer(prefix: str, state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser state_dict into tensors (prefix.<param>.<name>) and a JSON-able rest."""
    tensors, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    """Inverse of flatten_optimizer."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            index, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in rest["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}
