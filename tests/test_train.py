import csv
import dataclasses
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mmsd import cli
from mmsd.errors import MmsdError
from mmsd.models import build_model, load_config, weights
from mmsd.training.train import TrainConfig, Trainer, resume, start

TINY = dataclasses.asdict(load_config(
    "small", channels=8, deform_groups=1, extract_blocks=0, trunk_blocks=1, recon_blocks=1,
    audio_hidden=8, audio_layers=1, attention_channels=4, au_hidden=8, emotion_hidden=8,
    upsample_channels=8, disc_channels=4,
))


def tiny_config(**overrides) -> TrainConfig:
    values = dict(iterations=6, batch_size=2, patch=8, lr=1e-3, train_actors=(1, 19), val_every=1000,
                  checkpoint_every=3, log_every=1, num_workers=0, seed=3)
    return TrainConfig(**(values | overrides))


def read_log(run, name="log.csv"):
    with open(run / name, newline="") as f:
        return list(csv.DictReader(f))


def _fixed_l1(trainer: Trainer) -> float:
    """L1 of the model on the same 16 training patches (epoch 0), in eval mode."""
    from mmsd.data.dataset import collate

    trainer.train_set.set_epoch(0)
    batch = collate([trainer.train_set[i % len(trainer.train_set)] for i in range(16)])
    trainer.model.eval()
    with torch.no_grad():
        out = trainer.model(batch.lr, mfcc=batch.mfcc, emotion=batch.emotion, crop=batch.crop)
    return float((out.image - batch.hr).abs().mean())


def test_thirty_iterations_lower_the_l1_loss(prepared_cache, tmp_path):
    config = TINY | {"channels": 16}
    trainer = Trainer(model_name="mmsd", model_config=config, cfg=tiny_config(iterations=30, batch_size=4, crop_focus="frame"),
                      cache=prepared_cache, out=tmp_path / "run", device="cpu")
    before = _fixed_l1(trainer)  # the untrained model is exactly bicubic
    trainer.fit()
    # the fixture's noise-textured frames leave little to learn in 30 steps: about 1% (seeded, deterministic);
    # crops anywhere in the frame, since its face is a flat blob and the learnable detail is the background
    assert _fixed_l1(trainer) < 0.995 * before
    assert len(read_log(tmp_path / "run")) == 30
    name, config, _, info = weights.read_model(tmp_path / "run" / "model.safetensors")
    assert (name, config, info["iterations"]) == ("mmsd", TINY | {"channels": 16}, 30)
    assert "crf15" in info["validation_face_psnr"] and "crf40" in info["validation_face_psnr"]


def test_keep_best_keeps_the_starting_weights_when_training_only_hurts(prepared_cache, tmp_path):
    torch.manual_seed(0)
    start_state = {k: v.clone() for k, v in build_model("mmsd", TINY).state_dict().items()}
    cfg = tiny_config(iterations=4, lr=0.5, val_every=2, keep_best=True)  # lr 0.5: every step ruins the model
    trainer = Trainer(model_name="mmsd", model_config=TINY, cfg=cfg, cache=prepared_cache, out=tmp_path / "run",
                      device="cpu", init_state=start_state)
    trainer.fit()
    _, _, tensors, info = weights.read_model(tmp_path / "run" / "model.safetensors")
    assert info["best_iteration"] == 0 and info["iterations"] == 4
    assert all(torch.equal(tensors[k], start_state[k]) for k in start_state)
    validations = [float(r["mean"]) for r in read_log(tmp_path / "run", "val.csv")]
    assert len(validations) == 3 and validations[0] == info["validation_face_psnr"]["mean"] > max(validations[1:])


def test_resume_continues_exactly_as_one_straight_run(prepared_cache, tmp_path):
    # the AU generator's dropout consumes the torch RNG: resume must restore it too
    cfg = tiny_config(iterations=6, gan=True, adv_start=2)
    start(cache=prepared_cache, out=tmp_path / "straight", model_name="mmsd", model_config=TINY, cfg=cfg,
          device="cpu")
    start(cache=prepared_cache, out=tmp_path / "split", model_name="mmsd", model_config=TINY,
          cfg=dataclasses.replace(cfg, iterations=3), device="cpu")
    resume(tmp_path / "split", iterations=6, device="cpu")
    a, _ = weights.read(tmp_path / "straight" / "checkpoint.safetensors")
    b, _ = weights.read(tmp_path / "split" / "checkpoint.safetensors")
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    rows = read_log(tmp_path / "split")
    assert [int(r["iteration"]) for r in rows] == list(range(1, 7))
    assert rows[0]["adv"] == "" and float(rows[-1]["adv"]) > 0  # L_adv off before adv_start


