"""`mmsd bench` runs and writes its JSON (a smoke test: no figure is checked, benchmarks are not tests)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import torch

from mmsd.cli import main
from mmsd.codec import VideoWriter
from mmsd.timing import FrameTiming


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
