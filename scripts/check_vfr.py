"""Lip sync on a variable-frame-rate clip (issue 17): does any frame move in time?

    python scripts/check_vfr.py [--model bicubic] [--out DIR]

Writes the clip of the issue, 1 s at 30 fps followed by 3 s at 10 fps (60 frames,
480x288, a tone that changes pitch every frame throughout), sends it with `mmsd encode`
(`encode_file`, x4 down, CRF 40) and restores it with `mmsd decode` (`restore_file`),
then prints for each output the largest distance between a frame's presentation time and
its input time (target: <= 1 ms), and whether the audio kept its timing (encode re-encodes
it: the offset of best cross-correlation; decode copies it: packet for packet). Exits 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mmsd.media import sideinfo
from mmsd.media.codec import VideoWriter, frame_timing, read_audio
from mmsd.media.timing import FrameTiming
from mmsd.restore.restorer import Restorer
from mmsd.sender.encode import encode_file

TIME_BASE = Fraction(1, 30)
PTS = tuple(range(30)) + tuple(30 + 3 * j for j in range(30))  # 30 fps for 1 s, then 10 fps for 3 s
AUDIO_RATE = 48000


def write_source(path: Path) -> None:
    """The VFR clip: a bar moving with the frame index, and a tone whose pitch steps at every frame's time."""
    timing = FrameTiming.from_pts(PTS, TIME_BASE)
    seconds = float(timing.seconds(len(PTS) - 1) + Fraction(1, 10))
    t = np.arange(round(seconds * AUDIO_RATE)) / AUDIO_RATE
    index = np.searchsorted([float(p * TIME_BASE) for p in PTS], t, side="right") - 1
    phase = 2 * np.pi * np.cumsum(300 + 10 * index) / AUDIO_RATE
    with VideoWriter(path, width=480, height=288, timing=timing, crf=10, preset="fast",
                     audio_rate=AUDIO_RATE, audio_bitrate=128000) as writer:
        writer.write_audio((0.4 * np.sin(phase)).astype(np.float32))
        for i in range(len(PTS)):
            frame = np.full((288, 480, 3), 40, np.uint8)
            frame[:, 8 * i : 8 * i + 8] = 230
            writer.write(frame)


def frame_times(path: Path) -> np.ndarray:
    """Presentation time of every decoded frame, seconds after the first: float64 (T,)."""
    with av.open(str(path)) as container:
        times = [float(frame.pts * frame.time_base) for frame in container.decode(video=0)]
    return np.asarray(times) - times[0]


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def audio_offset_ms(a: np.ndarray, b: np.ndarray, rate: int, search_ms: float = 50.0) -> float:
    """The shift of `b` against `a` (ms) that correlates best, within +-search_ms."""
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    reach = round(search_ms * rate / 1000)
    shifts = range(-reach, reach + 1)
    scores = [float(np.dot(a[max(0, s): n + min(0, s)], b[max(0, -s): n - max(0, s)])) for s in shifts]
    return 1000 * shifts[int(np.argmax(scores))] / rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bicubic", help="decoder model (default bicubic: timing only)")
    parser.add_argument("--out", type=Path, help="keep the clips in this folder (default: a temp folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmsd-vfr-") as temp:
        folder = args.out or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        source, low, restored = folder / "source.mp4", folder / "low.mp4", folder / "restored.mp4"
        write_source(source)
        encode_file(source, low, side=sideinfo.SideInfo(scale=4), crf=40, progress=False)
        Restorer(args.model).restore_file(low, restored, progress=False, on_warning=lambda m: None)

        expected = frame_times(source)
        print(f"source: {len(expected)} frames, {frame_timing(source).describe()}")
        ok = True
        for name, path in (("encode", low), ("decode", restored)):
            got = frame_times(path)
            error_ms = 1000 * np.abs(got - expected).max() if got.size == expected.size else float("inf")
            ok &= error_ms <= 1.0
            print(f"{name}: {got.size} frames, {frame_timing(path).describe()}; largest frame time error "
                  f"{error_ms:.3f} ms (target <= 1 ms), frame 30 at {1000 * got[30]:.1f} ms (input 1000.0 ms)")
        offset = audio_offset_ms(read_audio(source, 16000), read_audio(low, 16000), 16000)
        copied = audio_packets(low) == audio_packets(restored)
        ok &= abs(offset) <= 1.0 and copied
        print(f"audio: encode shifts it by {offset:+.2f} ms (best cross-correlation); "
              f"decode copies it {'packet for packet' if copied else 'NOT unchanged'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
