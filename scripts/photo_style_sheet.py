"""Contact sheet of the synthetic renderer's styles: one cartoon actor beside photo-style actors.

    python scripts/photo_style_sheet.py [--out docs/synth_photo_style.png] [--actors 1 2 3 4 5]

Each tile is a native-resolution crop (no rescaling) around the face of one frame at
480x288 (the paper's crop size), taken while the actor speaks (mouth open) in a
happy-strong clip; the first tile is actor 1 in the cartoon style, the others the photo
style. Also prints the render time per frame of both styles. Written as an adaptive
256-colour PNG to stay small.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mmsd import emotions
from mmsd.data.synth import generate

WIDTH, HEIGHT, TILE = 480, 288, 256


def frame(style: str, actor: int, state: str = "happy-strong") -> tuple[np.ndarray, np.ndarray, float]:
    """A mid-speech frame (H, W, 3) uint8, its landmarks (68, 2), and the render time per frame (s)."""
    cfg = generate.SynthConfig(out=Path("."), width=WIDTH, height=HEIGHT, style=style)
    look, style_, renderer = generate._parts(cfg, actor)
    clip = generate.plan_clip(cfg, actor, emotions.parse(state), 1, 1, look, style_)
    t = int(np.argmax(clip.mouth.open))
    frames = range(max(0, t - 5), t + 5)
    start = time.perf_counter()
    for k in frames:
        img, pts = renderer.render(clip.frames_u[k], clip.aus[k], clip.poses[k], tongue=float(clip.mouth.tongue[k]),
                                   tuck=float(clip.mouth.tuck[k]), grain_index=k)
    per_frame = (time.perf_counter() - start) / len(frames)
    img, pts = renderer.render(clip.frames_u[t], clip.aus[t], clip.poses[t], tongue=float(clip.mouth.tongue[t]),
                               tuck=float(clip.mouth.tuck[t]), grain_index=t)
    return img, pts, per_frame


def tile(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """A TILE x TILE crop centred a little below the eyes."""
    cx, cy = pts[27:36].mean(0)
    x0 = int(np.clip(cx - TILE / 2, 0, WIDTH - TILE))
    y0 = int(np.clip(cy - TILE / 2, 0, HEIGHT - TILE))
    return img[y0:y0 + TILE, x0:x0 + TILE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/synth_photo_style.png"))
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--cols", type=int, default=3)
    parser.add_argument("--full-colour", action="store_true", help="no 256-colour palette (larger file)")
    args = parser.parse_args()
    tiles, times = [], {"cartoon": [], "photo": []}
    for style, actor in [("cartoon", args.actors[0])] + [("photo", a) for a in args.actors]:
        img, pts, dt = frame(style, actor)
        tiles.append(tile(img, pts))
        times[style].append(dt)
    while len(tiles) % args.cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + args.cols]) for i in range(0, len(tiles), args.cols)]
    sheet = Image.fromarray(np.vstack(rows))
    if not args.full_colour:
        sheet = sheet.quantize(256, method=Image.Quantize.MEDIANCUT, kmeans=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"{args.out}: {args.out.stat().st_size / 1e3:.0f} kB; render time per {WIDTH}x{HEIGHT} frame: "
          + ", ".join(f"{s} {1e3 * np.mean(v):.1f} ms" for s, v in times.items()))


if __name__ == "__main__":
    main()
