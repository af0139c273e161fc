"""Score models on footage sent as a call is sent: the held-out check of `mmsd personalize`.

A stretch of a speaker's footage is degraded exactly as `mmsd encode --crf` degrades a call
(whole frames, 4x bicubic antialiased down by `mmsd.data.degrade.resize`, x264 at the encoder's
default preset with the stretch's frame times), decoded, restored as `mmsd decode` restores it
(`Restorer.restore_frames`, the stretch's sound as MFCC, neutral emotion) and scored by face
PSNR against the original frames, on per-frame face boxes (Haar on every frame, smoothed:
`mmsd.data.realvideo.face_track`, as the real-video calls are scored). Frames are (H, W, 3) uint8
RGB; boxes (x0, y0, x1, y1) int in source pixels, x1/y1 exclusive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmsd.errors import MmsdError
from mmsd.media.timing import FrameTiming

SCALE = 4  # `mmsd encode`'s default --scale
PRESET = "medium"  # `mmsd encode`'s default --preset


@dataclass(frozen=True, eq=False)
class HeldOut:
    """One stretch of footage to send and score."""

    frames: np.ndarray  # (T, H, W, 3) uint8, H and W multiples of SCALE: the truth
    boxes: np.ndarray  # (T, 4) int32 face boxes
    scored: np.ndarray  # (T,) bool: frames with a face found, the ones scored
    timing: FrameTiming
    samples: np.ndarray  # (S,) float32 mono sound from the first frame on at `sample_rate`; empty: none
    sample_rate: int


def held_out_call(frames: np.ndarray, timing: FrameTiming, samples: np.ndarray, sample_rate: int) -> HeldOut:
    """A HeldOut of frames (T, H, W, 3): cut to the SCALE grid (what `encode` sends and `decode` restores),
    with their face boxes."""
    from mmsd.data.degrade import DegradeConfig, boxes_from_face
    from mmsd.data.realvideo import face_track

    height, width = frames.shape[1] // SCALE * SCALE, frames.shape[2] // SCALE * SCALE
    frames = frames[:, :height, :width]
    track, found = face_track(frames, float(timing.fps), step=1)
    boxes = np.zeros((len(frames), 4), np.int32)
    if found.any():
        boxes, _ = boxes_from_face(track, DegradeConfig(hr_width=width, hr_height=height, scale=SCALE))
    return HeldOut(frames=frames, boxes=boxes, scored=found, timing=timing, samples=samples, sample_rate=sample_rate)


def sent(call: HeldOut, crf: int, path: Path) -> list[np.ndarray]:
    """The LR frames a receiver decodes from `mmsd encode --crf CRF` of the call (written to `path`): an odd
    width or height padded to even as the sender pads it (`restored` crops it off again)."""
    from mmsd.data.degrade import resize
    from mmsd.media import codec
    from mmsd.sender.encode import coded_size, pad_to

    height, width = call.frames.shape[1] // SCALE, call.frames.shape[2] // SCALE
    coded = coded_size(width, height)
    with codec.VideoWriter(path, width=coded[0], height=coded[1], timing=call.timing, crf=crf, preset=PRESET) as writer:
        for frame in call.frames:
            writer.write(pad_to(resize(frame, width, height), coded))
    return list(codec.read_frames(path))


def restored(restorer, call: HeldOut, lr: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The frames `restorer` (a `mmsd.restore.Restorer`) makes of the decoded `lr`, as `mmsd decode` does."""
    from mmsd.media.audio import mfcc_for_frames

    mfcc = None
    if restorer.uses_audio and call.samples.size:
        if call.sample_rate != restorer.mfcc_config.sample_rate:
            raise ValueError(f"sound at {call.sample_rate} Hz, the model's MFCC needs {restorer.mfcc_config.sample_rate}")
        mfcc = mfcc_for_frames(call.samples, len(lr), call.timing, restorer.mfcc_config)
    height, width = call.frames.shape[1:3]  # the sender's padding to even LR sizes, cropped off
    return [frame[:height, :width] for frame in restorer.restore_frames(lr, mfcc=mfcc, emotion="neutral")]


def face_psnr(call: HeldOut, frames: Sequence[np.ndarray]) -> list[float]:
    """Face PSNR (dB) of each scored frame of `frames` against the call's truth."""
    from mmsd.evaluation import metrics

    return [metrics.psnr(metrics.region(frames[t], call.boxes[t]), metrics.region(call.frames[t], call.boxes[t]))
            for t in np.flatnonzero(call.scored)]


def score_calls(models: Mapping[str, str], calls: Sequence[HeldOut], *, crfs: Sequence[int], work: Path,
                precision: str = "auto") -> dict[str, dict[int, float]]:
    """Mean face PSNR over every scored frame of `calls`, per model {label: name or file} and CRF:
    {label: {crf: dB}}. Sent videos are written under `work`."""
    from mmsd.restore import Restorer

    restorers = {label: Restorer(model, precision=precision) for label, model in models.items()}
    scores: dict[str, dict[int, list[float]]] = {label: {crf: [] for crf in crfs} for label in models}
    for i, call in enumerate(calls):
        if not call.scored.any():
            continue
        for crf in crfs:
            lr = sent(call, crf, Path(work) / f"held-{i:02d}-crf{crf}.mp4")
            for label, restorer in restorers.items():
                scores[label][crf] += face_psnr(call, restored(restorer, call, lr))
    if not any(scores[label][crf] for label in scores for crf in crfs):
        raise MmsdError("no face found in any held-out frame")
    return {label: {crf: float(np.mean(v)) for crf, v in per_crf.items()} for label, per_crf in scores.items()}
