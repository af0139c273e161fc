"""Train the shipped `small` models with one budget, resumably, two at a time, in two stages.

    python scripts/train_shipped.py                      # stage 1, all of them (runs/shipped/NAME)
    python scripts/train_shipped.py mmsd edvr            # some of them
    python scripts/train_shipped.py --stage real         # stage 2 (runs/real7/NAME), from stage 1's weights
    python scripts/train_shipped.py --stage real --ship  # copy finished runs to mmsd/shipped/ with model cards

Stage 1 ("synthetic", issue 5): from random weights on the synthetic corpus.
Stage 2 ("real", issue 13): every stage-1 model tuned with one recipe (`REAL_RECIPES`) on a mixture
that teaches real-image restoration. Recipe 7 (the default, shipped since 2026-12-02 late): 2,400
iterations, lr 2e-4, 20% the synthetic corpus, 15% the photo-style corpus, 5% natural-photo
clips, 10% dead leaves, 10% synthetic faces at 0.35-0.9x the crop's scale in whole frames, and
40% real faces: 12% those of `mmsd content faces`, 8% `mmsd content morefaces` and 20% the 22
faces of `mmsd content pypifaces` (the caches of `make realdata`). Recipe 6 (shipped 2026-12-02 early):
the same with the real faces 20% `faces`, 20% `morefaces`. Recipe 1 (`--recipe 1`, runs/real/):
800 iterations, lr 1e-4, 50% corpus, 20% photos, 15% leaves, 15% far faces. Recipe 2 (shipped
before for the MMSD-Nets): 25% corpus, 20% photo-style corpus, 30% photos, 15% leaves, 10% far
faces. Recipes 3-5 are probes on recipe 2's budget that add real faces (3: `faces` 15%; 4: and
opencv-doc's scenes; 5: and `morefaces` 15%). The cGAN's lambda1 is 0.001 in stage 2,
not the paper's 0.01 (`--adv-weight`; docs/results.md, "Real faces": with 0.01 it paints a blob at the
mouth of real faces and falls below Bicubic).
The MMSD-Nets with an audio branch also switch to normalised MFCC (``mfcc_norm=cmvn``) and
hear a voice variant of the clip's audio in half of the samples (`mmsd voices`). The starting
weights are the stage-1 ones of commit STAGE1_COMMIT (git history), copied to the runs folder as
NAME.start.safetensors. Second seeds (`mmsd-seed1`, `edvr-seed1`) measure
the run-to-run spread of stage 2; they are evaluated, not shipped.

Every model gets the same iterations, batch, patch, crops, learning-rate schedule and
data (the default synthetic corpus's cache, training actors 1-18, all CRFs mixed). A
run that exists is resumed from its last checkpoint, so after a kill the same command
continues. Two runs share the 2-core CPU, one thread each (measured faster in total
than one run on two threads). The recipe is the paper's (Adam 0.5/0.9, batch 8, L1 +
0.001 L_E [+ 0.01 L_adv]) except the learning rate: 5e-4 decaying to 1e-6 on a cosine,
because the paper's constant 1e-4 is meant for hundreds of thousands of GPU iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ITERATIONS = 4000
GAN_START = 2000  # L_adv joins after half the budget (the paper: after 2 epochs of L1 + L_E)
COMMON = ["--config", "small", "--iterations", str(ITERATIONS), "--batch", "8", "--patch", "32",
          "--lr", "5e-4", "--lr-schedule", "cosine", "--lr-min", "1e-6", "--crop-focus", "face",
          "--workers", "1", "--val-every", "1000", "--checkpoint-every", "200", "--seed", "0"]

# name -> (extra `mmsd train` arguments, one line for the model card)
MODELS: dict[str, tuple[list[str], str]] = {  # in training order: the slow baselines start early
    "mmsd": (["--model", "mmsd"], "MMSD-Net small, video + audio + emotion, no adversarial loss (Table 1)"),
    "edvr": (["--model", "edvr"], "EDVR small (PCD + TSA), 5 frames, baseline"),
    "mmsd-image": (["--model", "mmsd", "--set", "audio=false", "emotion=false"],
                   "ablation: MMSD-Net small, image only (Fig. 1 b)"),
    "mmsd-audio": (["--model", "mmsd", "--set", "emotion=false"], "ablation: MMSD-Net small, + audio (Fig. 1 c)"),
    "dbpn": (["--model", "dbpn"], "D-DBPN small, centre frame only, baseline"),
    "mmsd-gan": (["--model", "mmsd", "--gan", "--adv-start", str(GAN_START)],
                 f"MMSD-Net small with the emotion-conditioned cGAN (L_adv from iteration {GAN_START})"),
    "mmsd-lowlatency": (["--model", "mmsd", "--set", "causal=true"],
                        "MMSD-Net small with a causal window t-4..t: no future frame, no look-ahead delay"),
    "mmsd-fast": (["--model", "mmsd", "--set", "radius=1"],
                  "MMSD-Net small with a 3-frame window t-1..t+1: the quality of `mmsd` at 1.7-2x its speed "
                  "(the decoder's default; issue 12)"),
}


# stage 2: one recipe for every model (the mixture's shares were chosen on the real-face validation set,
# `mmsd content portraits`, with probes of mmsd: docs/results.md, "Real faces"; never on the test actors).
# Recipe 1 (800 iterations, 35% real images) is kept for the record of runs/real; recipe 2 (3x longer, 45% real
# images and the photo-style corpus: probe v2) doubled the real-face gain of mmsd at CRF 32; recipe 3 (15% of
# the samples from real faces instead of photo-style corpus and photos) added 0.09 dB more there, recipe 4
# (+ scenes) nothing; recipes 5 and 6 (+ the morefaces, real faces 30% and 40%) +0.05 and +0.06 dB more;
# recipe 7 (real faces still 40%, half of them the pypifaces) +0.04 dB more (+0.53 over Bicubic at CRF 32).
# Recipe 8 (a probe): recipe 7 with a quarter of the samples hearing another clip's audio (--audio-mismatch),
# so that the audio branch learns to defer to the lips it sees when the voice disagrees.
STAGE1_COMMIT = "36476b2"  # the last commit whose mmsd/shipped/ holds the stage-1 weights
# models added after STAGE1_COMMIT: where their stage-1 weights are kept (commit, path), trained with MODELS' recipe
STAGE1_KEPT = {"mmsd-fast": ("0058648", "results/fast/weights/mmsd-radius1-stage1.safetensors")}
# how a shipped model's run came about, where it was not by this script's command itself (one line of its card)
PROVENANCE = {"mmsd-fast": "both stages were run on 2026-12-03 as the radius-1 probe of issue 12 (docs/speed.md, "
                           "\"A smaller window\"), with the arguments this script passes, by hand: `mmsd train ... "
                           "--set radius=1`, then `--init` its weights with the stage-2 recipe"}
_REAL_COMMON = ["--batch", "8", "--patch", "32", "--lr-schedule", "cosine", "--lr-min", "1e-6", "--crop-focus", "face",
                "--workers", "1", "--checkpoint-every", "100", "--seed", "0"]
# recipe -> (run folder under runs/, `mmsd train` arguments)
REAL_RECIPES: dict[int, tuple[str, list[str]]] = {
    1: ("real", [*_REAL_COMMON, "--iterations", "800", "--lr", "1e-4", "--val-every", "800",
                 "--mix", "data/photos:0.2", "data/leaves:0.15", "data/cache-far:0.15"]),
    2: ("real2", [*_REAL_COMMON, "--iterations", "2400", "--lr", "2e-4", "--val-every", "800",
                  "--mix", "data/cache-photo:0.2", "data/photos:0.3", "data/leaves:0.15", "data/cache-far:0.1"]),
    3: ("real3", [*_REAL_COMMON, "--iterations", "2400", "--lr", "2e-4", "--val-every", "800",
                  "--mix", "data/cache-photo:0.15", "data/photos:0.25", "data/leaves:0.15", "data/cache-far:0.1",
                  "data/faces:0.15"]),
    4: ("real4", [*_REAL_COMMON, "--iterations", "2400", "--lr", "2e-4", "--val-every", "800",
                  "--mix", "data/cache-photo:0.15", "data/photos:0.15", "data/scenes:0.15", "data/leaves:0.1",
                  "data/cache-far:0.1", "data/faces:0.15"]),
    5: ("real5", [*_REAL_COMMON, "--iterations", "2400", "--lr", "2e-4", "--val-every", "800",
                  "--mix", "data/cache-photo:0.15", "data/photos:0.1", "data/leaves:0.15", "data/cache-far:0.1",
                  "data/faces:0.15", "data/morefaces:0.15"]),
    6: ("real6", [*_REAL_COMMON, "--iterations", "2400", "--lr", "2e-4", "--val-every", "800",
                  "--mix", "data/cache-photo:0.15", "data/photos:0.05", "data/leaves:0.1", "data/cache-far:0.1",
                  "data/faces:0.2", "data/morefaces:0.2"]),
    7: ("real7", [*_REAL_COMMON, "--iterations", "2400", "--lr", "2e-4", "--val-every", "800",
                  "--mix", "data/cache-photo:0.15", "data/photos:0.05", "data/leaves:0.1", "data/cache-far:0.1",
                  "data/faces:0.12", "data/morefaces:0.08", "data/pypifaces:0.2"]),
    8: ("real8", [*_REAL_COMMON, "--iterations", "2400", "--lr", "2e-4", "--val-every", "800",
                  "--mix", "data/cache-photo:0.15", "data/photos:0.05", "data/leaves:0.1", "data/cache-far:0.1",
                  "data/faces:0.12", "data/morefaces:0.08", "data/pypifaces:0.2", "--audio-mismatch", "0.25"]),
}
# stage 3 (issue 39): the shipped (stage-2) weights tuned on the compact data of `make data3` with real talking-head
# video in the mixture, 20,000 iterations on a cosine from lr 2e-4, snapshots every 1,000 for the learning curves
# (scripts/curves.py). Probes A and B differ in the share of real video (30% and 10%); the rest of each mixture
# keeps about recipe 7's proportions (no far faces: `make data3` does not render them; docs/real-video.md).
S3 = "data/s3"
STAGE2_COMMIT = "ef619f4"  # the last commit whose mmsd/shipped/ holds the stage-2 weights of the stage-3 models
# the models shipped from stage 3, and the recipe they were tuned with (docs/real-video.md)
STAGE3_SHIPPED = {"mmsd-fast": "D"}
_VIDEO_COMMON = [*_REAL_COMMON, "--iterations", "20000", "--lr", "2e-4", "--val-every", "1000", "--snapshot-every",
                 "1000"]
VIDEO_RECIPES: dict[str, tuple[str, list[str]]] = {
    "A": ("video-a", [*_VIDEO_COMMON, "--mix", f"{S3}/realvideo:0.3", f"{S3}/cache-photo:0.1", f"{S3}/photos:0.04",
                      f"{S3}/leaves:0.06", f"{S3}/faces:0.08", f"{S3}/morefaces:0.06", f"{S3}/pypifaces:0.14"]),
    "B": ("video-b", [*_VIDEO_COMMON, "--mix", f"{S3}/realvideo:0.1", f"{S3}/cache-photo:0.13", f"{S3}/photos:0.05",
                      f"{S3}/leaves:0.08", f"{S3}/faces:0.1", f"{S3}/morefaces:0.07", f"{S3}/pypifaces:0.18"]),
    # D: A's mixture on a 4,000-iteration schedule: A's snapshots at 2,000-4,000 iterations kept the unseen
    # people of the whole-frame check where the stage-2 model had them, later ones lost up to 0.16 dB there
    "D": ("video-d", [*_REAL_COMMON, "--iterations", "4000", "--lr", "2e-4", "--val-every", "1000",
                      "--snapshot-every", "1000", "--mix", f"{S3}/realvideo:0.3", f"{S3}/cache-photo:0.1",
                      f"{S3}/photos:0.04", f"{S3}/leaves:0.06", f"{S3}/faces:0.08", f"{S3}/morefaces:0.06",
                      f"{S3}/pypifaces:0.14"]),
    # C: after A cost the unseen people of the whole-frame check (docs/real-video.md): 8,000 iterations, real
    # video 20%, three quarters of it cut at the source's own scale (`--crop native`, the face as large as in
    # a whole-frame call), the rest as B
    "C": ("video-c", [*_REAL_COMMON, "--iterations", "8000", "--lr", "2e-4", "--val-every", "1000",
                      "--snapshot-every", "1000", "--mix", f"{S3}/realvideo-native:0.15", f"{S3}/realvideo:0.05",
                      f"{S3}/cache-photo:0.12", f"{S3}/photos:0.05", f"{S3}/leaves:0.07", f"{S3}/faces:0.09",
                      f"{S3}/morefaces:0.06", f"{S3}/pypifaces:0.16"]),
}
# the recipe the shipped models follow (chosen on the real-face validation set: docs/results.md, "Real faces")
REAL_RECIPE = 7
REAL_AUDIO = ["--set", "mfcc_norm=cmvn", "--voice-augment", "0.5"]  # the MMSD-Nets with an audio branch
# name -> (stage-1 model it starts from, extra arguments)
REAL_MODELS: dict[str, tuple[str, list[str]]] = {  # slowest first
    "edvr": ("edvr", []),
    "dbpn": ("dbpn", []),
    "mmsd-image": ("mmsd-image", []),
    "mmsd": ("mmsd", REAL_AUDIO),
    "mmsd-gan": ("mmsd-gan", [*REAL_AUDIO, "--gan", "--adv-start", "0", "--adv-weight", "0.001"]),
    "mmsd-audio": ("mmsd-audio", REAL_AUDIO),
    "mmsd-lowlatency": ("mmsd-lowlatency", REAL_AUDIO),
    "mmsd-fast": ("mmsd-fast", REAL_AUDIO),
    "mmsd-seed1": ("mmsd", [*REAL_AUDIO, "--seed", "1"]),
    "edvr-seed1": ("edvr", ["--seed", "1"]),
}
NOT_SHIPPED = ("mmsd-seed1", "edvr-seed1")


def stage1_source(name: str) -> tuple[str, str]:
    """(commit, path) of the stage-1 weights of `name`: shipped at STAGE1_COMMIT (today's mmsd/shipped/ holds
    stage 2), or kept elsewhere for the models added later (STAGE1_KEPT)."""
    first = REAL_MODELS[name][0]
    return STAGE1_KEPT.get(first, (STAGE1_COMMIT, f"mmsd/shipped/{first}.safetensors"))


def stage1_weights(name: str, out: Path) -> None:
    """The stage-1 weights of `name` (`stage1_source`) written to `out`."""
    _from_git(*stage1_source(name), out)


def _from_git(commit: str, path: str, out: Path) -> None:
    """The file `path` as committed at `commit`, written to `out`."""
    from mmsd.media.fileio import atomic_path

    out.parent.mkdir(parents=True, exist_ok=True)
    blob = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, check=True).stdout
    with atomic_path(out) as partial:
        partial.write_bytes(blob)


def stage2_weights(name: str, out: Path) -> None:
    """The stage-2 weights of `name`, shipped at STAGE2_COMMIT, written to `out`: where stage 3 starts."""
    _from_git(STAGE2_COMMIT, f"mmsd/shipped/{REAL_MODELS[name][0]}.safetensors", out)


def train(name: str, data: Path, runs: Path, stage: str = "synthetic", recipe: int | str = REAL_RECIPE,
          threads: int = 1) -> int:
    """Start or resume one run on `threads` CPU threads; the model's own arguments come after the stage's,
    so they win."""
    run = runs / name
    mmsd = [sys.executable, "-m", "mmsd.cli", "train"]
    start = runs / f"{name}.start.safetensors"  # stage 2 starts from the stage-1 weights, stage 3 from the shipped
    if stage in ("real", "video") and not start.exists():  # a resumed run reads them too (its --init)
        (stage1_weights if stage == "real" else stage2_weights)(name, start)
    if (run / "checkpoint.safetensors").exists():
        command = mmsd + ["--resume", str(run)]
    elif stage in ("real", "video"):
        shutil.rmtree(run, ignore_errors=True)
        recipe_arguments = (REAL_RECIPES if stage == "real" else VIDEO_RECIPES)[recipe][1]
        command = mmsd + ["--data", str(data), "--out", str(run), "--init", str(start), *recipe_arguments,
                          *REAL_MODELS[name][1]]
    else:
        shutil.rmtree(run, ignore_errors=True)  # a start killed before its first checkpoint
        command = mmsd + ["--data", str(data), "--out", str(run), *COMMON, *MODELS[name][0]]
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    run.parent.mkdir(parents=True, exist_ok=True)
    with open(runs / f"{name}.log", "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        return subprocess.call(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def ship(name: str, runs: Path, weights: Path, recipe: int | str = REAL_RECIPE, stage: str = "real") -> None:
    """mmsd/shipped/NAME.safetensors and NAME.md (package data) from a finished run of `stage`."""
    from mmsd.models.weights import read_model

    source = runs / name / "model.safetensors"
    if not source.is_file():
        raise SystemExit(f"{name}: run not finished ({source} not written yet)")
    arch, config, tensors, info = read_model(source)
    train_cfg = info["train_config"]
    if info.get("iterations") != train_cfg["iterations"]:
        raise SystemExit(f"{name}: run not finished ({info.get('iterations')} of {train_cfg['iterations']} iterations)")
    from mmsd.commands.catalog import TRAINED_IN  # what a model's metadata without "precision" was trained in
    from mmsd.models import build_model, complexity
    from mmsd.training.train import TrainConfig

    size = complexity(build_model(arch, config))
    weights.mkdir(exist_ok=True)
    shutil.copyfile(source, weights / f"{name}.safetensors")
    val = info.get("validation_face_psnr", {})
    mix = "".join(f", {share:.0%} of the samples from `{os.path.relpath(cache, ROOT)}`" for cache, share in
                  train_cfg.get("mix", []))
    init = None
    if stage == "video":
        init = (f"- starts from: the stage-2 `{name}` shipped up to commit {STAGE2_COMMIT} (synthetic corpus, stills "
                f"and real photographs; copied to `{os.path.relpath(train_cfg['init'], ROOT)}`); stage 3 (issue 39) "
                f"tunes it with real talking-head video (`{S3}/realvideo`, recipe {recipe}: docs/real-video.md)")
    elif train_cfg.get("init"):
        commit, path = stage1_source(name)
        where = (f"shipped up to commit {commit}" if commit == STAGE1_COMMIT
                 else f"trained with this script's stage-1 recipe, kept as `{path}` (commit {commit})")
        init = (f"- starts from: the stage-1 (synthetic-only) `{REAL_MODELS[name][0]}` {where} "
                f"(copied to `{os.path.relpath(train_cfg['init'], ROOT)}`); stage 2 (issue 13) tunes it for real faces")
    lines = [
        f"# {name}", "", MODELS[name][1] + ".", "",
        f"- network: `{arch}`, {size}",
        f"- config: `{json.dumps(config, sort_keys=True)}`",
        f"- data: `{os.path.relpath(info['data'], ROOT)}` ("
        + ("the compact synthetic corpus of `make data3`" if stage == "video"
           else "the default synthetic corpus, `mmsd synth` + `mmsd prepare`") + "), "
        f"training actors {train_cfg['train_actors'][0]}-{train_cfg['train_actors'][-1]}, all CRFs mixed{mix}",
        *([init] if init else []),
        f"- training: {info['iterations']} iterations, batch {train_cfg['batch_size']}, LR patch "
        f"{train_cfg['patch']}x{train_cfg['patch']} ({train_cfg['crop_focus']}-centred crops), Adam "
        f"{tuple(train_cfg['betas'])}, lr {train_cfg['lr']:g} -> {train_cfg['lr_min']:g} ({train_cfg['lr_schedule']})"
        + (f", cGAN from iteration {train_cfg['adv_start']} "
           f"(lambda1 {train_cfg.get('adv_weight', TrainConfig.adv_weight):g})"
           if train_cfg["gan"] else "")
        + (f", {train_cfg['voice_augment']:.0%} of the samples hear a voice variant (`mmsd voices`)"
           if train_cfg.get("voice_augment") else ""),
        f"- wall time: {info['wall_seconds'] / 60:.0f} min of a 2-core CPU, trained in "
        f"{info.get('precision', TRAINED_IN)} "
        "(which CPU, and whether a second run shared it: docs/training.md)",
        "- validation face PSNR (held-out clips of the training actors): "
        + ", ".join(f"{k} {v:.2f} dB" for k, v in val.items()),
        "- command: `python scripts/train_shipped.py " + (f"--stage {stage} " if init else "")
        + (f"--recipe {recipe} " if init and recipe != REAL_RECIPE else "") + name + "`",
        *([f"- provenance: {PROVENANCE[name]}"] if name in PROVENANCE and stage != "video" else []),
        "- test results: synthetic test actors 19-24 `results/results.md` (`make results`); real faces "
        "`results/realfaces/results.md` (`make realfaces`); small faces `results/scales/` (`make scales`)"
        + ("; real video through encode + decode `results/stage3/whole-frames/` (`scripts/realvideo_check.py`)"
           if stage == "video" else ""),
        "",
    ]
    (weights / f"{name}.md").write_text("\n".join(lines))
    print(f"shipped {name}: {size}, {info['wall_seconds'] / 60:.0f} min")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *dict.fromkeys([*MODELS, *REAL_MODELS])], default=[], metavar="NAME",
                        help=f"models to train (default all of the stage: {', '.join(MODELS)}; stage real also "
                             f"{', '.join(NOT_SHIPPED)})")
    parser.add_argument("--stage", choices=["synthetic", "real", "video"], default="synthetic",
                        help="synthetic: from scratch on the corpus (stage 1); real: stage 1 tuned on the mixture; "
                             "video: the shipped models tuned on `make data3` with real video (stage 3)")
    parser.add_argument("--recipe", default=None,
                        help=f"stage-2 recipe (default {REAL_RECIPE}, the shipped one; 1 is kept for the record), "
                             f"or stage-3 recipe ({', '.join(VIDEO_RECIPES)}; default A)")
    parser.add_argument("--data", type=Path, help="main cache (default data/cache; stage video: data/s3/cache)")
    parser.add_argument("--runs", type=Path, help="run folders (default runs/shipped, runs/real for stage real)")
    parser.add_argument("--parallel", type=int, default=2,
                        help="runs at once (default 2; each gets cores / runs threads)")
    parser.add_argument("--ship", action="store_true", help="copy finished runs to mmsd/shipped/ with model cards")
    args = parser.parse_args()
    if args.stage == "video":
        args.recipe = args.recipe or "A"
        if args.recipe not in VIDEO_RECIPES:
            parser.error(f"stage-3 recipes: {', '.join(VIDEO_RECIPES)}")
        args.data = args.data or ROOT / S3 / "cache"
        folder = VIDEO_RECIPES[args.recipe][0]
    else:
        args.recipe = int(args.recipe or REAL_RECIPE)
        if args.recipe not in REAL_RECIPES:
            parser.error(f"stage-2 recipes: {', '.join(map(str, REAL_RECIPES))}")
        args.data = args.data or ROOT / "data" / "cache"
        folder = REAL_RECIPES[args.recipe][0] if args.stage == "real" else "shipped"
    table = MODELS if args.stage == "synthetic" else REAL_MODELS
    runs = args.runs or ROOT / "runs" / folder
    names = args.names or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"not in stage {args.stage}: {', '.join(unknown)}")
    if args.ship:
        from mmsd.models.weights import SHIPPED_DIR

        for name in names:
            if name not in NOT_SHIPPED:
                ship(name, runs, SHIPPED_DIR, args.recipe, "video" if args.stage == "video" else "real")
        return 0
    started = time.monotonic()
    threads = max(1, (os.cpu_count() or 1) // args.parallel)  # one per core: two runs, one thread each
    with ThreadPoolExecutor(args.parallel) as pool:
        codes = dict(zip(names, pool.map(lambda n: train(n, args.data, runs, args.stage, args.recipe, threads),
                                         names)))
    for name, code in codes.items():
        print(f"{name}: {'finished' if code == 0 else f'failed (exit {code}), see {runs}/{name}.log'}")
    print(f"{(time.monotonic() - started) / 60:.0f} min")
    return max(codes.values())


if __name__ == "__main__":
    sys.exit(main())
