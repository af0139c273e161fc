"""`mmsd finetune`: the person-identification prior (Sec. 4.3).

The receiver often knows who is speaking, so a general model can be adapted to that
person. For a test actor K, the general model is trained further on K's statement-01
clips only ("Kids are talking by the door") and both models are scored on K's
statement-02 clips ("Dogs are sitting by the door"), which the adaptation never saw:
same speaker, different sentence. The gain is tuned - general face PSNR per CRF.

Choices (the paper gives none): L1 (+ the AU loss when the network predicts AUs), no
adversarial term even for a cGAN model (its discriminator is not in the weight file);
Adam from a fresh state at half the training rate (5e-5); 500 iterations of batch 8,
32x32 LR patches, every CRF mixed. Validation during the run (monitoring only) uses a
few of the statement-01 clips. Scores use `mmsd.evaluation.protocol` with 4 frames per clip.

The training is `tune`, the core `mmsd personalize` shares (on a user's own footage).

Layout: RUN/actor_KK/ holds the trainer's run (checkpoint, logs, model.safetensors)
and prior.json; RUN/prior.md and RUN/prior.json summarise every actor in RUN. A re-run
skips actors whose model.safetensors exists and resumes from a checkpoint otherwise.
"""

from __future__ import annotations

from pathlib import Path

from mmsd.errors import MmsdError

FINETUNE_LR = 5e-5
FINETUNE_ITERATIONS = 500
PRIOR_FRAMES_PER_CLIP = 4
VAL_CLIPS = 3


def actor_keys(cache: str | Path, actor: int) -> tuple[list[str], list[str]]:
    """(statement-01 keys, statement-02 keys) of one actor's clips in the cache."""
    from mmsd.data.dataset import read_index

    clips = [c for c in read_index(cache) if c.actor == actor]
    adapt = sorted(c.key for c in clips if c.statement == 1)
    test = sorted(c.key for c in clips if c.statement == 2)
    if not adapt or not test:
        raise MmsdError(f"{cache}: actor {actor} needs statement-01 and statement-02 clips, "
                        f"has {len(adapt)} and {len(test)}")
    return adapt, test


def tune(*, weights: Path, cache: Path, out: Path, actors: tuple[int, ...], train_keys: list[str],
         val_keys: list[str], iterations: int = FINETUNE_ITERATIONS, lr: float = FINETUNE_LR,
         val_every: int | None = None, keep_best: bool = False, device: str = "auto", seed: int = 0,
         precision: str = "auto", progress: bool = True, **train_options) -> Path:
    """The fine-tuning core of `mmsd finetune` and `mmsd personalize`: train the model in `weights`
    further on clips `train_keys` of `cache` (L1, + the AU loss when the network predicts AUs, no
    adversarial term) and validate on `val_keys` every `val_every` iterations (default: at the end
    only); with `keep_best`, the result holds the best-validating weights, the starting ones included.
    Returns out/model.safetensors (kept, not retrained, when it exists; a checkpoint is resumed).
    precision: of the forwards (`mmsd.models.precision`); progress: the training bar; train_options:
    further `TrainConfig` fields (e.g. batch_size, num_workers, lr_schedule)."""
    from mmsd.models.weights import read_model
    from mmsd.training.train import TrainConfig, Trainer

    model_path = out / "model.safetensors"
    if model_path.is_file():
        return model_path
    name, config, tensors, _ = read_model(weights)
    if name == "bicubic":
        raise MmsdError(f"{weights}: bicubic has nothing to fine-tune")
    cfg = TrainConfig(iterations=iterations, lr=lr, gan=False, train_actors=actors,
                      val_every=max(val_every or iterations, 1), keep_best=keep_best, seed=seed, **train_options)
    trainer = Trainer(model_name=name, model_config=config, cfg=cfg, cache=cache, out=out, device=device,
                      init_state=tensors, train_keys=train_keys, val_keys=val_keys, precision=precision)
    trainer.fit(resume=trainer.checkpoint_path.is_file(), progress=progress)
    return model_path


