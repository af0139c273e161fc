"""Train the shipped `small` models of issue 5 with one budget, resumably, two at a time.

    python scripts/train_shipped.py                      # all of them (runs/shipped/NAME)
    python scripts/train_shipped.py mmsd edvr            # some of them
    python scripts/train_shipped.py --ship               # copy finished ones to mmsd/shipped/ with model cards

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
    # issue 13's first step to real faces: the shipped mmsd tuned on a mixture with real-image content
    # (needs `mmsd content photos --frames 40` and `mmsd content leaves --clips 30 --frames 40` first)
    "mmsd-real": (["--init", "mmsd", "--mix", "data/photos:0.3", "data/leaves:0.1", "--iterations", "800",
                   "--lr", "1e-4"],
                  "MMSD-Net small (the shipped `mmsd`) tuned 800 iterations on a mixture: 60% the synthetic "
                  "corpus, 30% natural-photo clips, 10% dead leaves (`mmsd content`); for real faces"),
}


def train(name: str, data: Path, runs: Path) -> int:
    """Start or resume one run; the model's own arguments come after COMMON, so they win."""
    run = runs / name
    mmsd = [sys.executable, "-m", "mmsd.cli", "train"]
    if (run / "checkpoint.safetensors").exists():
        command = mmsd + ["--resume", str(run)]
    else:
        shutil.rmtree(run, ignore_errors=True)  # a start killed before its first checkpoint
        command = mmsd + ["--data", str(data), "--out", str(run), *COMMON, *MODELS[name][0]]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    run.parent.mkdir(parents=True, exist_ok=True)
    with open(runs / f"{name}.log", "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        return subprocess.call(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def ship(name: str, runs: Path, weights: Path) -> None:
    """mmsd/shipped/NAME.safetensors and NAME.md (package data) from a finished run."""
    from mmsd.weights import read_model

    source = runs / name / "model.safetensors"
    if not source.is_file():
        raise SystemExit(f"{name}: run not finished ({source} not written yet)")
    arch, config, tensors, info = read_model(source)
    train_cfg = info["train_config"]
    if info.get("iterations") != train_cfg["iterations"]:
        raise SystemExit(f"{name}: run not finished ({info.get('iterations')} of {train_cfg['iterations']} iterations)")
    from mmsd.models import build_model, complexity

    size = complexity(build_model(arch, config))
    weights.mkdir(exist_ok=True)
    shutil.copyfile(source, weights / f"{name}.safetensors")
    val = info.get("validation_face_psnr", {})
    mix = "".join(f", {share:.0%} of the samples from `{os.path.relpath(cache, ROOT)}`" for cache, share in
                  train_cfg.get("mix", []))
    init = f"- starts from: `{os.path.relpath(train_cfg['init'], ROOT)}`" if train_cfg.get("init") else None
    lines = [
        f"# {name}", "", MODELS[name][1] + ".", "",
        f"- network: `{arch}`, {size}",
        f"- config: `{json.dumps(config, sort_keys=True)}`",
        f"- data: `{os.path.relpath(info['data'], ROOT)}` (the default synthetic corpus, `mmsd synth` + `mmsd prepare`), "
        f"training actors {train_cfg['train_actors'][0]}-{train_cfg['train_actors'][-1]}, all CRFs mixed{mix}",
        *([init] if init else []),
        f"- training: {info['iterations']} iterations, batch {train_cfg['batch_size']}, LR patch "
        f"{train_cfg['patch']}x{train_cfg['patch']} ({train_cfg['crop_focus']}-centred crops), Adam "
        f"{tuple(train_cfg['betas'])}, lr {train_cfg['lr']:g} -> {train_cfg['lr_min']:g} ({train_cfg['lr_schedule']})"
        + (f", cGAN from iteration {train_cfg['adv_start']}" if train_cfg["gan"] else ""),
        f"- wall time on the 2-core CPU (one thread, beside a second run): {info['wall_seconds'] / 60:.0f} min",
        "- validation face PSNR (held-out clips of the training actors): "
        + ", ".join(f"{k} {v:.2f} dB" for k, v in val.items()),
        "- command: `python scripts/train_shipped.py " + name + "`",
        "- test results (actors 19-24): `results/results.md`, regenerated by `make results`",
        "",
    ]
    (weights / f"{name}.md").write_text("\n".join(lines))
    print(f"shipped {name}: {size}, {info['wall_seconds'] / 60:.0f} min")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *MODELS], default=[], metavar="NAME",
                        help=f"models to train (default all: {', '.join(MODELS)})")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "cache")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "shipped")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (default 2, one per core)")
    parser.add_argument("--ship", action="store_true", help="copy finished runs to mmsd/shipped/ with model cards")
    args = parser.parse_args()
    names = args.names or list(MODELS)
    if args.ship:
        from mmsd.weights import SHIPPED_DIR

        for name in names:
            ship(name, args.runs, SHIPPED_DIR)
        return 0
    started = time.monotonic()
    with ThreadPoolExecutor(args.parallel) as pool:
        codes = dict(zip(names, pool.map(lambda n: train(n, args.data, args.runs), names)))
    for name, code in codes.items():
        print(f"{name}: {'finished' if code == 0 else f'failed (exit {code}), see {args.runs}/{name}.log'}")
    print(f"{(time.monotonic() - started) / 60:.0f} min")
    return max(codes.values())


if __name__ == "__main__":
    sys.exit(main())
