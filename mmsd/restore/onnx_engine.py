"""The onnx engine: a restoration network as an ONNX graph, and ONNX Runtime running it.

The graph (opset 18; GridSample needs 16+) has the inputs the network uses, in this order:
    lr (float32[B, T, 3, H, W]) in [0, 1],
    mfcc (float32[B, T, K, M]) when its config has ``audio``,
    emotion (int64[B], ids 0..14) when its config has ``emotion``,
and one output, image (float32[B, 3, 4H, 4W]), not clamped. B, H and W are dynamic. The
model's name and config JSON travel in the ONNX metadata (``mmsd_model``, ``mmsd_config``),
so the file alone rebuilds a `Restorer`. Emotion ids are not range-checked inside the graph.

Exporter: `torch.onnx.export(dynamo=True)` (torch.export + onnxscript; the TorchScript
exporter is deprecated). The deformable convolution needs nothing special: without
gradients it runs as plain ops (grid_sample, bmm), never as its autograd.Function. The
BiLSTM exports as an ONNX LSTM.

`Restorer(..., engine="onnx")` given a weights file or name exports it on first use into
``$XDG_CACHE_HOME/mmsd/onnx`` (default ``~/.cache/mmsd/onnx``), keyed by a hash of the
weights, the config and the torch version, and reuses the file afterwards. The command
`mmsd export --onnx` is `mmsd.commands.export`; this module knows nothing of the Restorer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mmsd.errors import MmsdError
from mmsd.media.fileio import atomic_path
from mmsd.models.output import RestorationOutput

OPSET = 18
EXAMPLE_LR_HW = (72, 120)  # (H, W) of the example input the graph is traced with


class _GraphInputs(nn.Module):
    """The network with the image as its only output (inputs it does not use are passed as None)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, lr: Tensor, mfcc: Tensor | None, emotion: Tensor | None) -> Tensor:
        return self.network(lr, mfcc, emotion).image


def input_names(config: dict) -> list[str]:
    """Names of the graph inputs for a model config: lr, then mfcc and emotion if it uses them."""
    return ["lr", *(["mfcc"] if config.get("audio") else []), *(["emotion"] if config.get("emotion") else [])]


def example_inputs(config: dict, *, batch: int = 2, size: tuple[int, int] = EXAMPLE_LR_HW) -> dict[str, Tensor]:
    """Random inputs for a model config, by graph input name; size is the LR (H, W)."""
    t = 2 * int(config.get("radius", 2)) + 1
    g = torch.Generator().manual_seed(0)
    inputs = {"lr": torch.rand(batch, t, 3, *size, generator=g)}
    if config.get("audio"):
        k, m = int(config.get("mfcc_per_frame", 4)), int(config.get("n_mfcc", 20))
        inputs["mfcc"] = torch.randn(batch, t, k, m, generator=g) * 10
    if config.get("emotion"):
        inputs["emotion"] = torch.randint(0, 15, (batch,), generator=g)
    return inputs


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter warns about deprecations and skipped torchvision ops that concern it, not the user."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(network: nn.Module, path: str | os.PathLike, *, name: str, config: dict) -> Path:
    """Write `network` (built by `mmsd.models.build_model(name, config)`) to the ONNX file `path`, atomically.

    Returns the path. Raises MmsdError if the exporter fails."""
    try:
        import onnx
    except ImportError:
        raise MmsdError("ONNX export needs the packages onnx, onnxscript and onnxruntime (pip install them)") from None
    inputs = example_inputs(config)
    # Dim.DYNAMIC, not named Dims: those must be proven free of guards such as trunc(4.0 * W) == 4 * W
    dynamic_dim = torch.export.Dim.DYNAMIC
    dynamic = {"lr": {0: dynamic_dim, 3: dynamic_dim, 4: dynamic_dim}, "mfcc": {0: dynamic_dim},
               "emotion": {0: dynamic_dim}}
    args = tuple(inputs.get(key) for key in ("lr", "mfcc", "emotion"))
    was_training = network.training
    network.eval()
    try:
        with _quiet_exporter(), torch.no_grad():
            # torch.export first: torch.onnx.export would fall back to fixed shapes without a word
            exported = torch.export.export(_GraphInputs(network).eval(), args, strict=False,
                                           dynamic_shapes={key: dynamic[key] if key in inputs else None
                                                           for key in dynamic})
            program = torch.onnx.export(exported, dynamo=True, opset_version=OPSET, input_names=list(inputs),
                                        output_names=["image"], verbose=False)
    except Exception as exc:  # the exporter raises many kinds; all mean the same to the user
        raise MmsdError(f"ONNX export of {name} failed: {' '.join(str(exc).split())[:300]}") from None
    finally:
        network.train(was_training)
    lr_shape = program.model.graph.inputs[0].shape  # (B, T, 3, H, W)
    program.rename_axes({lr_shape[0]: "batch", lr_shape[3]: "height", lr_shape[4]: "width"})
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {"mmsd_model": name, "mmsd_config": json.dumps(config, sort_keys=True)})
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


