"""`mmsd bench` runs and writes its JSON (a smoke test: no figure is checked, benchmarks are not tests)."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import numpy as np
import torch

from mmsd.cli import main
from mmsd.evaluation.bench import time_train_step
from mmsd.media.codec import VideoWriter
from mmsd.media.timing import FrameTiming
from mmsd.models import build_model, load_config


def test_bench_bicubic_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--frames", "2", "--models", "bicubic", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    # both precisions by default, each a row of its own
    assert [(m["label"], m["precision"]) for m in report["models"]] == [("bicubic", "fp32"), ("bicubic", "bf16")]
    for model in report["models"]:
        assert model["forward_fps"] > 0 and model["stream_fps"] > 0
    assert [(e["precision"], e["overlap"]) for e in report["end_to_end"]] == [
        ("fp32", True), ("fp32", False), ("bf16", True), ("bf16", False)]
    for e2e in report["end_to_end"]:
        assert e2e["label"] == "bicubic" and e2e["frames"] > 0 and e2e["real_time_factor"] > 0
        assert e2e["peak_rss_mb"] > 0
    assert report["meta"]["threads"] == torch.get_num_threads()
    assert report["meta"]["precisions"] == ["fp32", "bf16"] and isinstance(report["meta"]["fast_bf16"], bool)
    assert "model throughput" in capsys.readouterr().out


def test_bench_on_a_variable_frame_rate_clip_says_so(tmp_path, capsys):
    clip = tmp_path / "vfr.mp4"
    timing = FrameTiming.from_pts([*range(6), *range(6, 18, 3)], Fraction(1, 30))  # 30 fps, then 10 fps
    with VideoWriter(clip, width=40, height=24, timing=timing, preset="ultrafast") as writer:
        for t in range(10):
            writer.write(np.full((24, 40, 3), 20 * t, np.uint8))
    out = tmp_path / "bench.json"
    assert main(["bench", "--frames", "2", "--models", "bicubic", "--engines", "torch", "--clip", str(clip),
                 "--out", str(out)]) == 0
    facts = "10 frames, 40x24 (W x H) at variable frame rate (18.000 fps mean, frame interval 33.3-100.0 ms)"
    assert all(e2e["clip"] == facts for e2e in json.loads(out.read_text())["end_to_end"])
    assert f"end to end on vfr.mp4: {facts}" in capsys.readouterr().out


def test_a_training_step_is_timed_at_either_precision(one_thread):
    config = dataclasses.asdict(load_config("small", channels=8, audio_hidden=8, audio_layers=1, au_hidden=8,
                                            emotion_hidden=8, attention_channels=4, recon_blocks=1, trunk_blocks=1,
                                            extract_blocks=1, upsample_channels=8, deform_groups=2))
    network = build_model("mmsd", config)
    before = [p.detach().clone() for p in network.parameters()]
    for precision in ("fp32", "bf16"):
        assert time_train_step(network, config, steps=1, precision=precision, batch=2, patch=8) > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, network.parameters()))  # it did train


def test_only_unknown_label_is_one_line_error(tmp_path, capsys):
    assert main(["bench", "--models", "bicubic", "--only", "nope", "--out", str(tmp_path / "b.json")]) == 1
    assert "--only: no model labelled nope; labels: bicubic" in capsys.readouterr().err


def test_a_variant_times_a_random_config_with_the_changes_and_a_bad_one_is_one_line(tmp_path, capsys):
    from mmsd.evaluation.bench import entries

    small, *variants = [e for e in entries(["mmsd"], ["small"], [["radius=1"], ["radius=1", "recon_blocks=3"]])
                        if e.weights is None]
    assert [v.label for v in variants] == ["mmsd-small radius=1", "mmsd-small radius=1,recon_blocks=3"]
    assert variants[0].config == {**small.config, "radius": 1}
    assert variants[1].config == {**small.config, "radius": 1, "recon_blocks": 3}
    assert variants[1].build().cfg.recon_blocks == 3  # the network is built with the changes
    out = str(tmp_path / "b.json")
    assert main(["bench", "--models", "mmsd", "--configs", "small", "--variant", "nope=1", "--out", out]) == 1
    err = capsys.readouterr().err
    assert "--variant" in err and "nope" in err and len(err.strip().splitlines()) == 1
