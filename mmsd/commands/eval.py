"""`mmsd eval`: the paper's evaluation (Sec. 4.2) on the test actors of a prepared cache.

The protocol (which frames, which models, what score) is `mmsd.evaluation.protocol`; the tables
`mmsd.evaluation.tables`; the CRF sweep and the comparison grids `mmsd.evaluation.sweeps`.

Outputs in ``--out``: per_frame.csv; table1, ablation and emotion-gain tables as
Markdown + JSON; results.md (all tables with the protocol); eval.json (protocol,
models, timing); PNG figures (comparison grids, rate-quality plot); with ``--bd-rate``
a CRF sweep (rate_sweep.csv) and BD-rates (bdrate.md/json, see `mmsd.evaluation.bdrate`).
``--precision`` sets the networks' arithmetic (`mmsd.models.precision`: auto is fp32 on a CPU
without fast bf16); eval.json records it per model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mmsd.errors import MmsdError
from mmsd.evaluation.bdrate import Curve
from mmsd.evaluation.protocol import (BICUBIC, DEFAULT_FRAMES_PER_CLIP, EvalModel, FrameSubset, evaluate, load_models,
                                      swapped_audio, test_actors)
from mmsd.evaluation.sweeps import (DEFAULT_SWEEP_CLIP_STEP, SWEEP_CRFS, figure_grid, figure_picks, rate_sweep,
                                    rd_curves)
from mmsd.evaluation.tables import (ablation_table, bd_table, crfs_of, emotion_gain, group_means, mean_kbps,
                                    protocol_text, table1, write_rows, write_table)
from mmsd.media.fileio import atomic_write_text
from mmsd.models.precision import add_argument as add_precision_argument


def _actor_list(text: str) -> tuple[int, ...]:
    """'19-24' or '19,21,23-24' -> actor numbers."""
    actors: list[int] = []
    for item in filter(None, text.replace(" ", "").split(",")):
        low, sep, high = item.partition("-")
        try:
            actors.extend(range(int(low), int(high) + 1) if sep else [int(low)])
        except ValueError:
            raise argparse.ArgumentTypeError(f"actors must look like '19-24' or '19,21', got {text!r}") from None
    return tuple(actors)


def _pair(text: str) -> tuple[str, str]:
    model, sep, baseline = text.partition(":")
    if not sep or not model or not baseline:
        raise argparse.ArgumentTypeError(f"expected MODEL:BASELINE, got {text!r}")
    return model, baseline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="cache written by `mmsd prepare`")
    parser.add_argument("--models", nargs="+", required=True, metavar="[LABEL=]NAME|PATH",
                        help="'bicubic', a model name (`mmsd models`) or a weights file")
    parser.add_argument("--out", type=Path, required=True, help="folder for tables, figures and per-frame scores")
    parser.add_argument("--actors", type=_actor_list, default=None, help="actors to evaluate (default: test 19-24)")
    parser.add_argument("--clips", nargs="+", metavar="KEY",
                        help="score only these clips of the actors (cache keys, e.g. Actor_20/01-01-01-01-02-01-20; "
                             "tables only: no figures, no rate sweep)")
    parser.add_argument("--crf", type=int, nargs="+", dest="crfs", help="CRFs of the cache to use (default: all)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--frames-per-clip", type=int, default=DEFAULT_FRAMES_PER_CLIP, metavar="N",
                       help=f"evaluate N frames spread evenly over each clip (default {DEFAULT_FRAMES_PER_CLIP}: "
                            "the middle frame)")
    which.add_argument("--frame-step", type=int, metavar="K", help="instead: every K-th frame with a stored HR frame")
    parser.add_argument("--batch", type=int, default=8, help="frames per forward pass (default 8)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    parser.add_argument("--table1", nargs="+", metavar="LABEL", help="rows of Table 1 (default: every model)")
    parser.add_argument("--ablation", nargs="+", metavar="LABEL", help="rows of the ablation (default: every model)")
    parser.add_argument("--gain", type=_pair, nargs="+", default=[], metavar="MODEL:BASELINE",
                        help="per-emotion gain tables, e.g. mmsd:edvr")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG comparison grids")
    parser.add_argument("--figure-crf", type=int, default=None, help="CRF of the grids (default 32, else the middle)")
    parser.add_argument("--figure-rows", type=int, default=4, help="clips per grid (default 4)")
    parser.add_argument("--bd-rate", action="store_true", help="also run the CRF sweep and BD-rates")
    parser.add_argument("--sweep-crf", type=int, nargs="+", default=list(SWEEP_CRFS), help="CRFs of the sweep")
    parser.add_argument("--sweep-clip-step", type=int, default=DEFAULT_SWEEP_CLIP_STEP, metavar="K",
                        help=f"sweep every K-th test clip (default {DEFAULT_SWEEP_CLIP_STEP}), with the tables' frames")
    parser.add_argument("--bd-anchor", default=BICUBIC, help="anchor of the BD-rates (default bicubic)")
    parser.add_argument("--swap-audio", action="store_true",
                        help="mismatched-audio test: each clip gets the audio of the same sentence and emotion "
                             "spoken by the next actor (no figures, no rate sweep)")
    add_precision_argument(parser, inference=True)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _write_figures(out: Path, index, models: Sequence[EvalModel], actors: Sequence[int], crf: int | None,
                   rows: int) -> list[str]:
    """fig6_one_actor.png and fig7_actors.png at `crf` (default 32, else the cache's middle CRF)."""
    from mmsd.evaluation.figures import write_png

    crf = crf or (32 if 32 in index.crfs else index.crfs[len(index.crfs) // 2])
    test_clips = index.select(actors)
    names = []
    for stem, one_actor in (("fig6_one_actor", True), ("fig7_actors", False)):
        picks = figure_picks(test_clips, rows, one_actor=one_actor)
        write_png(out / f"{stem}.png", figure_grid(index.root, models, picks, crf))
        names.append(f"{stem}.png")
    return names


def run(args: argparse.Namespace) -> int:
    from mmsd.data.dataset import ClipIndex
    from mmsd.evaluation.figures import rate_quality_plot, write_png

    subset = FrameSubset(per_clip=None, step=args.frame_step) if args.frame_step else FrameSubset(args.frames_per_clip)
    if args.batch < 1 or args.sweep_clip_step < 1:
        raise MmsdError(f"--batch and --sweep-clip-step must be >= 1, got {args.batch} and {args.sweep_clip_step}")
    started = time.monotonic()
    index = ClipIndex(args.data)
    models = load_models(args.models, precision=args.precision)
    labels = [m.label for m in models]
    for model, baseline in args.gain:
        if model not in labels or baseline not in labels:
            raise MmsdError(f"--gain {model}:{baseline} names a model not in --models ({', '.join(labels)})")
    actors = args.actors or test_actors()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress

    # 1. per-frame scores and the tables
    audio_from = swapped_audio(index.select(actors)) if args.swap_audio else None
    if (args.swap_audio or args.clips) and (args.bd_rate or not args.no_figures):
        args.bd_rate, args.no_figures = False, True  # both would restore other clips, or with the clips' own audio
    rows = evaluate(args.data, models, actors=actors, keys=args.clips, crfs=args.crfs, subset=subset,
                    batch_size=args.batch, workers=args.workers, audio_from=audio_from, progress=progress)
    if not rows:
        raise MmsdError(f"{args.data}: no frames to evaluate for actors {list(actors)}")
    eval_seconds = time.monotonic() - started
    restore_seconds = {m.label: round(m.seconds, 1) for m in models}
    write_rows(out / "per_frame.csv", rows)
    hr_step = int(index.settings.get("hr_step", 1))
    protocol = protocol_text(args.data, rows, subset, hr_step)
    if audio_from is not None:
        protocol += (f" Mismatched audio: {len(audio_from)} of the {len({r.clip for r in rows})} clips heard the "
                     "same sentence and emotion spoken by the next actor instead of their own audio.")
    tables = {"table1": table1(rows, args.table1, protocol), "ablation": ablation_table(rows, args.ablation, protocol)}
    for model, baseline in args.gain:
        tables[f"emotion_gain_{model}_vs_{baseline}"] = emotion_gain(rows, model, baseline)

    # 2. comparison grids
    figures = [] if args.no_figures else _write_figures(out, index, models, actors, args.figure_crf, args.figure_rows)

    # 3. rate-quality: over the CRF sweep with BD-rates, else at the cache's CRFs
    sweep = {}
    if args.bd_rate:
        sweep_rows = rate_sweep(args.data, models, crfs=args.sweep_crf, actors=actors, subset=subset,
                                clip_step=args.sweep_clip_step, batch_size=args.batch, progress=progress)
        write_rows(out / "rate_sweep.csv", sweep_rows)
        curves = rd_curves(sweep_rows, models, {c.key: c for c in index.clips})
        tables["bdrate"] = bd_table(curves, args.bd_anchor, list(args.gain))
        sweep = {label: {"kbps": list(c.kbps), "face_psnr": list(c.psnr)} for label, c in curves.items()}
        title = f"Rate-quality over the CRF sweep (CRFs {', '.join(map(str, args.sweep_crf))})"
    else:
        kbps, means, crfs = mean_kbps(rows), group_means(rows, ("model", "crf")), crfs_of(rows)
        curves = {label: Curve.of([kbps[c] for c in crfs], [means[(label, c)]["face_psnr"] for c in crfs])
                  for label in labels}
        title = "Rate-quality at the cache CRFs (side-information bits not included)"
    write_png(out / "rate_quality.png", rate_quality_plot({label: (c.kbps, c.psnr) for label, c in curves.items()},
                                                          title=title, x_label="LR video kbps (log scale)",
                                                          y_label="face PSNR (dB)"))
    figures.append("rate_quality.png")

    # 4. files
    for stem, table in tables.items():
        write_table(out, stem, table)
    command = "mmsd " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["eval"] else "mmsd eval (from Python)"
    markdown = "\n".join(t.markdown() for t in tables.values())
    atomic_write_text(out / "results.md", f"Made by `{command}`.\n\n{markdown}")
    summary = {
        "command": command, "cache": str(args.data), "actors": list(actors), "crfs": crfs_of(rows),
        "subset": dataclasses.asdict(subset),
        "hr_step": hr_step, "frames_per_model": len(rows) // len(models), "protocol": protocol,
        "models": [{"label": m.label, "arch": m.arch, "source": m.source, "config": m.config,
                    "uses_emotion": m.uses_emotion, "precision": m.precision,
                    "eval_restore_seconds": restore_seconds[m.label]}
                   for m in models],
        "eval_seconds": round(eval_seconds, 1), "total_seconds": round(time.monotonic() - started, 1),
        "tables": sorted(tables), "figures": figures, "rate_sweep": sweep,
    }
    atomic_write_text(out / "eval.json", json.dumps(summary, indent=1) + "\n")
    print(tables["table1"].markdown())
    print(f"mmsd eval: {len(rows)} frame scores in {eval_seconds:.0f} s; wrote {out}")
    return 0
