from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmsd.commands import eval as eval_command
from mmsd.errors import MmsdError
from mmsd.evaluation import figures, protocol, sweeps, tables


def score(model="a", crf=15, clip="Actor_19/01-01-03-02-01-01-19", emotion=5, frame=0, kbps=100.0, psnr=30.0,
          ssim=0.8, mouth=25.0) -> protocol.FrameScore:
    return protocol.FrameScore(model=model, crf=crf, clip=clip, actor=int(clip[6:8]), emotion=emotion, statement=1,
                         frame=frame, kbps=kbps, face_psnr=psnr, face_ssim=ssim, face_psnr_y=psnr + 1,
                         frame_psnr=psnr - 1, mouth_psnr=mouth)


CLIP_A = "Actor_19/01-01-03-02-01-01-19"
CLIP_B = "Actor_20/01-01-05-01-02-01-20"


@pytest.fixture
def rows() -> list[protocol.FrameScore]:
    """Two models, two CRFs, two clips (emotions 5 and 8), two frames of clip A and one of clip B."""
    out = []
    for model, offset in (("edvr", 0.0), ("mmsd", 1.0)):
        for crf, base, rate in ((15, 30.0, 200.0), (40, 22.0, 20.0)):
            out += [
                score(model, crf, CLIP_A, 5, 0, rate, base + offset, 0.80, 25.0 + 2 * offset),
                score(model, crf, CLIP_A, 5, 4, rate, base + 2 + offset, 0.90, 27.0 + 2 * offset),
                score(model, crf, CLIP_B, 8, 0, rate * 2, base + 4 + 0.5 * offset, 0.70, 20.0),
            ]
    return out


# --------------------------------------------------------------------------- aggregation and tables


def test_table1_means_are_over_frames_and_kbps_over_clips(rows):
    table = tables.table1(rows)
    assert table.columns == ["CRF 15 (300.0 kbps) PSNR", "CRF 15 SSIM", "CRF 40 (30.0 kbps) PSNR", "CRF 40 SSIM"]
    values = dict(table.rows)
    # edvr CRF 15: frames 30, 32, 34 -> 32; SSIM 0.8, 0.9, 0.7 -> 0.8; mmsd: 31, 33, 34.5
    assert values["edvr"] == pytest.approx([32.0, 0.8, 24.0, 0.8])
    assert values["mmsd"] == pytest.approx([(31 + 33 + 34.5) / 3, 0.8, (23 + 25 + 26.5) / 3, 0.8])
    assert list(values) == ["edvr", "mmsd"]
    assert [r[0] for r in tables.table1(rows, ["mmsd", "edvr"]).rows] == ["mmsd", "edvr"]
    with pytest.raises(MmsdError, match="no results for model.*dbpn"):
        tables.table1(rows, ["dbpn"])


def test_table1_markdown_and_json(rows):
    text = tables.table1(rows, protocol="Protocol: test.").markdown()
    lines = text.splitlines()
    assert lines[0] == "**Table 1: face-region PSNR (dB) / SSIM**"
    assert lines[2] == "| Method | CRF 15 (300.0 kbps) PSNR | CRF 15 SSIM | CRF 40 (30.0 kbps) PSNR | CRF 40 SSIM |"
    assert lines[3] == "|---|---:|---:|---:|---:|"
    # the best value of each column is bold; equal SSIMs are both best
    assert lines[4] == "| edvr | 32.00 | **0.8000** | 24.00 | **0.8000** |"
    assert lines[5] == "| mmsd | **32.83** | **0.8000** | **24.83** | **0.8000** |"
    assert "each frame weighing the same" in text and lines[-1] == "Protocol: test."
    data = tables.table1(rows).to_json()
    assert data["rows"][0] == {"name": "edvr", "values": {
        "CRF 15 (300.0 kbps) PSNR": 32.0, "CRF 15 SSIM": pytest.approx(0.8), "CRF 40 (30.0 kbps) PSNR": 24.0,
        "CRF 40 SSIM": pytest.approx(0.8)}}