def cached_export(network: nn.Module, *, name: str, config: dict) -> Path:
    """The ONNX file of `network` in the export cache, exporting it if it is not there yet."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"model": name, "config": config, "torch": torch.__version__, "opset": OPSET},
                             sort_keys=True).encode())
    for key, tensor in sorted(network.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmsd" / "onnx"
    path = folder / f"{name}-{digest.hexdigest()[:16]}.onnx"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(network, path, name=name, config=config)
    return path


def temporary_export(network: nn.Module, *, name: str, config: dict, threads: int | None = None) -> OnnxNetwork:
    """Export `network` to a temporary file and load it with ONNX Runtime (the file is removed after loading)."""
    with tempfile.TemporaryDirectory(prefix="mmsd-onnx-") as folder:
        path = export_onnx(network, Path(folder) / f"{name}.onnx", name=name, config=config)
        return OnnxNetwork(path, threads=threads)


class OnnxNetwork:
    """An exported graph run by ONNX Runtime on the CPU, called like the torch network it came from.

    `network(lr, mfcc, emotion)` takes torch tensors (inputs the graph does not have are ignored)
    and returns a RestorationOutput with the image as a torch tensor.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MmsdError("the onnx engine needs the package onnxruntime (pip install onnxruntime)") from None
        path = Path(path)
        if not path.is_file():
            raise MmsdError(f"{path}: no such ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # spinning workers cost several times the work on a CPU shared with other jobs (docs/speed.md)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types are not importable by a stable name
            raise MmsdError(f"{path}: not a loadable ONNX model ({' '.join(str(exc).split())[:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "mmsd_model" not in meta or "mmsd_config" not in meta:
            raise MmsdError(f"{path}: ONNX file without mmsd metadata (write it with `mmsd export --onnx`)")
        self.name, self.config = meta["mmsd_model"], json.loads(meta["mmsd_config"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, lr: Tensor, mfcc: Tensor | None = None, emotion: Tensor | None = None) -> RestorationOutput:
        """lr (Tensor[B, T, 3, H, W]), mfcc (Tensor[B, T, K, M] or None), emotion (Tensor[B] or None)
        -> RestorationOutput(image=Tensor[B, 3, 4H, 4W])."""
        given = {"lr": lr, "mfcc": mfcc, "emotion": emotion}
        feeds = {}
        for name in self.inputs:
            if given[name] is None:
                raise ValueError(f"the ONNX graph needs input {name!r}")
            array = given[name].detach().cpu().numpy()
            feeds[name] = array.astype(np.int64) if name == "emotion" else np.ascontiguousarray(array, np.float32)
        (image,) = self.session.run(["image"], feeds)
        return RestorationOutput(image=torch.from_numpy(image))
