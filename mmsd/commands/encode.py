"""`mmsd encode INPUT -o OUTPUT`: the sender's command line over `mmsd.sender.encode` (how the video is
shrunk and coded, and where the side information goes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmsd import emotions
from mmsd.errors import MmsdError
from mmsd.media import sideinfo
from mmsd.sender.encode import EMOTION_MODEL, auto_emotion, encode_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the high-quality video (any size, with or without audio)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the low bit-rate mp4 to write")
    parser.add_argument("--crf", type=float, default=40, help="x264 constant rate factor 0..51 (default 40)")
    parser.add_argument("--scale", type=int, default=4, help="downsampling factor (default 4)")
    parser.add_argument("--preset", default="medium", help="x264 preset (default medium)")
    parser.add_argument("--audio-kbps", type=float, default=32, help="AAC bit-rate in kbit/s (default 32)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--emotion", metavar="STATE",
                       help=f"one emotion state for the whole clip: {', '.join(emotions.NAMES)}, or an id 0..14;"
                            " or 'auto': the emotion classifier reads the speaker's face")
    group.add_argument("--emotion-track", type=Path, metavar="CSV",
                       help="per-segment states: 'frame,state' rows, each state holding from its 0-based frame on")
    parser.add_argument("--emotion-model", type=Path, metavar="PATH",
                        help="classifier weights for --emotion auto (default: the shipped one, `mmsd models`)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.scale < 1:
        raise ValueError(f"--scale must be a positive integer, got {args.scale}")
    if args.audio_kbps <= 0:
        raise ValueError(f"--audio-kbps must be positive, got {args.audio_kbps}")
    auto = args.emotion is not None and args.emotion.strip().lower() == "auto"
    if args.emotion_model is not None and not auto:
        raise MmsdError("--emotion-model is used only with --emotion auto")
    if auto:
        track = auto_emotion(args.input, args.output, model=args.emotion_model or EMOTION_MODEL,
                             progress=not args.quiet)
        print(f"emotion auto: {track.describe()}")
        side = sideinfo.SideInfo(scale=args.scale, segments=track.segments)
    elif args.emotion is not None:
        side = sideinfo.SideInfo(scale=args.scale, segments=((0, emotions.parse(args.emotion).id),))
    elif args.emotion_track is not None:
        side = sideinfo.read_emotion_track(args.emotion_track, scale=args.scale)
    else:
        side = sideinfo.SideInfo(scale=args.scale)
    report = encode_file(args.input, args.output, side=side, crf=args.crf, scale=args.scale,
                         preset=args.preset, audio_kbps=args.audio_kbps, progress=not args.quiet)
    print(f"wrote {args.output}: {report.width}x{report.height} (W x H, x{args.scale} down), {report.frames} "
          f"frames at {report.timing.describe()}, CRF {args.crf:g}, emotion {_describe(report.side)}")
    print(f"  video      {report.video_bps:12.0f} bit/s")
    print(f"  audio      {report.audio_bps:12.0f} bit/s")
    print(f"  side info  {report.side_bps:12.1f} bit/s ({report.side.bits // 8} bytes: {report.side.to_json()})")
    return 0


def _describe(side: sideinfo.SideInfo) -> str:
    if not side.has_emotion:
        return "none (the receiver assumes neutral)"
    names = [emotions.STATES[state].name for _, state in side.segments]
    if len(names) == 1:
        return names[0]
    return f"{len(names)} segments ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"
