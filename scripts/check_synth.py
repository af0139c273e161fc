"""Acceptance figures of a synthetic corpus written by `mmsd synth` (issue 3).

    python scripts/check_synth.py DIR [--frames-per-clip 3]

Prints:
1. mouth/audio: mean per-clip Pearson r between the landmark mouth opening (inner-lip
   gap over inter-ocular distance) and the audio RMS envelope per video frame (>= 0.5);
2. emotion: nearest-centroid classification of the 15 states from per-clip mean AU
   vectors, centroids from actors 1-18, tested on actors 19-24 (>= 90 %); a corpus
   without actors > 18 tests on its last actor instead;
3. AU directions: least-squares coefficients of landmark measures on all 17 AUs
   (brow height on AU01/AU02 > 0, lip-corner height on AU12 > 0 and AU15 < 0, mouth
   opening on AU26 > 0), with the simple per-frame Pearson r beside them;
4. realism proxy: OpenCV frontal-face Haar cascade detection rate on sampled frames
   (>= 90 %), a detection counting when its box contains the landmark nose tip;
plus the corpus size on disk. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mmsd.data.synth import acceptance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Acceptance figures of a synthetic corpus (issue 3).")
    parser.add_argument("root", type=Path, help="corpus folder written by mmsd synth")
    parser.add_argument("--frames-per-clip", type=int, default=3, help="frames per clip for the Haar test")
    args = parser.parse_args(argv)

    paths = sorted(args.root.glob("Actor_*/01-*.mp4"))
    if not paths:
        print(f"check_synth: no clips under {args.root}", file=sys.stderr)
        return 1
    stats, found, tried = [], 0, 0
    for path in paths:
        s = acceptance.clip_stats(path)
        stats.append(s)
        f, t = acceptance.haar_hits(s, args.frames_per_clip)
        found, tried = found + f, tried + t
    size = sum(p.stat().st_size for p in args.root.glob("Actor_*/*") if p.is_file())
    actors = sorted({s.actor for s in stats})
    print(f"corpus: {len(stats)} clips, {len(actors)} actors, {size / 1e6:.1f} MB on disk")
    ok = True

    rs = np.array([s.mouth_audio_r for s in stats])
    ok &= float(np.nanmean(rs)) >= 0.5
    print(f"1. mouth opening vs audio RMS: mean per-clip Pearson r = {np.nanmean(rs):.3f} "
          f"(min {np.nanmin(rs):.3f}; target >= 0.5)")

    test = [a for a in actors if a > 18] or actors[-1:]
    acc, n = acceptance.nearest_centroid(stats, test)
    ok &= n == 0 or acc >= 0.9
    print(f"2. nearest-centroid emotion state from mean AUs: {acc:.1%} of {n} clips of actors "
          f"{test[0]}-{test[-1]}, centroids from the other {len(actors) - len(test)} (target >= 90%)")

    print("3. landmark measures vs AUs (least-squares coefficient per AU unit; simple per-frame r):")
    for measure, au, sign, coef, r in acceptance.au_directions(stats):
        good = coef * sign > 1e-3
        ok &= good
        print(f"   {measure:17s} ~ {au}: coef {coef:+.4f}  r {r:+.3f}  want {'+' if sign > 0 else '-'}  "
              f"{'ok' if good else 'WRONG'}")

    rate = found / max(tried, 1)
    ok &= rate >= 0.9
    print(f"4. Haar frontal-face detection: {rate:.1%} of {tried} sampled frames (target >= 90%)")
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
