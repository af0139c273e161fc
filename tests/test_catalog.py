"""`mmsd models`: every model available by name, with its kind, size, purpose and validation figures."""

from __future__ import annotations

import dataclasses
import re

import torch

from mmsd import cli
from mmsd.commands import catalog
from mmsd.models import weights


def _blocks(text: str) -> dict[str, str]:
    """name -> its block of `mmsd models` output."""
    return {block.split(":", 1)[0]: block for block in text.split("\n\n")[1:]}


def test_models_lists_every_shipped_model_with_its_card_figures(monkeypatch, capsys):
    monkeypatch.delenv(weights.MODELS_ENV, raising=False)
    assert cli.main(["models"]) == 0
    blocks = _blocks(capsys.readouterr().out)
    shipped = sorted(p.stem for p in weights.SHIPPED_DIR.glob("*.safetensors"))
    assert list(blocks) == ["bicubic", *shipped] and "mmsd" in shipped and "emotion" in shipped
    for name in shipped:
        block, card = blocks[name], (weights.SHIPPED_DIR / f"{name}.md").read_text()
        assert re.search(r"trained in (fp32|bf16)", block) and f"card {weights.SHIPPED_DIR / name}.md" in block
        if name == "emotion":
            assert block.startswith("emotion: emotion classifier (emotion-cnn)")
            assert "0.10 M parameters" in block and "101,951 parameters" in card
            for figure in re.findall(r"\d+\.\d%", block.split("validation:")[1]):  # 51.9% per frame, 63.3% per clip
                assert f"| {figure} |" in card
            continue
        assert block.startswith(f"{name}: restoration (")
        # the card's own line of size and validation figures, e.g. "0.78 M params, 4.44 GMACs/frame at 120x72 LR"
        params, macs = re.search(r"([\d.]+ M) params, ([\d.]+ G)MACs/frame at 120x72 LR", card).groups()
        assert f"{params} parameters, {macs}MACs per restored frame at 120x72 LR" in block
        figures = block.split("validation: face PSNR on held-out clips of the training actors: ")[1].splitlines()[0]
        assert figures.count(" dB") == 4 and figures in card
        assert block.split("for: ")[1].splitlines()[0] == card.split("\n\n")[1].strip()  # the card's first line
    assert "no parameters" in blocks["bicubic"] and "file: built-in" in blocks["bicubic"]


def test_models_adds_the_folders_of_mmsd_models(tmp_path, monkeypatch, capsys):
    """A model of one's own, without a card: its size is counted on the network."""
    from mmsd.models import DBPNConfig, build_model, complexity

    config = dataclasses.asdict(DBPNConfig(features=16, channels=8, stages=2))
    network = build_model("dbpn", config)
    weights.save_model(tmp_path / "mine.safetensors", name="dbpn", config=config, state=network.state_dict())
    monkeypatch.setenv(weights.MODELS_ENV, str(tmp_path))
    assert cli.main(["models", "mine", "mmsd"]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert list(blocks) == ["mine", "mmsd"]
    assert blocks["mine"].startswith("mine: restoration (dbpn)") and "(no model card)" in blocks["mine"]
    assert "validation" not in blocks["mine"] and "for: (no model card)" in blocks["mine"]
    size = complexity(network, (72, 120))
    assert f"{size.params / 1e6:.2f} M parameters, {size.macs_per_frame / 1e9:.2f} GMACs per" in blocks["mine"]
    assert cli.main(["models", "nothing"]) == 1
    assert "no model 'nothing'; available: bicubic, " in capsys.readouterr().err


def test_models_counts_the_emotion_classifier_per_classified_frame():
    from mmsd.models import count_macs

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(2 * 64 * 64, 15))
    assert count_macs(net, torch.zeros(1, 1, 64, 64)) == 64 * 64 * 2 * 9 + 2 * 64 * 64 * 15
    info = catalog.describe("emotion", weights.SHIPPED_DIR / "emotion.safetensors")
    assert info.kind == "emotion classifier" and info.params == 101_951
    assert 1e6 < info.macs < 1e9 and "64x64 gray face crop" in info.macs_per


def test_a_cards_size_line_is_the_networks_own_count():
    """`mmsd models` takes a shipped model's size from its card: the card states what the network counts."""
    from mmsd.models import build_model, complexity

    path = weights.SHIPPED_DIR / "mmsd-image.safetensors"  # the cheapest to count
    name, config, _, _ = weights.read_model(path)
    assert str(complexity(build_model(name, config), (72, 120))) in path.with_suffix(".md").read_text()


def test_a_reader_that_leaves_early_gets_no_error_message():
    """`mmsd models | head -1`: the closed pipe is not an error to report."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "mmsd.cli", "models"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # before the first line is written
    err = process.stderr.read().decode()
    assert process.wait() == 141 and err == ""
