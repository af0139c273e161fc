"""The paper's claim at equal compute (issue 36): MMSD-Net grown to EDVR small's MACs against EDVR small,
three seeds each, the same data, recipe and iterations, resumably.

    python scripts/claim.py train                 # every (model, seed) chain, then the experiment, two at a time
    python scripts/claim.py train edvr:1 mmsd-hq:1  # some chains
    python scripts/claim.py train edvr:long mmsd-hq:long  # the learning-curve runs (LONG_ITERATIONS)
    python scripts/claim.py status                # where each chain is, and its wall time so far
    python scripts/claim.py evaluate              # the finished chains not yet scored, on the synthetic test actors
    python scripts/claim.py evaluate --shipped    # ... and the shipped edvr and mmsd, for reference
    python scripts/claim.py report                # results/claim.md from the scores kept

A chain is stage 1 (`train_shipped.py`'s synthetic recipe: 4,000 iterations from random weights on the
synthetic corpus, `data/cache`) followed by the real-video stage (stage 3, `train_shipped.py`'s recipe D:
4,000 iterations on `make data3`'s mixture with 30% real talking-head video), as the issue asks; stage 2 (the
stills' recipe of the shipped models) is left out of both, so neither model sees data the other does not.
The MMSD-Nets switch to normalised MFCC and voice variants at the real-video stage as the shipped ones do
at stage 2. The seed changes the weights' initialisation and the sampling of every stage.

`mmsd-hq` is the MMSD-Net grown to EDVR small's 15.25 GMACs per 120x72 frame (the project's counter,
`mmsd models`): the paper's reconstruction depth (10 blocks) and trunk (4 blocks), two extraction blocks,
width 48 (the paper's 64 would double EDVR's MACs), a 32-channel upsampler and EDVR small's 4 offset groups
(`HQ`). EDVR small's stage 1 for seed 0 is the one shipped up to commit STAGE1_COMMIT (this recipe, seed 0,
trained on 2026-11-30 with that day's code), read from git rather than trained again.

The experiment (`EXPERIMENTS`, seed 0, after the seeds): `mmsd-hq-image`, mmsd-hq without its audio and
emotion branches at the same 15.2 GMACs, which says whether MMSD-Net's lead over EDVR is its video design or
the modalities EDVR lacks (the report compares it with both, face and mouth).

Runs go to runs/claim/NAME-sSEED/{stage1,stage3}; each stage keeps snapshots every 1,000 iterations. The
learning curves come from runs/claim/NAME-s0/long: stage 1 of seed 0 on a 12,000-iteration cosine (3x
the shipped budget), its snapshots scored by scripts/curves.py.
Scores (per test clip and CRF, the mean face and mouth PSNR over FRAMES_PER_CLIP frames of the clip) are
kept in results/claim/scores/LABEL.json; `report` pairs the seeds and bootstraps the test clips
(`mmsd.evaluation.stats.clip_bootstrap`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_shipped  # noqa: E402  (the shipped recipes, one source for both)

ROOT = train_shipped.ROOT
RUNS = ROOT / "runs" / "claim"
SEEDS = (0, 1, 2)
HQ = ["channels=48", "recon_blocks=10", "trunk_blocks=4", "extract_blocks=2", "upsample_channels=32",
      "deform_groups=4"]
# name -> (stage-1 arguments after train_shipped.COMMON, real-video-stage arguments after recipe D's)
MODELS: dict[str, tuple[list[str], list[str]]] = {
    "edvr": (["--model", "edvr"], []),
    "mmsd-hq": (["--model", "mmsd", "--set", *HQ], train_shipped.REAL_AUDIO),
}
# the experiment that says which part decides (seed 0, after the seeds): mmsd-hq without its audio and emotion
# branches, 15.17 GMACs (the branches are 0.5% of the MACs): is MMSD-Net ahead of EDVR by its video design
# (alignment at LR, fusion, reconstruction) or by the two modalities EDVR does not have?
EXPERIMENTS: dict[str, tuple[list[str], list[str]]] = {
    "mmsd-hq-image": (["--model", "mmsd", "--set", *HQ, "audio=false", "emotion=false"], []),
}
CHAINS = MODELS | EXPERIMENTS
STAGE3_RECIPE = "D"
LONG_ITERATIONS = 12_000  # the learning-curve run: stage 1 of seed 0 on a 3x longer cosine (NAME:long)
RESULTS = ROOT / "results" / "claim"
FRAMES_PER_CLIP = 4
CRFS = (15, 32, 40)
SHIPPED_REFERENCE = {"edvr-shipped": "edvr", "mmsd-shipped": "mmsd"}  # label -> shipped model (stage 2)


def stage_arguments(name: str, seed: int, stage: str, data: Path, out: Path, init: Path | None) -> list[str]:
    """`mmsd train` arguments of one stage of one chain (the seed last, so it wins)."""
    stage1, stage3 = CHAINS[name]
    if stage in ("stage1", "long"):
        longer = ["--iterations", str(LONG_ITERATIONS)] if stage == "long" else []
        return ["--data", str(data), "--out", str(out), *train_shipped.COMMON, *stage1, "--snapshot-every", "1000",
                *longer, "--seed", str(seed)]
    recipe = train_shipped.VIDEO_RECIPES[STAGE3_RECIPE][1]
    return ["--data", str(data), "--out", str(out), "--init", str(init), *recipe, *stage3, "--seed", str(seed)]


def chain_folder(name: str, seed: int) -> Path:
    return RUNS / f"{name}-s{seed}"


def finished(run: Path) -> bool:
    return (run / "model.safetensors").is_file()


def run_stage(name: str, seed: int, stage: str, threads: int) -> int:
    """Start or resume one stage of one chain; 0 when its model is written."""
    folder = chain_folder(name, seed)
    run = folder / stage
    if finished(run):
        return 0
    if stage == "stage1" and name == "edvr" and seed == 0:  # the shipped stage 1: this recipe, seed 0
        train_shipped.stage1_weights("edvr", run / "model.safetensors")
        return 0
    init = folder / "stage1" / "model.safetensors" if stage == "stage3" else None
    data = ROOT / train_shipped.S3 / "cache" if stage == "stage3" else ROOT / "data" / "cache"
    mmsd = [sys.executable, "-m", "mmsd.cli", "train"]
    if (run / "checkpoint.safetensors").exists():
        command = mmsd + ["--resume", str(run)]
    else:
        shutil.rmtree(run, ignore_errors=True)  # a start killed before its first checkpoint
        command = mmsd + stage_arguments(name, seed, stage, data, run, init)
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{stage}.log", "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        return subprocess.call(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_chain(name: str, seed: int | str, threads: int) -> int:
    if seed == "long":
        return run_stage(name, 0, "long", threads)
    for stage in ("stage1", "stage3"):
        code = run_stage(name, seed, stage, threads)
        if code:
            return code
    return 0


def parse_chain(spec: str) -> tuple[str, int | str]:
    """NAME:SEED, or NAME:long (the learning-curve run)."""
    name, _, seed = spec.partition(":")
    if name not in CHAINS or not (seed.isdigit() or seed == "long"):
        raise argparse.ArgumentTypeError(f"NAME:SEED or NAME:long with NAME in {', '.join(CHAINS)}, got {spec!r}")
    return name, int(seed) if seed.isdigit() else seed


def status() -> None:
    from mmsd.models.weights import read_model

    for seed in SEEDS:
        for name in CHAINS if seed == 0 else MODELS:
            parts = []
            for stage in ("stage1", "stage3", "long")[:3 if seed == 0 and name in MODELS else 2]:
                run = chain_folder(name, seed) / stage
                info = run / "run.json"
                if finished(run) and not info.is_file():
                    parts.append(f"{stage} from git")
                    continue
                if not info.is_file():
                    parts.append(f"{stage} not started")
                    continue
                total = json.loads(info.read_text())["train_config"]["iterations"]
                if finished(run):
                    wall = read_model(run / "model.safetensors")[3]["wall_seconds"] / 60
                    parts.append(f"{stage} finished ({total} it, {wall:.0f} min)")
                    continue
                log = (run / "log.csv").read_text().split() if (run / "log.csv").is_file() else []
                done = log[-1].split(",")[0] if len(log) > 1 else "0"
                parts.append(f"{stage} {done}/{total} it")
            print(f"{name} seed {seed}: " + "; ".join(parts))


def chain_label(name: str, seed: int) -> str:
    return f"{name}-s{seed}"


def evaluate_models(labelled: dict[str, str]) -> None:
    """Score models (label -> weights path or shipped name) on the test actors, one at a time; write one
    scores file each as soon as it is scored (an evaluation killed midway keeps the models it finished)."""
    from mmsd.evaluation.protocol import FrameSubset, evaluate, load_models
    from mmsd.evaluation.tables import group_means
    from mmsd.models.weights import find_model, read_model

    (RESULTS / "scores").mkdir(parents=True, exist_ok=True)
    for label, target in labelled.items():
        models = load_models([f"{label}={target}"])
        rows = evaluate(ROOT / "data" / "cache", models, subset=FrameSubset(per_clip=FRAMES_PER_CLIP))
        means = group_means(rows, ("model", "crf", "clip"), ("face_psnr", "mouth_psnr"))  # per clip: its frames' mean
        scores = {str(crf): {clip: [m["face_psnr"], m["mouth_psnr"]]
                             for (model, c, clip), m in sorted(means.items()) if model == label and c == crf}
                  for crf in CRFS}
        info = read_model(find_model(target) or Path(target))[3]
        record = {"model": target if not Path(target).is_absolute() else os.path.relpath(target, ROOT),
                  "iterations": info.get("iterations"), "wall_seconds": info.get("wall_seconds"),
                  "frames_per_clip": FRAMES_PER_CLIP, "scores": scores}
        (RESULTS / "scores" / f"{label}.json").write_text(json.dumps(record, indent=1))
        print(f"{label}: " + ", ".join(f"CRF {crf} {np.mean([v[0] for v in scores[str(crf)].values()]):.2f} dB"
                                       for crf in CRFS))


def load_scores(label: str) -> dict | None:
    path = RESULTS / "scores" / f"{label}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def mean_face(runs: list[dict], crf: int) -> float:
    """Mean face PSNR over the test clips at `crf`, averaged over runs (seeds)."""
    return float(np.mean([np.mean([v[0] for v in run["scores"][str(crf)].values()]) for run in runs]))


def compare(a: list[dict], b: list[dict], crf: int, metric: int):
    """clip_bootstrap of A - B over the test clips, seeds paired in order (`metric` 0 face, 1 mouth)."""
    from mmsd.evaluation.stats import clip_bootstrap

    clips = sorted(a[0]["scores"][str(crf)])
    rows = [[x["scores"][str(crf)][c][metric] - y["scores"][str(crf)][c][metric] for c in clips]
            for x, y in zip(a, b)]
    return clip_bootstrap(np.array(rows))


def report() -> None:
    """results/claim.md (and .json): each model's mean per seed, and mmsd-hq - edvr with 95% intervals."""
    lines = ["# The paper's claim at equal compute (issue 36)", "",
             "Face and mouth PSNR (dB) on the synthetic test actors 19-24 (`data/cache`, 180 clips per CRF, "
             f"{FRAMES_PER_CLIP} frames per clip); differences with a 95% bootstrap interval over test clips "
             "(`mmsd.evaluation.stats.clip_bootstrap`, seeds paired and averaged). Made by `python scripts/claim.py "
             "evaluate [--shipped]` then `python scripts/claim.py report`; the campaign: docs/claim.md.", ""]
    record: dict = {}
    pairs = [(load_scores(chain_label("mmsd-hq", s)), load_scores(chain_label("edvr", s))) for s in SEEDS]
    pairs = [(a, b) for a, b in pairs if a and b]
    groups = [("mmsd-hq - edvr, equal compute (stage 1 + real-video stage)", pairs)]
    image = load_scores(chain_label("mmsd-hq-image", 0))
    seed0 = [(load_scores(chain_label("mmsd-hq", 0)), load_scores(chain_label("edvr", 0)))]
    if image and all(seed0[0]):
        groups += [("mmsd-hq - mmsd-hq-image: what audio and emotion add at equal compute (seed 0)", [(seed0[0][0], image)]),
                   ("mmsd-hq-image - edvr: MMSD-Net's video design alone against EDVR (seed 0)", [(image, seed0[0][1])])]
    shipped = [load_scores(label) for label in SHIPPED_REFERENCE]
    if all(shipped):
        groups.append(("shipped mmsd - shipped edvr (stages 1 + 2, one seed; 4.44 against 15.25 GMACs)",
                       [(shipped[1], shipped[0])]))
    for title, group in groups:
        lines += [f"## {title}", ""]
        if not group:
            lines += ["No seed has both models finished yet (`python scripts/claim.py status`).", ""]
            continue
        lines += [f"{len(group)} seed pair(s).", "",
                  "| CRF | face PSNR A | face PSNR B | A - B face [95%] | A - B mouth [95%] |", "|---|---|---|---|---|"]
        for crf in CRFS:
            a, b = [x for x, _ in group], [y for _, y in group]
            face, mouth = compare(a, b, crf, 0), compare(a, b, crf, 1)
            lines.append(f"| {crf} | {mean_face(a, crf):.2f} | {mean_face(b, crf):.2f} | {face} | {mouth} |")
            record.setdefault(title, {})[crf] = {"face": dataclasses.asdict(face), "mouth": dataclasses.asdict(mouth)}
        lines.append("")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS.parent / "claim.md").write_text("\n".join(lines))
    (RESULTS.parent / "claim.json").write_text(json.dumps(record, indent=1))
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train chains (default all, seed by seed)")
    train.add_argument("chains", nargs="*", type=parse_chain, metavar="NAME:SEED")
    train.add_argument("--parallel", type=int, default=2, help="chains at once (default 2, one thread each)")
    sub.add_parser("status", help="where each chain is")
    scoring = sub.add_parser("evaluate", help="score the finished chains on the test actors")
    scoring.add_argument("--shipped", action="store_true", help="also the shipped edvr and mmsd, for reference")
    scoring.add_argument("--again", action="store_true", help="also the models already scored")
    sub.add_parser("report", help="results/claim.md from the scores kept")
    args = parser.parse_args()
    if args.command == "status":
        status()
        return 0
    if args.command == "report":
        report()
        return 0
    if args.command == "evaluate":
        labelled = {chain_label(name, seed): str(chain_folder(name, seed) / "stage3" / "model.safetensors")
                    for seed in SEEDS for name in CHAINS if finished(chain_folder(name, seed) / "stage3")}
        if args.shipped:
            labelled |= SHIPPED_REFERENCE
        if not args.again:
            labelled = {label: target for label, target in labelled.items() if load_scores(label) is None}
        if not labelled:
            raise SystemExit("nothing to evaluate: every finished chain is scored (--again scores them anew)")
        evaluate_models(labelled)
        return 0
    chains = args.chains or [*((name, seed) for seed in SEEDS for name in MODELS),
                             *((name, 0) for name in EXPERIMENTS)]
    threads = max(1, (os.cpu_count() or 1) // args.parallel)
    started = time.monotonic()
    with ThreadPoolExecutor(args.parallel) as pool:
        codes = list(pool.map(lambda chain: run_chain(*chain, threads), chains))
    for (name, seed), code in zip(chains, codes):
        print(f"{name} seed {seed}: {'finished' if code == 0 else f'failed (exit {code})'}")
    print(f"{(time.monotonic() - started) / 60:.0f} min")
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
