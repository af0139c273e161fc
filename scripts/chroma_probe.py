"""Does the chroma subsampling of the sent file matter at these rates? (issue 39; a probe, not a shipped model)

    python scripts/chroma_probe.py                      # -> results/probes/chroma/chroma.md

The first 150 frames of each real-video validation call (`scripts/realvideo_check.py` writes them to
runs/realvideo-calls/), cut to the 8-pixel grid, 4x down as `mmsd encode` shrinks them, sent with x264
(preset medium) at CRF 32 and 40 in 4:2:0 (what `mmsd encode` sends, odd sizes padded) and in 4:4:4 (what
it sent for odd sizes before 2026-12-07), restored by Bicubic and the shipped `mmsd-fast`; face PSNR on
every 2nd frame's face box, and the video bit-rate of each sent file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np

from personal_check import ROOT  # scripts/ is on sys.path when this file runs

CLIPS = ("franck_late", "wolfgang", "single_face")


def send(frames: list[np.ndarray], path: Path, pix_fmt: str, crf: int, fps: int) -> float:
    """x264 of `frames` at `crf` in `pix_fmt` written to `path`; -> its bit-rate in kbit/s."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        stream.options = {"crf": str(crf), "preset": "medium"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path.stat().st_size * 8 / (len(frames) / fps) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "probes" / "chroma")
    args = parser.parse_args()

    from mmsd.data.degrade import DegradeConfig, boxes_from_face, resize
    from mmsd.data.realvideo import face_track
    from mmsd.evaluation import metrics
    from mmsd.media import codec
    from mmsd.restore.restorer import Restorer

    restorers = {name: Restorer(name) for name in ("bicubic", "mmsd-fast")}
    work = ROOT / "runs" / "chroma-probe"
    work.mkdir(parents=True, exist_ok=True)
    lines = ["# 4:2:0 or 4:4:4 for the sent file", "", __doc__.split("\n\n")[2].replace("\n", " "), "",
             "| clip | CRF | chroma | kbit/s | Bicubic | mmsd-fast |", "|---|---|---|---|---|---|"]
    for clip in CLIPS:
        source = ROOT / "runs" / "realvideo-calls" / f"{clip}.mp4"
        if not source.is_file():
            raise SystemExit(f"{source}: missing; run python scripts/realvideo_check.py first")
        fps = float(codec.frame_timing(source).fps)
        truth = np.stack([frame for _, frame in zip(range(150), codec.read_frames(source))])
        height, width = truth.shape[1] // 8 * 8, truth.shape[2] // 8 * 8
        truth = truth[:, :height, :width]
        track, _ = face_track(truth, fps, step=1)
        boxes, _ = boxes_from_face(track, DegradeConfig(hr_width=width, hr_height=height))
        low = [resize(frame, width // 4, height // 4) for frame in truth]
        for crf in (32, 40):
            for pix_fmt, chroma in (("yuv420p", "4:2:0"), ("yuv444p", "4:4:4")):
                path = work / f"{clip}-{pix_fmt}-{crf}.mp4"
                kbps = send(low, path, pix_fmt, crf, round(fps))
                decoded = list(codec.read_frames(path))
                cells = []
                for restorer in restorers.values():
                    frames = restorer.restore_frames(decoded, emotion="neutral")
                    cells.append(np.mean([metrics.psnr(metrics.region(frame, boxes[t]), metrics.region(truth[t], boxes[t]))
                                          for t, frame in enumerate(frames) if t % 2 == 0]))
                lines.append(f"| {clip} | {crf} | {chroma} | {kbps:.1f} | {cells[0]:.2f} | {cells[1]:.2f} |")
                print(lines[-1], file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chroma.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