def test_missing_values_print_as_na():
    table = tables.Table("T", ["x", "y"], [("m", [1.0, None]), ("n", [float("nan"), 2.5])], [1, 2])
    assert table.markdown().splitlines()[4:6] == ["| m | 1.0 | n/a |", "| n | n/a | 2.50 |"]
    assert table.to_json()["rows"][1]["values"] == {"x": None, "y": 2.5}


def test_ablation_adds_mouth_psnr(rows):
    table = tables.ablation_table(rows)
    assert table.columns[:3] == ["CRF 15 face PSNR", "CRF 15 face SSIM", "CRF 15 mouth PSNR"]
    assert dict(table.rows)["mmsd"][2] == pytest.approx((27 + 29 + 20) / 3)


def test_emotion_gain_pairs_frames_and_sorts_by_gain(rows):
    table = tables.emotion_gain(rows, "mmsd", "edvr")
    assert table.row_header == "Emotion state"
    assert table.columns == ["CRF 15 gain", "CRF 40 gain", "mean gain", "clips"]
    names = [name for name, _ in table.rows]
    assert names == ["sad-normal", "angry-strong", "all states"]  # state 5 gains 1 dB, state 8 0.5 dB
    values = dict(table.rows)
    assert values["sad-normal"] == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert values["angry-strong"] == pytest.approx([0.5, 0.5, 0.5, 1.0])
    assert values["all states"] == pytest.approx([2.5 / 3, 2.5 / 3, 2.5 / 3, 2.0])
    with pytest.raises(MmsdError, match="share no evaluated frame"):
        tables.emotion_gain([r for r in rows if r.model == "mmsd"] + [score("edvr", frame=99)], "mmsd", "edvr")


def test_per_frame_csv_round_trip(rows, tmp_path):
    tables.write_rows(tmp_path / "f.csv", rows)
    assert tables.read_rows(tmp_path / "f.csv") == rows
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_frame_subset():
    hr_frames = list(range(0, 76, 2))  # 38 frames with HR
    assert protocol.FrameSubset().frames(hr_frames) == [38]
    assert protocol.FrameSubset(3).frames(hr_frames) == [12, 38, 62]
    assert protocol.FrameSubset(None, step=10).frames(hr_frames) == [0, 20, 40, 60]
    assert protocol.FrameSubset(5).frames([0, 2]) == [0, 2]
    assert "every 4th frame" in protocol.FrameSubset(None, step=2).describe(hr_step=2)
    with pytest.raises(ValueError, match=">= 1"):
        protocol.FrameSubset(0)


def test_frame_metrics_on_known_images():
    target = np.full((72, 120, 3), 100, np.uint8)
    restored = target.copy()
    restored[40:50, 50:60] += 10  # differs only inside the mouth box
    scores = protocol.frame_metrics(restored, target, face_box=(0, 0, 40, 30), mouth_box=(50, 40, 60, 50))
    assert scores["face_psnr"] == protocol.PSNR_CAP and scores["face_ssim"] == pytest.approx(1.0)
    assert scores["mouth_psnr"] == pytest.approx(20 * np.log10(255 / 10))
    assert scores["frame_psnr"] == pytest.approx(10 * np.log10(255**2 / (100 * 100 / (72 * 120))))


def test_split_key():
    assert protocol.split_key("Actor_05/01-01-03-02-01-01-05#crf32@t17") == ("Actor_05/01-01-03-02-01-01-05", 32, 17)
    with pytest.raises(ValueError, match="sample key"):
        protocol.split_key("Actor_05/01-01-03-02-01-01-05")


# --------------------------------------------------------------------------- models


def tiny_dbpn(path: Path) -> Path:
    from mmsd.models import DBPNConfig, build_model
    from mmsd.models.weights import save_model

    config = dataclasses.asdict(DBPNConfig(features=8, channels=4, stages=2))
    model = build_model("dbpn", config)
    save_model(path, name="dbpn", config=config, state=model.state_dict())
    return path