def adapt(*, weights: Path, actor: int, cache: Path, out: Path, iterations: int = FINETUNE_ITERATIONS,
          lr: float = FINETUNE_LR, device: str = "auto", seed: int = 0, precision: str = "auto",
          **train_options) -> Path:
    """Fine-tune the model in `weights` on the actor's statement-01 clips (`tune`); the tuned model file."""
    train_keys, _ = actor_keys(cache, actor)
    return tune(weights=weights, cache=cache, out=out, actors=(actor,), train_keys=train_keys,
                val_keys=train_keys[:VAL_CLIPS], iterations=iterations, lr=lr, device=device, seed=seed,
                precision=precision, **train_options)


def general_model(name_or_path: str) -> Path:
    """The weights file of `--from NAME|PATH`: a shipped model (or one in $MMSD_MODELS) or a file."""
    from mmsd.models.weights import find_model

    weights = find_model(name_or_path) or Path(name_or_path)
    if not weights.is_file():
        raise MmsdError(f"--from {name_or_path}: neither a shipped model nor a weights file")
    return weights


def compare(cache: Path, models: dict[str, Path | str], *, actors: tuple[int, ...], keys: list[str],
            frames_per_clip: int = PRIOR_FRAMES_PER_CLIP, progress: bool = True, precision: str = "auto") -> list:
    """`mmsd.evaluation.protocol` rows (FrameScore) of models {label: file, name or 'bicubic'} on clips `keys`."""
    from mmsd.evaluation.protocol import FrameSubset, evaluate, load_model

    loaded = [load_model(f"{label}={spec}", precision=precision) for label, spec in models.items()]
    return evaluate(cache, loaded, actors=actors, keys=keys, subset=FrameSubset(frames_per_clip), progress=progress)


def score(*, general: Path, tuned: Path, actor: int, cache: Path, progress: bool = True,
          precision: str = "auto") -> dict:
    """Face PSNR/SSIM of the general and the tuned model on the actor's statement-02 clips, per CRF."""
    from mmsd.evaluation.tables import group_means

    _, test_keys = actor_keys(cache, actor)
    rows = compare(cache, {"general": general, "tuned": tuned}, actors=(actor,), keys=test_keys, progress=progress,
                   precision=precision)
    means = group_means(rows, ("model", "crf"))
    crfs = sorted({crf for _, crf in means})
    per_crf = {
        str(crf): {
            "general_psnr": means[("general", crf)]["face_psnr"],
            "tuned_psnr": means[("tuned", crf)]["face_psnr"],
            "gain_db": means[("tuned", crf)]["face_psnr"] - means[("general", crf)]["face_psnr"],
            "general_ssim": means[("general", crf)]["face_ssim"],
            "tuned_ssim": means[("tuned", crf)]["face_ssim"],
            "frames": means[("tuned", crf)]["frames"],
        }
        for crf in crfs
    }
    return {"actor": actor, "general": str(general), "tuned": str(tuned), "test_clips": test_keys,
            "frames_per_clip": PRIOR_FRAMES_PER_CLIP, "crf": per_crf,
            "mean_gain_db": sum(v["gain_db"] for v in per_crf.values()) / len(per_crf)}


def summary_table(results: list[dict]):
    """Per actor: general and tuned face PSNR and the gain, per CRF."""
    from mmsd.evaluation.tables import Table

    crfs = sorted({int(c) for r in results for c in r["crf"]})
    columns, digits = [], []
    for crf in crfs:
        columns += [f"CRF {crf} general", f"CRF {crf} tuned", f"CRF {crf} gain"]
        digits += [2, 2, 2]
    columns.append("mean gain")
    digits.append(2)
    body = []
    for r in sorted(results, key=lambda r: r["actor"]):
        values = []
        for crf in crfs:
            v = r["crf"].get(str(crf))
            values += [v["general_psnr"], v["tuned_psnr"], v["gain_db"]] if v else [None, None, None]
        body.append((f"actor {r['actor']}", [*values, r["mean_gain_db"]]))
    notes = ["Face PSNR (dB) on each actor's statement-02 clips; 'tuned' = the general model fine-tuned on the "
             "same actor's statement-01 clips only; gain = tuned - general."]
    return Table("Person-ID prior (Sec. 4.3): face PSNR of the general and the speaker-tuned model", columns, body,
                 digits, notes, row_header="Test actor")
