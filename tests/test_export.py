"""ONNX export and the onnx engine: ONNX Runtime agrees with PyTorch; the CLI writes a graph decode runs."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from mmsd.cli import main
from mmsd.errors import MmsdError
from mmsd.media.codec import VideoWriter, probe
from mmsd.models import DBPNConfig, EDVRConfig, build_model, load_config
from mmsd.models.weights import save_model
from mmsd.restore import onnx_engine
from mmsd.restore.onnx_engine import OnnxNetwork, example_inputs, export_onnx
from mmsd.restore.restorer import Restorer

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

MMSD_SMALL = dataclasses.asdict(load_config("small"))
EDVR_TINY = dataclasses.asdict(EDVRConfig(channels=8, deform_groups=2, extract_blocks=1, reconstruct_blocks=1,
                                          radius=1))  # 3 frames: a third fewer nodes to export
DBPN_TINY = dataclasses.asdict(DBPNConfig(features=16, channels=8, stages=2))


def random_network(name: str, config: dict) -> torch.nn.Module:
    """Random weights away from the zero/identity init, so every branch reaches the image."""
    torch.manual_seed(0)
    network = build_model(name, config).eval()
    for p in network.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)
    return network


@pytest.fixture(scope="module", params=[("mmsd", MMSD_SMALL), ("edvr", EDVR_TINY), ("dbpn", DBPN_TINY)],
                ids=["mmsd-small", "edvr", "dbpn"])
def exported(request, tmp_path_factory):
    name, config = request.param
    network = random_network(name, config)
    path = export_onnx(network, tmp_path_factory.mktemp("onnx") / f"{name}.onnx", name=name, config=config)
    return name, config, network, path


@pytest.mark.parametrize("batch,size", [(1, (72, 120)), (3, (40, 56)), (2, (33, 47))])
def test_onnx_runtime_agrees_with_pytorch(exported, batch, size):
    """Dynamic batch and LR size (H, W), odd sizes included."""
    name, config, network, path = exported
    graph = OnnxNetwork(path, threads=1)
    assert (graph.name, graph.config) == (name, config)
    assert graph.inputs == (["lr", "mfcc", "emotion"] if name == "mmsd" else ["lr"])
    inputs = example_inputs(config, batch=batch, size=size)
    with torch.inference_mode():
        expected = network(inputs["lr"], inputs.get("mfcc"), inputs.get("emotion")).image
    got = graph(inputs["lr"], inputs.get("mfcc"), inputs.get("emotion")).image
    assert got.shape == (batch, 3, 4 * size[0], 4 * size[1])
    assert (got - expected).abs().max() < 1e-4


def test_onnx_engine_restores_like_the_torch_engine(exported):
    name, config, network, path = exported
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 24, 40, 3), dtype=np.uint8)
    mfcc = rng.standard_normal((6, 4, 20)).astype(np.float32)
    onnx_restorer = Restorer(path, batch_size=4)
    assert onnx_restorer.engine == "onnx" and onnx_restorer.name == name
    by_onnx = list(onnx_restorer.restore_frames(frames, mfcc=mfcc, emotion="sad-strong"))
    torch_restorer = Restorer(network, config=config, batch_size=4, precision="fp32")  # ONNX Runtime runs fp32
    by_torch = list(torch_restorer.restore_frames(frames, mfcc=mfcc, emotion="sad-strong"))
    assert len(by_onnx) == 6
    for a, b in zip(by_onnx, by_torch):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_the_decode_path_runs_one_way():
    """file -> codec -> Restorer -> codec -> file: the engine and the codec never import the Restorer,
    and the Restorer imports neither the export command nor the model-free encode."""
    import ast
    from pathlib import Path

    import mmsd

    def imports(module: str) -> set[str]:
        tree = ast.parse((Path(mmsd.__file__).parent / f"{module.replace('.', '/')}.py").read_text())
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}

    engine_and_codec = imports("restore.onnx_engine") | imports("media.codec") | imports("media.timing")
    assert "mmsd.restore.restorer" not in engine_and_codec
    assert not {"mmsd.commands.export", "mmsd.sender.encode", "mmsd.commands.decode"} & imports("restore.restorer")
    assert not {name for name in imports("media.codec") if name.startswith(("mmsd.models", "torch"))}


def test_weights_export_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = tmp_path / "tiny.safetensors"
    save_model(weights, name="dbpn", config=DBPN_TINY, state=random_network("dbpn", DBPN_TINY).state_dict())
    calls = []
    real = onnx_engine.export_onnx
    monkeypatch.setattr(onnx_engine, "export_onnx", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = Restorer(weights, engine="onnx")
    second = Restorer(weights, engine="onnx")
    assert len(calls) == 1 and first.engine == second.engine == "onnx"
    assert len(list((tmp_path / "cache" / "mmsd" / "onnx").glob("dbpn-*.onnx"))) == 1


@pytest.fixture
def keep_threads():
    """`--threads` sets the process's torch threads: give the rest of the session its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_export_and_decode_from_the_command_line(tmp_path, capsys, keep_threads):
    weights = tmp_path / "tiny.safetensors"
    save_model(weights, name="dbpn", config=DBPN_TINY, state=random_network("dbpn", DBPN_TINY).state_dict())
    graph = tmp_path / "tiny.onnx"
    assert main(["export", "--onnx", str(weights), "-o", str(graph)]) == 0
    line = capsys.readouterr().out
    assert "ONNX Runtime vs PyTorch" in line and json.loads(OnnxNetwork(graph).session.get_modelmeta()
                                                            .custom_metadata_map["mmsd_config"]) == DBPN_TINY
    low = tmp_path / "low.mp4"
    with VideoWriter(low, width=32, height=24, fps=Fraction(25), crf=20, preset="ultrafast") as writer:
        for t in range(7):
            writer.write(np.full((24, 32, 3), 20 * t, np.uint8))
    out = tmp_path / "restored.mp4"
    assert main(["decode", str(low), "-o", str(out), "--model", str(graph), "-q", "--threads", "1"]) == 0
    assert "(onnx, fp32)" in capsys.readouterr().out
    assert (probe(out).num_frames, probe(out).width, probe(out).height) == (7, 128, 96)


def test_bad_requests_say_what_is_wrong(tmp_path, capsys):
    assert main(["export", "--onnx", "bicubic", "-o", str(tmp_path / "x.pt")]) == 1
    assert "should end in .onnx" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(MmsdError, match="not a loadable ONNX model"):
        Restorer(tmp_path / "junk.onnx")
    with pytest.raises(ValueError, match="runs with engine 'onnx'"):
        Restorer(tmp_path / "junk.onnx", engine="torch")
    with pytest.raises(ValueError, match="unknown engine 'tvm'"):
        Restorer("bicubic", engine="tvm")
