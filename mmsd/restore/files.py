"""The Restorer's file path: a video file in, a restored video file out (`Restorer.restore_file`).

The emotion comes from the argument, else the file's side information, else neutral; the audio feeds the
MFCC windows and is copied into the output; the output keeps every frame's timestamp and is written
atomically. Decoding runs ahead of and encoding behind the network (`mmsd.restore.threads`).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

import mmsd
from mmsd import emotions
from mmsd.media import sideinfo
from mmsd.media.audio import iter_mfcc
from mmsd.media.codec import CodecError, VideoWriter, frame_timing, iter_audio, probe, read_frames
from mmsd.media.fileio import check_output_path
from mmsd.media.timing import FrameTiming
from mmsd.restore.threads import OVERLAP_FRAMES, InOrder, peak_rss_mb, read_ahead

# The restored video's x264 settings. CRF 12: the restoration, not the re-encode, decides the quality.
# Preset veryfast, not fast (until 2026-12-07): on a real 480x288 restored clip half the CPU (2.1 against
# 4.3 ms a frame on one AMD EPYC core, a fifth of a core at 30 fps that the network needs on 2-core CPUs)
# and 9% smaller files, at 42.75 against 43.09 dB PSNR to the restored frames (docs/speed.md), which
# moves a face PSNR of ~27 dB against the original by under 0.01 dB.
OUTPUT_CRF = 12
OUTPUT_PRESET = "veryfast"

if TYPE_CHECKING:
    from mmsd.restore.restorer import Restorer


@dataclass
class DecodeReport:
    """What `Restorer.restore_file` did. ``fps`` is end to end (decode, restore, encode);
    ``peak_rss_mb`` is the process's peak resident memory so far (`peak_rss_mb`), not this call's alone."""

    output: Path
    frames: int
    seconds: float
    fps: float
    peak_rss_mb: float
    width: int
    height: int
    timing: FrameTiming  # the input's frame times, which the output keeps
    model: str
    emotion_source: str  # "argument", "side information", "neutral (default)" or "unused"
    audio: str  # "copied", "none"
    warnings: list[str] = field(default_factory=list)
    engine: str = "torch"
    precision: str = "fp32"


def restore_file(
    restorer: Restorer,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    emotion: int | str | emotions.EmotionState | None = None,
    progress: bool = True,
    crf: float = OUTPUT_CRF,
    preset: str = OUTPUT_PRESET,
    on_warning: Callable[[str], None] | None = None,
    overlap: bool = True,
) -> DecodeReport:
    """`Restorer.restore_file`: restore every frame of ``src`` into ``dst`` with ``restorer``."""
    src, dst = Path(src), Path(dst)
    warned: list[str] = []

    def warn(message: str) -> None:
        warned.append(message)
        if on_warning is None:
            warnings.warn(message, stacklevel=4)
        else:
            on_warning(message)

    info = probe(src)
    check_output_path(src, dst)
    restorer.check_output_size(info.height, info.width)
    timing = frame_timing(src)
    try:
        side = sideinfo.from_metadata(info.metadata)
    except sideinfo.SideInfoError as exc:
        if emotion is None:
            raise sideinfo.SideInfoError(f"{src}: {exc}") from None
        warn(f"{src}: ignoring its side information ({exc})")
        side = None
    if side is not None and side.scale != restorer.scale:
        warn(f"{src} was downsampled x{side.scale}, but model {restorer.name} upsamples x{restorer.scale}")

    states: int | Iterable[int]
    if not restorer.uses_emotion:
        states, source = emotions.NEUTRAL.id, "unused"
    elif emotion is not None:
        states, source = emotions.parse(emotion).id, "argument"
    elif side is not None and side.has_emotion:
        states, source = side.states(), "side information"
    else:
        warn(f"{src}: no emotion side information and no emotion given; assuming neutral")
        states, source = emotions.NEUTRAL.id, "neutral (default)"

    mfcc = None
    if not info.has_audio:
        if restorer.uses_audio:
            warn(f"{src}: no audio track; the audio branch gets silence and the output has no sound")
    elif restorer.uses_audio:
        mfcc = iter_mfcc(iter_audio(src, restorer.mfcc_config.sample_rate), timing, restorer.mfcc_config)

    start = time.perf_counter()
    writer: VideoWriter | None = None
    encoder = InOrder(depth=OVERLAP_FRAMES if overlap else 0)
    frames = read_frames(src)
    count = 0
    bar = tqdm(total=info.num_frames, unit="frame", desc=f"restoring {src.name}", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    try:
        if overlap:
            frames = read_ahead(frames, depth=OVERLAP_FRAMES)
        for frame in restorer.restore_frames(frames, mfcc=mfcc, emotion=states):
            if side is not None:
                frame = side.crop(frame, restorer.scale)
            if writer is None:
                writer = VideoWriter(
                    dst, width=frame.shape[1], height=frame.shape[0], timing=timing, crf=crf, preset=preset,
                    audio_from=src if info.has_audio else None,
                    metadata={"comment": f"restored by mmsd {mmsd.__version__}, model {restorer.label}"},
                )
            encoder.call(writer.write, frame)
            count += 1
            bar.update()
        encoder.finish()
        if writer is None:
            raise CodecError(f"{src}: no video frame could be decoded")
        check_complete(src, info, count)
        writer.close()
    except BaseException:
        bar.leave = False  # the error line alone stays on the terminal
        encoder.cancel()
        if writer is not None:
            writer.abort()
        raise
    finally:
        frames.close()  # stops the read-ahead thread
        bar.close()
    seconds = time.perf_counter() - start
    return DecodeReport(
        output=dst, frames=count, seconds=seconds, fps=count / seconds if seconds > 0 else float("inf"),
        peak_rss_mb=peak_rss_mb(), width=writer.width, height=writer.height, timing=timing, model=restorer.label,
        emotion_source=source, audio="copied" if info.has_audio else "none", warnings=warned, engine=restorer.engine,
        precision=restorer.precision,
    )


def check_complete(src: Path, info, count: int) -> None:
    """Catch a file cut short that decoded without an error (e.g. a truncated Matroska file).

    The header's frame count (or duration x rate) can exceed the frames a healthy file
    decodes by an edit list or a longer audio track, so only a shortfall of over 10 % counts.
    """
    expected = info.num_frames or (round(info.duration * info.fps) if info.duration else None)
    if expected and count < 0.9 * expected - 1:
        raise CodecError(f"{src}: truncated video: decoded {count} frames, its header promises about {expected}")
