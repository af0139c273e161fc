"""How much bf16 inference moves the face PSNR of a soft decoder (issue 12), on synthesized clips.

    python scripts/bf16_quality.py [--model mmsd] [--clips 2] [--frames 24] [--crf 40] [--out DIR]

Synthesizes test-actor clips (actor 24, never in training, a sentence not in the training
statements; one emotion state per clip), cuts the paper's 480x288 face crop as `mmsd demo`
does, sends it 4x down at x264 `--crf` and restores the first `--frames` frames with the
`Restorer` in fp32 and in bf16 (autocast; on a CPU without fast bf16 it is emulated, slowly,
but computes the same). Prints, per clip and over all frames: face PSNR against the original
in each precision, their difference, and the PSNR between the two restorations.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from mmsd import emotions
from mmsd.commands.demo import DEMO_TEXT, _make_original
from mmsd.errors import MmsdWarning
from mmsd.evaluation import metrics
from mmsd.media import codec, sideinfo
from mmsd.media.audio import MfccConfig, iter_mfcc
from mmsd.restore.restorer import Restorer
from mmsd.sender.encode import encode_file

STATES = ("happy-strong", "angry-strong", "sad-normal", "neutral")


def restore(restorer: Restorer, low: Path, frames: int) -> np.ndarray:
    """The first `frames` restored frames of `low`: (T, H, W, 3) uint8."""
    info = codec.probe(low)
    lr = list(itertools.islice(codec.read_frames(low), frames))
    mfcc = None
    if restorer.uses_audio:
        mfcc = list(itertools.islice(iter_mfcc(codec.iter_audio(low, MfccConfig.sample_rate), info.fps,
                                               restorer.mfcc_config), len(lr)))
    side = sideinfo.from_metadata(info.metadata)
    return np.stack(list(restorer.restore_frames(lr, mfcc=mfcc, emotion=side.states())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mmsd")
    parser.add_argument("--clips", type=int, default=2, help=f"clips, one emotion state each (at most {len(STATES)})")
    parser.add_argument("--frames", type=int, default=24, help="frames restored per clip")
    parser.add_argument("--crf", type=float, default=40)
    parser.add_argument("--out", type=Path, help="keep the clips here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MmsdWarning)  # bf16 where it is slow: measured on purpose
        restorers = {name: Restorer(args.model, precision=name) for name in ("fp32", "bf16")}
    folder = args.out or Path(tempfile.mkdtemp(prefix="mmsd-bf16-"))
    scores: dict[str, list[float]] = {"fp32": [], "bf16": []}
    agreement = []
    for state_name in STATES[: args.clips]:
        state = emotions.parse(state_name)
        clip = folder / state.name
        clip.mkdir(parents=True, exist_ok=True)
        original, boxes = _make_original(clip, 24, state)
        low = clip / "low.mp4"
        encode_file(original, low, side=sideinfo.SideInfo(scale=4, segments=((0, state.id),)), crf=args.crf,
                    progress=False)
        target = np.stack(list(itertools.islice(codec.read_frames(original), args.frames)))
        restored = {}
        for name, restorer in restorers.items():
            started = time.perf_counter()
            restored[name] = restore(restorer, low, args.frames)
            seconds = time.perf_counter() - started
            psnr = [metrics.psnr(metrics.region(a, box), metrics.region(b, box))
                    for a, b, box in zip(restored[name], target, boxes)]
            scores[name] += psnr
            print(f"{state.name:>14} {name}: face PSNR {np.mean(psnr):.4f} dB over {len(psnr)} frames "
                  f"({seconds / len(psnr) * 1000:.0f} ms/frame)", flush=True)
        agreement.append(metrics.psnr(restored["bf16"], restored["fp32"]))
        moved = np.mean(scores["bf16"][-len(target):]) - np.mean(scores["fp32"][-len(target):])
        print(f"{state.name:>14} bf16 - fp32: {moved:+.4f} dB; bf16 vs fp32 restoration: {agreement[-1]:.1f} dB PSNR",
              flush=True)
    fp32, bf16 = np.mean(scores["fp32"]), np.mean(scores["bf16"])
    print(f"all {len(scores['fp32'])} frames: face PSNR fp32 {fp32:.4f} dB, bf16 {bf16:.4f} dB, "
          f"difference {bf16 - fp32:+.4f} dB (target |difference| <= 0.02); bf16 vs fp32 restorations "
          f"{min(agreement):.1f} dB PSNR at worst")
    return 0 if abs(bf16 - fp32) <= 0.02 else 1


if __name__ == "__main__":
    sys.exit(main())