def test_snapshots_keep_the_weights_of_their_iteration(prepared_cache, tmp_path):
    cfg = tiny_config(iterations=4, snapshot_every=2, checkpoint_every=2)
    start(cache=prepared_cache, out=tmp_path / "run", model_name="mmsd", model_config=TINY, cfg=cfg, device="cpu")
    snapshots = sorted((tmp_path / "run" / "snapshots").iterdir())
    assert [p.name for p in snapshots] == ["model-000002.safetensors", "model-000004.safetensors"]
    _, _, last, info = weights.read_model(snapshots[-1])
    _, _, final, _ = weights.read_model(tmp_path / "run" / "model.safetensors")
    assert info["iterations"] == 4
    for key in final:
        torch.testing.assert_close(last[key], final[key], msg=key)
    _, _, first, _ = weights.read_model(snapshots[0])
    assert any(not torch.equal(first[k], last[k]) for k in last)


def test_cosine_schedule_decays_every_group_to_lr_min(prepared_cache, tmp_path):
    cfg = tiny_config(iterations=8, lr=1e-3, lr_min=1e-5, lr_schedule="cosine", gan=True, adv_start=0)
    trainer = Trainer(model_name="mmsd", model_config=TINY, cfg=cfg, cache=prepared_cache, out=tmp_path, device="cpu")
    factors = [trainer.lr_factor(i) for i in range(9)]
    assert factors[0] == 1.0 and factors[4] == pytest.approx((1 + 1e-2) / 2)
    assert factors[8] == pytest.approx(1e-2) and all(a > b for a, b in zip(factors, factors[1:]))
    trainer.fit()
    fast, slow = trainer.opt_g.param_groups
    (disc,) = trainer.opt_d.param_groups
    assert fast["lr"] == pytest.approx(1e-3 * factors[7])  # set before the last (8th) step
    assert slow["lr"] == pytest.approx(0.1 * fast["lr"]) and disc["lr"] == pytest.approx(cfg.d_lr * factors[7])
    with pytest.raises(ValueError, match="lr_schedule"):
        tiny_config(lr_schedule="step")


def test_offset_convs_learn_at_a_lower_rate(prepared_cache, tmp_path):
    trainer = Trainer(model_name="mmsd", model_config=TINY, cfg=tiny_config(offset_lr_scale=0.1),
                      cache=prepared_cache, out=tmp_path, device="cpu")
    fast, slow = trainer.opt_g.param_groups
    assert slow["lr"] == pytest.approx(0.1 * fast["lr"])
    assert {id(p) for p in slow["params"]} == {id(p) for p in trainer.model.offset_parameters()}


def test_tune_only_trains_the_named_parts_and_leaves_the_rest_untouched(prepared_cache, tmp_path):
    cfg = tiny_config(iterations=2, tune_only=("reconstruction",))
    trainer = Trainer(model_name="mmsd", model_config=TINY, cfg=cfg, cache=prepared_cache, out=tmp_path, device="cpu")
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.fit()
    moved = {name.split(".")[0] for name, p in trainer.model.named_parameters() if not torch.equal(p, before[name])}
    assert moved == {"reconstruction"}
    with pytest.raises(MmsdError, match="no part mouth to tune; this network has video, "):
        Trainer(model_name="mmsd", model_config=TINY, cfg=tiny_config(tune_only=("mouth",)),
                cache=prepared_cache, out=tmp_path / "other", device="cpu")


def test_l2sp_holds_the_weights_near_the_starting_ones(prepared_cache, tmp_path):
    torch.manual_seed(0)
    start_state = {k: v.clone() for k, v in build_model("mmsd", TINY).state_dict().items()}

    def drift(l2sp: float) -> float:
        cfg = tiny_config(iterations=12, lr=1e-2, l2sp=l2sp, seed=5, checkpoint_every=100)
        trainer = Trainer(model_name="mmsd", model_config=TINY, cfg=cfg, cache=prepared_cache,
                          out=tmp_path / f"run-{l2sp}", device="cpu", init_state=start_state)
        trainer.fit(progress=False)
        return sum(float(((p.detach() - start_state[name]) ** 2).sum()) for name, p in trainer.model.named_parameters())

    free, held = drift(0.0), drift(1e3)
    assert held < 0.5 * free, (held, free)
    assert "drift" in read_log(tmp_path / "run-1000.0")[0]  # the penalty's distance is logged


def test_training_and_validation_never_see_the_test_actors(prepared_cache, tmp_path):
    trainer = Trainer(model_name="mmsd", model_config=TINY, cfg=tiny_config(train_actors=(1,)),
                      cache=prepared_cache, out=tmp_path, device="cpu")
    keys = {trainer.train_set[i].key for i in range(len(trainer.train_set))}
    keys |= {trainer.val_set[i].key for i in range(len(trainer.val_set))}
    assert keys and all(k.startswith("Actor_01/") for k in keys)
    train_clips = {k.split("#")[0] for k in keys if k in {trainer.train_set[i].key for i in range(len(trainer.train_set))}}
    val_clips = {trainer.val_set[i].key.split("#")[0] for i in range(len(trainer.val_set))}
    assert not train_clips & val_clips


