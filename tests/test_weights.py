import os
from pathlib import Path

import pytest
import torch

from mmsd.errors import MmsdError
from mmsd.models import weights


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


def _model(path, name="mmsd"):
    weights.save_model(path, name=name, config={}, state={"w": torch.zeros(1)})


def test_named_models_lists_only_the_asked_kinds_from_headers(tmp_path, monkeypatch):
    """The restorer's list of models leaves out other model files (the emotion classifier)."""
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    monkeypatch.delenv(weights.MODELS_ENV, raising=False)
    for stem, name in [("mmsd", "mmsd"), ("edvr-x", "edvr"), ("emotion", "emotion-cnn")]:
        _model(tmp_path / f"{stem}.safetensors", name)
    (tmp_path / "notes.md").write_text("not weights")
    assert list(weights.named_models(["mmsd", "edvr", "dbpn"])) == ["edvr-x", "mmsd"]
    assert list(weights.named_models()) == ["edvr-x", "emotion", "mmsd"]
    assert weights.read_metadata(tmp_path / "emotion.safetensors")["model"] == "emotion-cnn"


def test_the_shipped_models_are_package_data_found_from_any_folder(tmp_path, monkeypatch):
    import mmsd

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(weights.MODELS_ENV, raising=False)
    assert weights.SHIPPED_DIR == Path(mmsd.__file__).resolve().parent / "shipped"
    assert weights.find_model("mmsd") == weights.SHIPPED_DIR / "mmsd.safetensors"
    assert weights.find_model("emotion").with_suffix(".md").is_file()  # every model has its card beside it
    assert weights.find_model("nothing-of-that-name") is None


def test_mmsd_models_folders_come_after_the_shipped_ones(tmp_path, monkeypatch):
    shipped, first, second = tmp_path / "shipped", tmp_path / "a", tmp_path / "b"
    for folder in (shipped, first, second):
        folder.mkdir()
    monkeypatch.setattr(weights, "SHIPPED_DIR", shipped)
    _model(shipped / "mmsd.safetensors")
    _model(first / "mmsd.safetensors")  # hidden by the shipped one
    _model(first / "mine.safetensors")
    _model(second / "mine.safetensors")  # hidden by the first folder's
    _model(second / "other.safetensors", "dbpn")
    monkeypatch.setenv(weights.MODELS_ENV, f"{first}{os.pathsep}{second}{os.pathsep}")  # empty entries skipped
    assert weights.model_dirs() == [shipped, first, second]
    assert weights.find_model("mmsd") == shipped / "mmsd.safetensors"
    assert weights.find_model("mine") == first / "mine.safetensors"
    assert weights.named_models() == {"mine": first / "mine.safetensors", "mmsd": shipped / "mmsd.safetensors",
                                      "other": second / "other.safetensors"}
    monkeypatch.setenv(weights.MODELS_ENV, str(tmp_path / "typo"))
    with pytest.raises(MmsdError, match="MMSD_MODELS: .*typo is not a folder"):
        weights.find_model("mine")
