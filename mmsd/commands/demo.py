"""`mmsd demo` (what `make demo` runs): the whole chain on a clip no model has seen.

1. Synthesize a talking head: test actor 24 (never in training) speaking a sentence
   that is not one of the two training statements, in an emotion state.
2. Cut the paper's 480x288 face crop: that is the "original" the receiver should see.
3. Send it: `encode` (4x down, x264 at CRF 40, AAC, emotion as side information).
4. Receive it: soft-decode with Bicubic and with the shipped model (a missing model stops the
   demo before it starts, with a one-line error: no column is silently left out).
5. Write `demo/`: a side-by-side mp4 with sound (Bicubic | model | original), a PNG of a
   few frames, and print the bit-rates and the face-region PSNR/SSIM of each decoder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from mmsd import emotions
from mmsd.data.degrade import crop_resize, face_crop_box, face_mouth_boxes
from mmsd.data.openface import read_csv
from mmsd.errors import MmsdError
from mmsd.evaluation import metrics
from mmsd.media import codec, sideinfo
from mmsd.media.fileio import atomic_path
from mmsd.restore.loading import DEFAULT_MODEL, shipped_models
from mmsd.restore.restorer import Restorer
from mmsd.sender.encode import encode_file

DEMO_TEXT = "Please bring the blue book to the kitchen"
AUDIO_RATE = 48000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: demo)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"soft decoder to show next to Bicubic (default: {DEFAULT_MODEL}, the decoder's)")
    parser.add_argument("--crf", type=float, default=40, help="x264 CRF of the sent video (default 40)")
    parser.add_argument("--actor", type=int, default=24, help="synthetic actor (default 24, a test actor)")
    parser.add_argument("--emotion", default="happy-strong", help="emotion state of the clip")


def _make_original(out: Path, actor: int, state: emotions.EmotionState) -> tuple[Path, np.ndarray]:
    """Synthesize the clip, cut the face crop; returns (original.mp4, face boxes (T, 4) in HR pixels)."""
    from mmsd.data.synth.generate import SynthConfig, write_clip

    source = write_clip(SynthConfig(out=out, actors=(actor,)), actor, state, 1, 1, text=DEMO_TEXT,
                        path=out / "source.mp4")
    track = read_csv(source.with_suffix(".csv"))
    info = codec.probe(source)
    frames = np.stack(list(codec.read_frames(source)))
    crop = face_crop_box(frames[:5], width=info.width, height=info.height, track=track)
    hr = crop_resize(frames, crop)
    face_boxes, _ = face_mouth_boxes(crop, len(hr), track=track)
    original = out / "original.mp4"
    with codec.VideoWriter(original, width=hr.shape[2], height=hr.shape[1], timing=codec.frame_timing(source), crf=10,
                           audio_rate=AUDIO_RATE, audio_bitrate=96000) as writer:
        writer.write_audio(codec.read_audio(source, AUDIO_RATE))
        for frame in hr:
            writer.write(frame)
    return original, face_boxes


def _scores(restored: Path, original: Path, boxes: np.ndarray) -> tuple[float, float]:
    """Mean face-region PSNR (dB) and SSIM of `restored` against `original`."""
    psnrs, ssims = [], []
    for t, (a, b) in enumerate(zip(codec.read_frames(restored), codec.read_frames(original))):
        face_a, face_b = metrics.region(a, boxes[t]), metrics.region(b, boxes[t])
        psnrs.append(metrics.psnr(face_a, face_b))
        ssims.append(metrics.ssim(face_a, face_b))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    frame = frame.copy()
    cv2.putText(frame, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(frame, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def _side_by_side(columns: list[tuple[str, Path]], original: Path, out: Path) -> Path:
    """An mp4 with the columns next to each other and the original's sound; and a PNG of 3 frames."""
    info = codec.probe(original)
    readers = [codec.read_frames(path) for _, path in columns]
    rows, picks = [], {info.num_frames // 4, info.num_frames // 2, 3 * info.num_frames // 4}
    video = out / "side_by_side.mp4"
    with codec.VideoWriter(video, width=info.width * len(columns), height=info.height,
                           timing=codec.frame_timing(original), crf=14,
                           audio_rate=AUDIO_RATE, audio_bitrate=96000) as writer:
        writer.write_audio(codec.read_audio(original, AUDIO_RATE))
        for t, frames in enumerate(zip(*readers)):
            row = np.concatenate([_label(f, name) for f, (name, _) in zip(frames, columns)], axis=1)
            writer.write(row)
            if t in picks:
                rows.append(row)
    png = out / "frames.png"
    with atomic_path(png, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return video


def run(args: argparse.Namespace) -> int:
    state = emotions.parse(args.emotion)
    names = shipped_models()
    if args.model not in names and not Path(args.model).is_file():  # before any work: no column is dropped
        raise MmsdError(f"model {args.model!r} is missing, so the demo cannot show it beside Bicubic "
                        f"(available: {', '.join(names)}; see `mmsd models`)")
    decoders = [("Bicubic", "bicubic"), (args.model.upper() if args.model in names else Path(args.model).stem,
                                         args.model)]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"1. synthesizing actor {args.actor} ({state.name}) saying \"{DEMO_TEXT}\" (never seen in training)")
    original, boxes = _make_original(out, args.actor, state)

    print(f"2. sending: 4x down, x264 CRF {args.crf:g}, emotion '{state.name}' as side information")
    sent = encode_file(original, out / "low.mp4", side=sideinfo.SideInfo(scale=4, segments=((0, state.id),)),
                       crf=args.crf, progress=False)
    print(f"   {sent.width}x{sent.height}: video {sent.video_bps / 1000:.1f} kbit/s, audio "
          f"{sent.audio_bps / 1000:.1f} kbit/s, side information {sent.side_bps:.1f} bit/s")

    print("3. receiving: soft decoding")
    columns = []
    for name, model in decoders:
        restored = out / f"{model if model == 'bicubic' else 'restored'}.mp4"
        report = Restorer(model).restore_file(out / "low.mp4", restored, progress=False, on_warning=print)
        psnr, ssim = _scores(restored, original, boxes)
        print(f"   {name:>8}: face PSNR {psnr:.2f} dB, SSIM {ssim:.4f} ({report.fps:.1f} fps end to end)")
        columns.append((name, restored))
    video = _side_by_side([*columns, ("Original", original)], original, out)
    print(f"4. wrote {video} (with sound) and {out / 'frames.png'} in {time.monotonic() - started:.0f} s")
    return 0
