"""The sender (`mmsd encode`, `mmsd.commands.encode`): downsample, x264 at a CRF, carry the audio, attach
side information.

The whole frame is shrunk by the scale with antialiased bicubic filtering (the paper's
degradation, `mmsd.data.degrade.resize`); a size not divisible by the scale is floored
(161x97 at x4 -> 40x24). An odd low-resolution width or height is padded by one repeated
column or row and coded in 4:2:0 (400x300 at x4 -> 100x75 coded as 100x76), the side
information's ``size`` telling the decoder to crop it off: in 4:4:4, which odd sizes would
otherwise need, the networks (trained on 4:2:0) gained next to nothing over Bicubic. Audio is re-encoded as mono AAC at the source's sample rate
(default 32 kbit/s, plenty for speech). The emotion state goes into the mp4 `comment`
tag as `mmsd.media.sideinfo` JSON; with no emotion the side information carries only
the format version and scale, and the receiver assumes neutral. ``--emotion auto`` (`auto_emotion`) finds
the states with the classifier of `mmsd train-emotion` (`mmsd.sender.emotion_classifier`) on the
full-quality frames, in a first pass over the input, since the side information goes into
the header before the first frame. Frames and audio are streamed, never all in memory;
every frame keeps its input time, at a constant or a variable frame rate (`mmsd.media.timing`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mmsd.data.degrade import resize
from mmsd.errors import MmsdError
from mmsd.media import sideinfo
from mmsd.media.codec import VideoWriter, frame_timing, iter_audio, probe, read_frames, stream_bitrates
from mmsd.media.fileio import check_output_path
from mmsd.media.timing import FrameTiming
from mmsd.models.weights import SHIPPED_DIR
from mmsd.sender.emotion_classifier import EmotionClassifier, EmotionTrack

EMOTION_MODEL = SHIPPED_DIR / "emotion.safetensors"  # the shipped classifier for --emotion auto


@dataclass(frozen=True)
class EncodeReport:
    """What the sender wrote: sizes W x H, frame count and times (``fps`` the exact rate, or the mean
    rate of a variable-rate input), and bits per second of each part."""

    width: int
    height: int
    frames: int
    fps: Fraction
    timing: FrameTiming
    side: sideinfo.SideInfo
    video_bps: float
    audio_bps: float
    side_bps: float


def encode_file(src: str | os.PathLike, dst: str | os.PathLike, *, side: sideinfo.SideInfo, crf: float = 40,
                scale: int = 4, preset: str = "medium", audio_kbps: float = 32,
                progress: bool = True) -> EncodeReport:
    """Downsample `src` by `scale`, encode x264 at `crf` with its audio as AAC and `side` in the
    comment tag, writing `dst` atomically; frames and audio are streamed, every frame at its input time."""
    src, dst = Path(src), Path(dst)
    info = probe(src)
    check_output_path(src, dst)
    timing = frame_timing(src)
    if info.num_frames:
        side = side.truncated(info.num_frames)
    width, height = max(1, info.width // scale), max(1, info.height // scale)
    coded = coded_size(width, height)
    if coded != (width, height):
        side = dataclasses.replace(side, size=(width, height))

    frames = read_frames(src)
    audio = _AudioFeed(iter_audio(src, info.audio_rate)) if info.has_audio else None
    count = 0
    bar = tqdm(total=info.num_frames, unit="frame", desc=f"encoding {src.name}", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    try:
        with VideoWriter(dst, width=coded[0], height=coded[1], timing=timing, crf=crf, preset=preset,
                         audio_rate=info.audio_rate if audio else None, audio_bitrate=round(audio_kbps * 1000),
                         metadata={sideinfo.TAG: side.to_json()}) as writer:
            for frame in frames:
                writer.write(pad_to(resize(frame, width, height), coded))
                count += 1
                if audio is not None:  # interleave: audio up to the next frame's time
                    writer.write_audio(audio.take(round(timing.seconds(count) * info.audio_rate)))
                bar.update()
            if audio is not None:
                writer.write_audio(audio.take(None))
    except BaseException:
        bar.leave = False  # the error line alone stays on the terminal
        raise
    finally:
        bar.close()

    bits = stream_bitrates(dst)
    return EncodeReport(width=width, height=height, frames=count, fps=timing.fps, timing=timing, side=side,
                        video_bps=bits.video_bits / bits.duration, audio_bps=bits.audio_bits / bits.duration,
                        side_bps=side.bits / bits.duration)


def coded_size(width: int, height: int) -> tuple[int, int]:
    """(W, H) the sender codes a `width` x `height` LR picture at: odd sides grown by one (4:2:0 needs even)."""
    return width + width % 2, height + height % 2


def pad_to(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`frame` (H, W, C) grown to `size` (width, height) by repeating its last column and row."""
    height, width = frame.shape[:2]
    if (width, height) == size:
        return frame
    return np.pad(frame, ((0, size[1] - height), (0, size[0] - width), (0, 0)), mode="edge")


def auto_emotion(src: str | os.PathLike, dst: str | os.PathLike, *, model: str | os.PathLike = EMOTION_MODEL,
                 progress: bool = True) -> EmotionTrack:
    """The emotion segments of `src` by the classifier in `model`, streaming over its frames once.

    `dst` is the output the caller will write: it is checked first, so a bad path fails fast."""
    src, model = Path(src), Path(model)
    if not model.is_file():
        raise MmsdError(f"--emotion auto needs the emotion classifier {model}, which does not exist;"
                        " train one with `mmsd train-emotion` or give --emotion STATE")
    classifier = EmotionClassifier.load(model)
    info = probe(src)
    check_output_path(src, dst)
    bar = tqdm(read_frames(src), total=info.num_frames, unit="frame", desc=f"emotion {src.name}",
               disable=not progress, dynamic_ncols=True, file=sys.stderr)
    try:
        return classifier.track(bar, fps=info.fps)
    except BaseException:
        bar.leave = False  # the error line alone stays on the terminal
        raise
    finally:
        bar.close()


class _AudioFeed:
    """Hands out an audio chunk stream up to a running sample count."""

    def __init__(self, chunks: Iterator[np.ndarray]) -> None:
        self._chunks = chunks
        self._rest = np.zeros(0, np.float32)
        self._given = 0

    def take(self, until: int | None) -> np.ndarray:
        """Samples from where the last call stopped up to sample ``until`` (None: to the end)."""
        pieces = [self._rest]
        have = self._given + self._rest.size
        while until is None or have < until:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            pieces.append(chunk)
            have += chunk.size
        samples = np.concatenate(pieces)
        count = samples.size if until is None else max(0, min(samples.size, until - self._given))
        self._rest = samples[count:]
        self._given += count
        return samples[:count]
