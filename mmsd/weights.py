"""Weights and training state on disk, as safetensors: loading never runs code.

A model file holds the network's tensors and, in its string metadata, the model's
name and its config as JSON, so `load_model(path)` can rebuild the network without
any other file. Training checkpoints add the optimisers' tensors and the RNG state
under prefixed keys; everything that is not a tensor goes into the JSON metadata.
Every write goes to a temporary file in the same folder and is renamed into place,
so a kill never leaves a half-written file at the target path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmsd.errors import MmsdError
from mmsd.fileio import atomic_path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"  # the shipped models: weights/NAME.safetensors

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


def models_in(directory: str | Path, kinds: Iterable[str]) -> list[str]:
    """Sorted stems of the model files in `directory` whose model name is one of `kinds`
    (e.g. the restoration networks, leaving out the sender's emotion classifier)."""
    kinds = set(kinds)
    directory = Path(directory)
    paths = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    return [p.stem for p in paths if read_metadata(p).get("model") in kinds]


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