def test_load_model_by_name_path_and_label(tmp_path):
    (tmp_path / "run1").mkdir()
    path = tiny_dbpn(tmp_path / "run1" / "model.safetensors")
    models = protocol.load_models(["bicubic", str(path), f"small={path}"])
    assert [m.label for m in models] == ["bicubic", "run1", "small"]
    assert models[1].arch == "dbpn" and models[1].source == str(path) and not models[1].uses_emotion
    assert models[0].window == models[1].window
    with pytest.raises(MmsdError, match="neither 'bicubic', a shipped model"):
        protocol.load_model("no-such-model")
    with pytest.raises(MmsdError, match="two models are named bicubic"):
        protocol.load_models(["bicubic", "bicubic"])


def test_load_model_refuses_weights_that_do_not_fit(tmp_path):
    from mmsd.models.weights import save_model

    path = tiny_dbpn(tmp_path / "a.safetensors")
    from mmsd.models.weights import read_model

    name, config, tensors, _ = read_model(path)
    save_model(tmp_path / "bad.safetensors", name=name, config=config | {"stages": 3}, state=tensors)
    with pytest.raises(MmsdError, match="cannot build model 'dbpn'"):
        protocol.load_model(str(tmp_path / "bad.safetensors"))


def test_rd_curves_add_side_info_for_emotion_models(rows):
    from fractions import Fraction
    from types import SimpleNamespace

    from mmsd.media.sideinfo import SideInfo

    clips = {CLIP_A: SimpleNamespace(num_frames=75, fps=Fraction(30), emotion=5),
             CLIP_B: SimpleNamespace(num_frames=75, fps=Fraction(30), emotion=8)}
    models = [SimpleNamespace(label="edvr", uses_emotion=False), SimpleNamespace(label="mmsd", uses_emotion=True)]
    curves = sweeps.rd_curves(rows, models, clips)
    side = np.mean([SideInfo.from_states([e]).bits for e in (5, 8)]) / 2.5 / 1000
    assert curves["edvr"].kbps == pytest.approx((300.0, 30.0))
    assert curves["mmsd"].kbps == pytest.approx((300.0 + side, 30.0 + side))
    assert curves["mmsd"].psnr == pytest.approx(((31 + 33 + 34.5) / 3, (23 + 25 + 26.5) / 3))
    table = tables.bd_table(curves, "edvr")
    assert [name for name, _ in table.rows] == ["mmsd vs edvr"]


# --------------------------------------------------------------------------- figures


def test_comparison_grid_size_and_labels():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (288, 480, 3), dtype=np.uint8) for _ in range(3)]
    rows = [figures.GridRow("actor 19, happy", images, (200, 190, 280, 240)),
            figures.GridRow("actor 20, sad", images, (0, 0, 480, 288))]
    grid = figures.comparison_grid(rows, ["decoded", "mmsd", "ground truth"], cell_width=120, mouth_height=60)
    frame_h = 120 * 288 // 480
    assert grid.shape == (30 + 2 * (22 + frame_h + 4 + 60 + 4) + 4, 3 * (120 + 4) + 4, 3)
    assert grid.dtype == np.uint8
    assert (grid[:30] < 128).any()  # the column labels are drawn
    with pytest.raises(ValueError, match="2 images for 3 columns"):
        figures.comparison_grid([figures.GridRow("x", images[:2], (0, 0, 1, 1))], ["a", "b", "c"])


def test_rate_quality_plot_draws_each_curve():
    curves = {"bicubic": ([20, 40, 80], [24.0, 26.0, 28.0]), "mmsd": ([21, 41, 81], [26.0, 28.0, 29.5])}
    plot = figures.rate_quality_plot(curves, title="t", size=(640, 400))
    assert plot.shape == (400, 640, 3)
    for colour in figures.PALETTE[:2]:
        assert (np.abs(plot.astype(int) - colour).sum(axis=2) == 0).sum() > 50
    with pytest.raises(ValueError, match="positive"):
        figures.rate_quality_plot({"a": ([0, 1], [1, 2])})


def test_write_png_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "grid.png"
    image = np.zeros((10, 20, 3), np.uint8)
    image[..., 0] = 255
    figures.write_png(path, image)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, image)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        figures.write_png(path, np.zeros((10, 20, 3), np.uint8))
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), image)  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temp file left


# --------------------------------------------------------------------------- end to end on the fixture cache


