"""Score models on the real-video validation clips as a user gets them (issue 39): whole frames of each
clip sent by `mmsd encode --crf`, restored as `mmsd decode` restores them, face PSNR on the per-frame
face boxes (Haar, smoothed) of every `--frame-step`-th frame, per clip, against Bicubic.

    python scripts/realvideo_check.py                                   # the shipped models, CRF 32
    python scripts/realvideo_check.py --models bicubic mmsd-fast new=runs/x/model.safetensors --crf 15 32 40

The clips (`mmsd.data.realvideo`, validation split; never trained on): franck_late (12 s of franck from its
160th second: a seen person, unseen frames), single_face (a seen person, another clip, 2.4 s) and
wolfgang (an unseen person, 19.7 s). Each is written near-losslessly (x264 CRF 6) with its sound under
runs/realvideo-calls/ (kept between runs) and sent from there. Writes OUT/realvideo.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from personal_check import ROOT, restored, score_sent  # scripts/ is on sys.path when this file runs

from mmsd.models.precision import INFERENCE_PRECISIONS

# clip -> (seconds from the validation source's first frame, length in seconds (None = to the end))
CALLS = {"franck_late": (16.0, 12.0), "single_face": (0.0, None), "wolfgang": (0.0, None)}
DEFAULT_MODELS = ("bicubic", "mmsd-fast", "mmsd", "edvr", "dbpn")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help="names or NAME=PATH (default: bicubic and the shipped mmsd-fast, mmsd, edvr, dbpn)")
    parser.add_argument("--crf", type=int, nargs="+", default=[32], help="CRFs (default 32)")
    parser.add_argument("--frame-step", type=int, default=2, help="score every k-th frame (default 2)")
    parser.add_argument("--clips", nargs="+", choices=list(CALLS), default=list(CALLS))
    parser.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="auto",
                        help="arithmetic of the networks, as `mmsd decode --precision` (default auto)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "realvideo")
    parser.add_argument("--figure", action="store_true",
                        help="also OUT/realvideo.png: the face of each clip's middle frame, per model, at the first CRF")
    args = parser.parse_args()

    from mmsd.data import realvideo
    from mmsd.evaluation.bench import cpu_name

    realvideo.check("val")
    models = dict(m.split("=", 1) if "=" in m else (m, m) for m in args.models)
    if "bicubic" not in models:
        models = {"bicubic": "bicubic", **models}
    calls_dir = ROOT / "runs" / "realvideo-calls"
    calls_dir.mkdir(parents=True, exist_ok=True)
    sources = {s.name: s for s in realvideo.sources("val")}
    started = time.monotonic()
    table: dict[str, dict] = {}
    shown = []
    for clip in args.clips:
        offset, seconds = CALLS[clip]
        video, truth, boxes = realvideo.write_call(sources[clip], calls_dir, seconds=seconds, offset_seconds=offset)
        psnr = score_sent(calls_dir, models, [(video, truth, boxes)], crfs=tuple(args.crf),
                          frame_step=args.frame_step, precision=args.precision)
        table[clip] = {"frames": len(truth), "size": list(truth.shape[2:0:-1]),
                       "face_height": float(np.median(boxes[:, 3] - boxes[:, 1])), "face_psnr": psnr}
        print(clip, json.dumps(psnr), file=sys.stderr)
        shown.append((clip, video, truth, boxes))

    args.out.mkdir(parents=True, exist_ok=True)
    record = {"protocol": __doc__.split("\n\n")[0].replace("\n", " "), "crfs": args.crf,
              "frame_step": args.frame_step, "models": models, "precision": args.precision, "cpu": cpu_name(),
              "seconds": round(time.monotonic() - started, 1), "clips": table,
              "command": " ".join(["python scripts/realvideo_check.py", *sys.argv[1:]])}
    (args.out / "realvideo.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "realvideo.md").write_text(markdown(record))
    if args.figure:
        figure(shown, models, args.crf[0], calls_dir, args.out / "realvideo.png")
    print(markdown(record))
    return 0


def figure(calls, models: dict[str, str], crf: int, calls_dir: Path, path: Path, height: int = 180) -> None:
    """One row per clip: the face (its box with a margin) in the middle frame as each model restores the clip
    sent at `crf`, then the original."""
    import cv2

    from mmsd.restore.restorer import Restorer

    rows = []
    for clip, video, truth, boxes in calls:
        t = len(truth) // 2
        x0, y0, x1, y1 = boxes[t]
        pad = int(0.25 * (y1 - y0))
        y0, y1 = max(0, y0 - pad), min(truth.shape[1], y1 + pad)
        x0, x1 = max(0, x0 - pad), min(truth.shape[2], x1 + pad)
        sent = calls_dir / f"{video.stem}-crf{crf}.mp4"
        tiles = []
        for name, model in [*models.items(), ("original", None)]:
            frame = truth[t] if model is None else next(f for i, f in enumerate(restored(Restorer(model), sent))
                                                        if i == t)
            size = (round(height * (x1 - x0) / (y1 - y0)), height)
            tile = cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), size, interpolation=cv2.INTER_AREA)
            cv2.putText(tile, name, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def markdown(record: dict) -> str:
    names = list(record["models"])
    lines = ["# Real-video validation clips, whole frames through encode + decode", "",
             f"Face PSNR (dB) on every {record['frame_step']}nd frame's face box; gain over Bicubic in brackets. "
             f"Made by `{record.get('command', 'python scripts/realvideo_check.py')}`"
             f" ({record['precision']} precision asked; CPU: {record['cpu']}).", ""]
    for crf in record["crfs"]:
        lines += [f"## CRF {crf}", "", "| clip | frames | face px | " + " | ".join(names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        for clip, row in record["clips"].items():
            psnr = row["face_psnr"]
            base = psnr["bicubic"][str(crf)]
            cells = [f"{psnr[n][str(crf)]:.2f}" + ("" if n == "bicubic" else f" ({psnr[n][str(crf)] - base:+.2f})")
                     for n in names]
            lines.append(f"| {clip} | {row['frames']} | {row['face_height']:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
