import pytest
import torch

from mmsd import weights
from mmsd.errors import MmsdError


def test_model_file_round_trip_keeps_tensors_name_config_and_info(tmp_path):
    path = tmp_path / "m.safetensors"
    state = {"a.weight": torch.randn(3, 4), "b.bias": torch.arange(5)}
    weights.save_model(path, name="mmsd", config={"channels": 32, "audio": True}, state=state, info={"it": 7})
    name, config, tensors, info = weights.read_model(path)
    assert (name, config, info) == ("mmsd", {"channels": 32, "audio": True}, {"it": 7})
    assert set(tensors) == set(state) and all(torch.equal(tensors[k], state[k]) for k in state)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left behind


def test_optimizer_state_survives_flattening():
    param = torch.nn.Parameter(torch.randn(4))
    opt = torch.optim.Adam([param], lr=1e-3, betas=(0.5, 0.9))
    for _ in range(3):
        opt.zero_grad()
        (param**2).sum().backward()
        opt.step()
    tensors, rest = weights.flatten_optimizer("opt", opt.state_dict())
    restored = torch.optim.Adam([torch.nn.Parameter(param.detach().clone())], lr=1.0)
    restored.load_state_dict(weights.unflatten_optimizer("opt", tensors, rest))
    original = opt.state_dict()
    assert restored.state_dict()["param_groups"] == original["param_groups"]
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(restored.state_dict()["state"][0][key], original["state"][0][key])


def test_bad_weights_files_are_refused_with_one_line(tmp_path):
    with pytest.raises(MmsdError, match="no such weights file"):
        weights.read(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(MmsdError, match="not a safetensors"):
        weights.read(junk)
    plain = tmp_path / "plain.safetensors"
    weights.atomic_save({"x": torch.zeros(2)}, plain, {})
    with pytest.raises(MmsdError, match="without mmsd model metadata"):
        weights.read_model(plain)


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "w.safetensors"
    with pytest.raises(Exception):
        weights.atomic_save({"x": "not a tensor"}, target, {})
    assert list(tmp_path.iterdir()) == []


def test_models_in_lists_only_the_asked_kinds_from_headers(tmp_path):
    """The restorer's list of shipped models leaves out other model files (the emotion classifier)."""
    for stem, name in [("mmsd", "mmsd"), ("edvr-x", "edvr"), ("emotion", "emotion-cnn")]:
        weights.save_model(tmp_path / f"{stem}.safetensors", name=name, config={}, state={"w": torch.zeros(1)})
    (tmp_path / "notes.md").write_text("not weights")
    assert weights.models_in(tmp_path, ["mmsd", "edvr", "dbpn"]) == ["edvr-x", "mmsd"]
    assert weights.models_in(tmp_path / "missing", ["mmsd"]) == []
    assert weights.read_metadata(tmp_path / "emotion.safetensors")["model"] == "emotion-cnn"
