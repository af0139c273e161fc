"""`mmsd bench` runs and writes its JSON (a smoke test: no figure is checked, benchmarks are not tests)."""

from __future__ import annotations

import json

import torch

from mmsd.cli import main


def test_bench_bicubic_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--frames", "2", "--models", "bicubic", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [m["label"] for m in report["models"]] == ["bicubic"]
    assert report["models"][0]["forward_fps"] > 0 and report["models"][0]["stream_fps"] > 0
    assert [e["overlap"] for e in report["end_to_end"]] == [True, False]
    for e2e in report["end_to_end"]:
        assert e2e["label"] == "bicubic" and e2e["frames"] > 0 and e2e["real_time_factor"] > 0
        assert e2e["peak_rss_mb"] > 0
    assert report["meta"]["threads"] == torch.get_num_threads()
    assert "model throughput" in capsys.readouterr().out
