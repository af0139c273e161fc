"""The paper's claim at equal compute (issue 36): MMSD-Net grown to EDVR small's MACs against EDVR small,
three seeds each, the same data, recipe and iterations, resumably.

    python scripts/claim.py train                 # every (model, seed) chain, two at a time, one thread each
    python scripts/claim.py train edvr:1 mmsd-hq:1  # some chains
    python scripts/claim.py status                # where each chain is, and its wall time so far

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

Runs go to runs/claim/NAME-sSEED/{stage1,stage3}; each stage keeps snapshots every 1,000 iterations.
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
STAGE3_RECIPE = "D"


def stage_arguments(name: str, seed: int, stage: str, data: Path, out: Path, init: Path | None) -> list[str]:
    """`mmsd train` arguments of one stage of one chain (the seed last, so it wins)."""
    stage1, stage3 = MODELS[name]
    if stage == "stage1":
        return ["--data", str(data), "--out", str(out), *train_shipped.COMMON, *stage1, "--snapshot-every", "1000",
                "--seed", str(seed)]
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
    data = ROOT / "data" / "cache" if stage == "stage1" else ROOT / train_shipped.S3 / "cache"
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


def run_chain(name: str, seed: int, threads: int) -> int:
    for stage in ("stage1", "stage3"):
        code = run_stage(name, seed, stage, threads)
        if code:
            return code
    return 0


def parse_chain(spec: str) -> tuple[str, int]:
    name, _, seed = spec.partition(":")
    if name not in MODELS or not seed.isdigit():
        raise argparse.ArgumentTypeError(f"NAME:SEED with NAME in {', '.join(MODELS)}, got {spec!r}")
    return name, int(seed)


def status() -> None:
    from mmsd.models.weights import read_model

    for seed in SEEDS:
        for name in MODELS:
            parts = []
            for stage in ("stage1", "stage3"):
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train chains (default all, seed by seed)")
    train.add_argument("chains", nargs="*", type=parse_chain, metavar="NAME:SEED")
    train.add_argument("--parallel", type=int, default=2, help="chains at once (default 2, one thread each)")
    sub.add_parser("status", help="where each chain is")
    args = parser.parse_args()
    if args.command == "status":
        status()
        return 0
    chains = args.chains or [(name, seed) for seed in SEEDS for name in MODELS]
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