def run_eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    eval_command.add_arguments(parser)
    return eval_command.run(parser.parse_args(argv))


def test_eval_cli_on_a_tiny_cache(prepared_cache, tmp_path):
    dbpn = tiny_dbpn(tmp_path / "dbpn-tiny.safetensors")
    out = tmp_path / "eval"
    assert run_eval(["--data", str(prepared_cache), "--models", "bicubic", str(dbpn), "--out", str(out),
                     "--frames-per-clip", "2", "--gain", "dbpn-tiny:bicubic", "--bd-rate", "--sweep-crf", "20", "40",
                     "--figure-rows", "2", "--no-progress"]) == 0
    for name in ("per_frame.csv", "table1.md", "table1.json", "ablation.md", "results.md", "eval.json",
                 "emotion_gain_dbpn-tiny_vs_bicubic.md", "bdrate.json", "rate_sweep.csv", "fig6_one_actor.png",
                 "fig7_actors.png", "rate_quality.png"):
        assert (out / name).is_file(), name
    rows = tables.read_rows(out / "per_frame.csv")
    # the fixture's test actor 19 has 2 usable clips of 12 frames (HR every 2nd): 2 frames each, CRF 15 and 40
    assert {r.actor for r in rows} == {19} and len(rows) == 2 * 2 * 2 * 2
    assert sorted({r.frame for r in rows}) == [2, 8]
    table = json.loads((out / "table1.json").read_text())
    bicubic = next(r for r in table["rows"] if r["name"] == "bicubic")["values"]
    psnr_40 = np.mean([r.face_psnr for r in rows if r.model == "bicubic" and r.crf == 40])
    assert next(v for k, v in bicubic.items() if k.startswith("CRF 40") and "PSNR" in k) == pytest.approx(psnr_40)
    summary = json.loads((out / "eval.json").read_text())
    assert summary["frames_per_model"] == 8 and "2 frames per clip" in summary["protocol"]
    # the sweep re-cuts every HR frame from the source video (the cache keeps every 2nd): at CRF 40 it must
    # reproduce the cache's own CRF-40 stream exactly
    sweep = [r for r in tables.read_rows(out / "rate_sweep.csv") if r.model == "bicubic" and r.crf == 40]
    cached = {(r.clip, r.frame): r for r in rows if r.model == "bicubic" and r.crf == 40}
    for r in sweep:
        assert r.face_psnr == pytest.approx(cached[(r.clip, r.frame)].face_psnr)
        assert r.kbps == pytest.approx(cached[(r.clip, r.frame)].kbps, rel=1e-3)
    grid = cv2.imread(str(out / "fig6_one_actor.png"))
    assert grid.shape[1] == 4 * (240 + 4) + 4  # decoded, bicubic, dbpn-tiny, ground truth


def test_eval_cli_scores_only_the_named_clips(prepared_cache, tmp_path):
    from mmsd.data.dataset import read_index

    key = next(c.key for c in read_index(prepared_cache) if c.actor == 19)
    out = tmp_path / "eval"
    assert run_eval(["--data", str(prepared_cache), "--models", "bicubic", "--out", str(out), "--actors", "19",
                     "--clips", key, "--frames-per-clip", "2", "--bd-rate", "--no-progress"]) == 0
    rows = tables.read_rows(out / "per_frame.csv")
    assert {r.clip for r in rows} == {key} and len(rows) == 2 * 2  # 2 frames x CRF 15, 40 of that clip only
    assert not (out / "fig6_one_actor.png").exists() and not (out / "bdrate.json").exists()  # other clips' work


def test_eval_cli_rejects_unknown_gain_model(prepared_cache, tmp_path):
    with pytest.raises(MmsdError, match="--gain mmsd:bicubic names a model not in --models"):
        run_eval(["--data", str(prepared_cache), "--models", "bicubic", "--out", str(tmp_path), "--gain",
                  "mmsd:bicubic"])