def _ddp_worker(rank: int, port: int, cache: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    start(cache=cache, out=out, model_name="mmsd", model_config=TINY, cfg=tiny_config(iterations=2),
          device="cpu")


def test_ddp_with_two_cpu_processes_runs_two_iterations(prepared_cache, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_worker, args=(port, str(prepared_cache), str(tmp_path / "ddp")), nprocs=2,
                       start_method="spawn", join=True)
    _, _, _, info = weights.read_model(tmp_path / "ddp" / "model.safetensors")
    assert info["iterations"] == 2
    assert [int(r["iteration"]) for r in read_log(tmp_path / "ddp")] == [1, 2]  # rank 0 alone logs


def test_cli_refuses_to_overwrite_a_run_and_to_resume_nothing(prepared_cache, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    assert cli.main(["train", "--data", str(prepared_cache), "--out", str(run)]) == 1
    assert "already holds a run" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no run to resume" in err


class _Items(list):
    """A stand-in dataset: item i is (name, i, epoch at the time it was read)."""

    def __init__(self, name: str, n: int):
        super().__init__(range(n))
        self.name, self.epoch = name, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i):
        return self.name, i, self.epoch


def test_a_mix_draws_each_cache_by_its_share_and_repeats_by_position():
    from mmsd.training.sampling import MixedPositions

    mixed = MixedPositions([_Items("main", 50), _Items("photos", 7), _Items("leaves", 3)], [0.6, 0.3, 0.1], seed=4)
    drawn = [mixed[p] for p in range(4000)]
    shares = {name: sum(d[0] == name for d in drawn) / len(drawn) for name in ("main", "photos", "leaves")}
    assert abs(shares["main"] - 0.6) < 0.03 and abs(shares["photos"] - 0.3) < 0.03 and abs(shares["leaves"] - 0.1) < 0.02
    assert {d[1] for d in drawn if d[0] == "photos"} == set(range(7))  # every item of a small cache is used
    assert [mixed[p] for p in (17, 3, 3999)] == [drawn[17], drawn[3], drawn[3999]]  # any order, same samples


def test_mix_shares_are_checked():
    with pytest.raises(ValueError, match="sum to < 1"):
        tiny_config(mix=(("a", 0.6), ("b", 0.5)))


def test_a_run_starts_from_init_weights_and_trains_on_a_mix(prepared_cache, portrait_cache, tmp_path):
    from mmsd.models import build_model

    start_weights = tmp_path / "start.safetensors"
    torch.manual_seed(7)
    state = build_model("mmsd", TINY).state_dict()
    state = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    weights.save_model(start_weights, name="mmsd", config=TINY, state=state)
    cfg = tiny_config(iterations=4, init=str(start_weights), mix=((str(portrait_cache), 0.5),))
    trainer = Trainer(model_name="mmsd", model_config=TINY, cfg=cfg, cache=prepared_cache, out=tmp_path / "run",
                      device="cpu")
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in state.items())
    assert len(trainer.mix_sets) == 1 and len(trainer.mix_sets[0]) > 0
    trainer.fit()
    assert len(read_log(tmp_path / "run")) == 4
    info = weights.read_model(tmp_path / "run" / "model.safetensors")[3]
    assert info["train_config"]["init"] == str(start_weights)
    assert info["train_config"]["mix"] == [[str(portrait_cache), 0.5]]


def test_init_takes_config_changes_that_keep_the_weights_and_audio_augments(prepared_cache, tmp_path):
    from mmsd.models import build_model

    old = {**TINY, "mfcc_norm": "none"}  # a file from before the MFCC normalisation
    start_weights = tmp_path / "old.safetensors"
    weights.save_model(start_weights, name="mmsd", config=old, state=build_model("mmsd", old).state_dict())
    run = tmp_path / "run"
    args = ["train", "--data", str(prepared_cache), "--out", str(run), "--init", str(start_weights),
            "--set", "mfcc_norm=cmvn", "--voice-augment", "0.5", "--iterations", "2", "--batch", "2", "--patch", "8",
            "--workers", "0", "--val-every", "1000", "--adv-weight", "0.001", "--audio-mismatch", "0.25"]
    assert cli.main(args) == 0
    _, config, _, info = weights.read_model(run / "model.safetensors")
    assert config["mfcc_norm"] == "cmvn" and info["train_config"]["voice_augment"] == 0.5
    assert info["train_config"]["adv_weight"] == 0.001  # the flags reach TrainConfig
    assert info["train_config"]["audio_mismatch"] == 0.25
    assert cli.main([*args[:4], str(tmp_path / "bad"), *args[5:8], "--set", "channels=12"]) == 1  # shapes change