def test_finetune_adapts_on_statement_1_and_scores_statement_2(prepared_cache, tmp_path, monkeypatch):
    import mmsd.training.train
    from mmsd.commands import finetune as finetune_command
    from mmsd.models.weights import save_model
    from mmsd.training import finetune

    calls = {}

    class FakeTrainer:
        """Records the hook arguments the person prior needs and 'trains' by copying the weights."""

        def __init__(self, *, model_name, model_config, cfg, cache, out, device, init_state, train_keys, val_keys,
                     precision):
            calls.update(cfg=cfg, train_keys=train_keys, val_keys=val_keys, init_state=init_state, precision=precision)
            self.args = (model_name, model_config, init_state, Path(out))
            self.checkpoint_path = Path(out) / "checkpoint.safetensors"

        def fit(self, resume=False, progress=True):
            name, config, state, out = self.args
            save_model(out / "model.safetensors", name=name, config=config, state=state)

    monkeypatch.setattr(mmsd.training.train, "Trainer", FakeTrainer)
    general = tiny_dbpn(tmp_path / "general.safetensors")
    parser = argparse.ArgumentParser()
    finetune_command.add_arguments(parser)
    args = parser.parse_args(["--from", str(general), "--actor", "19", "--data", str(prepared_cache),
                              "--out", str(tmp_path / "prior"), "--iterations", "3", "--no-progress"])
    assert finetune_command.run(args) == 0
    assert calls["train_keys"] == ["Actor_19/01-01-05-01-01-02-19"]  # statement 01 only
    assert calls["cfg"].train_actors == (19,) and calls["cfg"].iterations == 3 and not calls["cfg"].gan
    assert calls["precision"] == "auto"
    assert set(calls["init_state"]) == set(mmsd.models.weights.read(general)[0])
    result = json.loads((tmp_path / "prior" / "actor_19" / "prior.json").read_text())
    assert result["test_clips"] == ["Actor_19/01-01-08-02-02-01-19"]  # statement 02 only
    assert all(v["gain_db"] == 0.0 for v in result["crf"].values())  # same weights, same frames
    assert (tmp_path / "prior" / "prior.md").read_text().count("| actor 19 |") == 1
    with pytest.raises(MmsdError, match="actor 2 needs statement-01 and statement-02 clips, has 0 and 0"):
        finetune.actor_keys(prepared_cache, 2)


def test_finetune_with_the_trainer(prepared_cache, tmp_path):
    import inspect

    from mmsd.models.weights import read_model
    from mmsd.training import finetune
    from mmsd.training.train import Trainer

    if "init_state" not in inspect.signature(Trainer.__init__).parameters:
        pytest.skip("mmsd.training.train.Trainer has no init_state/train_keys/val_keys hooks yet")
    general = tiny_dbpn(tmp_path / "general.safetensors")
    tuned = finetune.adapt(weights=general, actor=19, cache=prepared_cache, out=tmp_path / "run", iterations=2,
                           batch_size=2, patch=16, num_workers=0)
    name, _, tensors, info = read_model(tuned)
    _, _, start, _ = read_model(general)
    assert name == "dbpn" and info["iterations"] == 2
    # two Adam steps at 5e-5 move each weight by ~1e-4: it trained, and it started from the general weights
    change = max(float((tensors[k].float() - start[k].float()).abs().max()) for k in start)
    assert 0 < change < 1e-2


def test_clip_bootstrap_interval_covers_a_known_difference_and_shrinks_with_seeds():
    from mmsd.evaluation.stats import clip_bootstrap

    rng = np.random.default_rng(1)
    clips = 180
    per_clip_effect = 0.3 + rng.normal(0, 0.5, clips)  # a true mean difference of 0.3 dB, clip-to-clip spread
    one = clip_bootstrap(per_clip_effect + rng.normal(0, 0.2, clips))
    assert one.low < 0.3 < one.high and one.low > 0.1 and one.clips == clips and one.seeds == 1
    three = clip_bootstrap(per_clip_effect + rng.normal(0, 0.2, (3, clips)))
    assert three.seeds == 3 and three.low < 0.3 < three.high
    assert three.high - three.low < one.high - one.low  # seed noise averages out
    null = clip_bootstrap(rng.normal(0, 0.5, (3, clips)))
    assert null.low < 0 < null.high
    with pytest.raises(ValueError, match="at least 2 clips"):
        clip_bootstrap(np.zeros((3, 1)))
