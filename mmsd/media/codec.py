"""Video and audio I/O through PyAV: probe, streaming read, atomic x264/AAC write, bit-rates.

PyAV's wheels carry FFmpeg with libx264 and AAC, so no ffmpeg binary or system package
is needed. Frames are (H, W, 3) uint8 RGB; audio is mono float32 in [-1, 1]. (Just over 600 lines
because the reader and the writer share the container checks, errors and the guards the fuzzer asked
for; the writer, `VideoWriter` and `_AudioCopy`, is the seam to split along next.)

Choices where FFmpeg leaves room:

* Odd frame sizes. H.264 in 4:2:0 codes luma in 2x2 chroma units, and its cropping
  window also moves in 2-pixel steps, so an odd width or height cannot be stored in
  yuv420p at all. Even sizes are written in yuv420p (what every player decodes); odd
  sizes in yuv444p (High 4:4:4 profile), which holds any size exactly. FFmpeg-based
  tools, PyAV and browsers' software decoders read it; some hardware decoders do not.
* Frame times. ``frame_timing`` reads every frame's presentation timestamp (from the
  packets, without decoding) into a `FrameTiming`: constant rate as the exact ``Fraction``
  (30000/1001), variable rate as the timestamps in the stream's own time base. A writer
  given that timing shows frame i at its time i: constant rate in time base 1 / fps (as
  for ``fps=``), variable rate in the source's time base, so mp4/mov keep every timestamp
  exactly (their timescale is that base, or a multiple of it) and Matroska to its 1 ms
  tick. ``probe`` reports the stream's average rate, the mean rate of a variable-rate file.
* Audio copy. A writer given ``audio_from`` copies that file's first audio stream packet
  for packet (no re-encode), each packet muxed once the video reaches its time, with
  timestamps moved by the source's video start so the sound stays on frame 0.
* Metadata. mp4/mov files are written with ``movflags=use_metadata_tags`` so every
  key (``title``, ``comment`` and any side-information key) round-trips as given.
* Damaged files. A file that FFmpeg cannot open (not a video, an mp4 cut before its
  index), whose stream names a codec FFmpeg does not know, or whose frame rate is absurd
  (a damaged time base) raises ``CodecError`` at once. A file that breaks mid-stream yields
  the frames that decoded and then raises ``CodecError`` naming the frame index, so a
  short read is never silent and a streaming consumer keeps what it got. Tags that are not
  UTF-8 read with U+FFFD in them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mmsd.errors import MmsdError
from mmsd.media.fileio import commit, temp_beside
from mmsd.media.timing import FrameTiming

# Output container by file suffix; the temp file's name hides the suffix from FFmpeg.
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


class CodecError(MmsdError):
    """A video file that cannot be read or written; the message names the path."""


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about its first video stream (and first audio stream)."""

    width: int
    height: int
    fps: Fraction
    num_frames: int | None
    duration: float | None
    has_audio: bool
    audio_rate: int | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class StreamBits:
    """Total payload bits of the video and audio streams of a file over its duration (s)."""

    video_bits: int
    audio_bits: int
    duration: float

    @property
    def video_kbps(self) -> float:
        return self.video_bits / self.duration / 1000.0

    @property
    def audio_kbps(self) -> float:
        return self.audio_bits / self.duration / 1000.0


def _reason(err: av.FFmpegError) -> str:
    return getattr(err, "strerror", None) or str(err)


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    path = Path(path)
    if not path.exists():
        raise CodecError(f"{path}: no such file")
    if path.is_dir():
        raise CodecError(f"{path}: is a directory, not a video file")
    try:
        # a tag that is not UTF-8 (a damaged comment) reads with U+FFFD in it, not as an error about no file
        return av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as err:
        raise CodecError(f"{path}: not a readable video file ({_reason(err)})") from None


def _video_stream(container: av.container.InputContainer, path) -> av.VideoStream:
    if not container.streams.video:
        container.close()
        raise CodecError(f"{path}: has no video stream")
    video = container.streams.video[0]
    if video.codec_context is None:
        message = _unknown_codec(path, video)
        container.close()  # frees the stream too: no stream attribute may be read after this
        raise CodecError(message)
    return video


def _audio_stream(container: av.container.InputContainer, path) -> av.AudioStream | None:
    """The first audio stream, None if there is none; CodecError if it cannot be decoded."""
    if not container.streams.audio:
        return None
    audio = container.streams.audio[0]
    if audio.codec_context is None:
        raise CodecError(_unknown_codec(path, audio))
    return audio


def _unknown_codec(path, stream: av.stream.Stream) -> str:
    # a damaged header can name a codec FFmpeg has no decoder for; PyAV then gives the stream no
    # codec context, and every codec attribute of it (rate, width, ...) raises AttributeError
    return f"{path}: the {stream.type} stream's codec is unknown (a damaged stream header?)"


def _stream_seconds(stream: av.stream.Stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _start_seconds(stream: av.stream.Stream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


MAX_FPS = 1000  # the fastest video taken as real: high-speed phone cameras film at 960 fps


def _plausible_rate(path, fps: Fraction | None) -> Fraction:
    """`fps` as a Fraction; CodecError if missing or absurd (a damaged time base can make it millions)."""
    if not fps:
        raise CodecError(f"{path}: the video stream has no frame rate")
    if not 0 < fps <= MAX_FPS:
        raise CodecError(f"{path}: the video stream's frame rate, {float(fps):.6g} fps, is not plausible "
                         f"(over {MAX_FPS}; a damaged time base?)")
    return Fraction(fps)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read the header of a video file. Raises CodecError if missing, unreadable or without video."""
    with _open(path) as container:
        video = _video_stream(container, path)
        fps = _plausible_rate(path, video.average_rate or video.guessed_rate or video.base_rate)
        duration = _stream_seconds(video)
        if duration is None and container.duration is not None:
            duration = container.duration / av.time_base
        audio = _audio_stream(container, path)
        return VideoInfo(
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=Fraction(fps),
            num_frames=video.frames or None,
            duration=duration,
            has_audio=audio is not None,
            audio_rate=audio.rate if audio is not None else None,
            metadata=dict(container.metadata),
        )


def frame_timing(path: str | os.PathLike) -> FrameTiming:
    """When each frame of the first video stream is shown, from its packets' timestamps (no decoding).

    Constant rate when every timestamp lies within one tick of t / rate for the stream's
    declared rate, else variable rate. A stream without timestamps, or one that breaks
    mid-file (`read_frames` raises there), counts as constant at its declared rate past
    the timestamps read.
    """
    with _open(path) as container:
        video = _video_stream(container, path)
        rates = [Fraction(rate) for rate in (video.average_rate, video.guessed_rate, video.base_rate) if rate]
        if not rates:
            raise CodecError(f"{path}: the video stream has no frame rate")
        if not video.time_base:
            raise CodecError(f"{path}: the video stream has no time base")
        pts: list[int] = []
        try:
            for packet in container.demux(video):
                if packet.size == 0 or packet.is_discard or packet.is_corrupt:
                    continue
                if packet.pts is None:
                    return FrameTiming.constant(_plausible_rate(path, rates[0]))
                pts.append(packet.pts)
        except av.FFmpegError:
            pass
        timing = FrameTiming.from_pts(pts, video.time_base, rates=rates)
        _plausible_rate(path, timing.fps)
        return timing


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode the first video stream frame by frame: an iterator of (H, W, 3) uint8 RGB.

    Opening errors raise here, before iteration; a decoding error mid-stream raises
    CodecError after the frames that decoded.
    """
    container = _open(path)
    video = _video_stream(container, path)
    video.thread_type = "AUTO"
    return _frames(container, video, path)


def _frames(container, video, path) -> Iterator[np.ndarray]:
    count = 0
    try:
        for packet in container.demux(video):
            # the demuxer flags the packet a file's end cuts short; the decoder would take it silently
            if packet.is_corrupt:
                raise CodecError(f"{path}: corrupt or truncated video after frame {count} (damaged packet)")
            for frame in packet.decode():
                yield frame.to_ndarray(format="rgb24")
                count += 1
    except av.FFmpegError as err:
        raise CodecError(f"{path}: corrupt or truncated video after frame {count} ({_reason(err)})") from None
    finally:
        container.close()
    if count == 0:
        raise CodecError(f"{path}: no video frame could be decoded")


def iter_audio(path: str | os.PathLike, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """The first audio stream, downmixed to mono and resampled, as float32 chunks in [-1, 1],
    in constant memory.

    Sample 0 is at the start time of the video stream (silence is prepended if the audio
    starts later), and the AAC padding past the stream's declared duration is cut, so
    sample s plays at s / sample_rate seconds after the first video frame.
    Yields nothing when the file has no audio stream; an audio-only file is read too.
    """
    with _open(path) as container:
        audio = _audio_stream(container, path)
        if audio is None:
            return
        duration = _stream_seconds(audio)
        limit = None if duration is None else round(duration * sample_rate)
        video_start = _start_seconds(container.streams.video[0]) if container.streams.video else 0.0
        shift = round((_start_seconds(audio) - video_start) * sample_rate)
        if shift > 0:
            yield np.zeros(shift, np.float32)
        skip, decoded = max(0, -shift), 0
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for chunk in _resampled(container, audio, resampler, path):
            if limit is not None:
                chunk = chunk[: max(0, limit - decoded)]
            decoded += chunk.size
            cut = min(skip, chunk.size)
            chunk, skip = chunk[cut:], skip - cut
            if chunk.size:
                yield np.clip(chunk, -1.0, 1.0)
            if limit is not None and decoded >= limit:
                return


def _resampled(container, audio, resampler, path) -> Iterator[np.ndarray]:
    try:
        for frame in container.decode(audio):
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1)
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1)
    except av.FFmpegError as err:
        raise CodecError(f"{path}: corrupt or truncated audio ({_reason(err)})") from None


def read_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """All of `iter_audio` as one float32 (S,) array; empty (0,) when the file has no audio."""
    chunks = list(iter_audio(path, sample_rate))
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def _pix_fmt(width: int, height: int) -> str:
    return "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"frame size must be positive, got {width}x{height} (W x H)")


def _check_fps(fps: Fraction) -> Fraction:
    fps = Fraction(fps)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return fps


def _video_frame(frame: np.ndarray, width: int, height: int, index: int, timing: FrameTiming) -> av.VideoFrame:
    if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
        raise ValueError(
            f"frame {index}: expected ({height}, {width}, 3) uint8 RGB, got {frame.shape} {frame.dtype}"
        )
    out = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    out.pts = timing.ticks(index)
    out.time_base = timing.time_base
    return out


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def _x264_options(crf: float, preset: str) -> dict[str, str]:
    # checked here because x264 only rejects them when the first frame opens the encoder
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51 for 8-bit x264, got {crf}")
    if preset not in X264_PRESETS:
        raise ValueError(f"unknown x264 preset {preset!r}, expected one of {', '.join(X264_PRESETS)}")
    return {"crf": f"{crf:g}", "preset": preset}


class VideoWriter:
    """Atomic H.264 (+ AAC, or a copied audio stream) writer: a context manager over
    DIR/.NAME.XXXX.tmp, renamed to NAME on close.

    An exception inside ``with`` (or ``abort()``) deletes the temp file and leaves the
    target untouched. ``write_audio`` may be called at any time with any length; the
    AAC encoder buffers it into its own frame size.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        width: int,
        height: int,
        fps: Fraction | None = None,
        timing: FrameTiming | None = None,
        crf: float = 18,
        preset: str = "medium",
        audio_rate: int | None = None,
        audio_bitrate: int = 64000,
        audio_from: str | os.PathLike | None = None,
        metadata: dict[str, str] | None = None,
        x264_options: dict[str, str] | None = None,
    ) -> None:
        """Frame times: ``fps`` (frame i at i / fps) or ``timing`` (frame i at ``timing.seconds(i)``,
        e.g. the source's `frame_timing`). Audio: ``audio_rate`` for AAC fed by ``write_audio``,
        or ``audio_from``, a file whose first audio stream is copied (see the module docstring).
        x264_options: extra libx264 options, e.g. {"threads": "1", "x264-params": "mbtree=0"}
        for bit-reproducible output (mbtree reads memory it never set)."""
        _check_size(width, height)
        if (fps is None) == (timing is None):
            raise ValueError("give the writer one of fps and timing")
        if audio_rate is not None and audio_from is not None:
            raise ValueError("give the writer audio_rate (AAC from write_audio) or audio_from (a copy), not both")
        self.path = Path(path)
        self.width, self.height = width, height
        self.timing = timing if timing is not None else FrameTiming.constant(_check_fps(fps))
        self.fps = self.timing.fps
        fmt = _FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise CodecError(f"{self.path}: unsupported container suffix (use one of {', '.join(_FORMATS)})")
        if not self.path.parent.is_dir():
            raise CodecError(f"{self.path}: folder {self.path.parent} does not exist")
        x264_options = _x264_options(crf, preset) | (x264_options or {})
        self._tmp = temp_beside(self.path, suffix=".tmp")
        self._audio = self._copy = None
        try:
            options = {"movflags": "use_metadata_tags"} if fmt in ("mp4", "mov") else {}
            self._container = av.open(str(self._tmp), "w", format=fmt, options=options)
            for key, value in (metadata or {}).items():
                self._container.metadata[key] = value
            # x264's rate control wants a rate: a variable rate gives its mean (in small terms), the
            # frames their own times
            rate = self.fps.limit_denominator(1001) if self.timing.variable else self.fps
            self._video = self._container.add_stream("libx264", rate=rate)
            self._video.codec_context.time_base = self._video.time_base = self.timing.time_base
            self._video.width, self._video.height = width, height
            self._video.pix_fmt = _pix_fmt(width, height)
            self._video.options = x264_options
            if audio_rate is not None:
                self._audio = self._container.add_stream("aac", rate=audio_rate, layout="mono")
                self._audio.bit_rate = audio_bitrate
        except BaseException as err:  # the temp file goes whatever the error
            self._container_close()
            self._tmp.unlink(missing_ok=True)
            if isinstance(err, (av.FFmpegError, ValueError, OverflowError)):  # Overflow: a rate past 32 bits
                raise CodecError(f"{self.path}: cannot set up the encoder ({err})") from None
            raise
        if audio_from is not None:
            try:
                self._copy = _AudioCopy(self._container, Path(audio_from))
            except (av.FFmpegError, ValueError, IndexError) as err:
                self._container_close()
                self._tmp.unlink(missing_ok=True)
                raise CodecError(f"{self.path}: cannot copy the audio of {audio_from} ({err})") from None
        self._durations: dict[int, int] = {}  # pts -> ticks until the next frame, for the encoder's packets
        self._frames = 0
        self._samples = 0
        self._done = False

    def write(self, frame: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame, shown at the writer's time for its index."""
        index = self._frames
        video_frame = _video_frame(frame, self.width, self.height, index, self.timing)
        self._durations[video_frame.pts] = self.timing.ticks(index + 1) - video_frame.pts
        try:
            self._mux_video(self._video.encode(video_frame))
            self._frames += 1
            if self._copy is not None:
                self._copy.mux_until(self._container, self.timing.seconds(self._frames))
        except av.FFmpegError as err:  # e.g. a copied audio codec the output container cannot hold
            raise CodecError(f"{self.path}: writing failed ({_reason(err)})") from None

    def _mux_video(self, packets) -> None:
        for packet in packets:
            # the last frame lasts its source interval too, not 1 / mean rate (the muxer's guess)
            packet.duration = self._durations.pop(packet.pts, 0)
            self._container.mux(packet)

    def write_audio(self, samples: np.ndarray) -> None:
        """Encode mono float32 samples (S,) at ``audio_rate``, continuing the audio track."""
        if self._audio is None:
            raise ValueError(f"{self.path}: write_audio needs a writer opened with audio_rate")
        samples = np.asarray(samples, np.float32).reshape(-1)
        if samples.size == 0:
            return
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = self._audio.rate
        frame.pts = self._samples
        frame.time_base = Fraction(1, self._audio.rate)
        self._container.mux(self._audio.encode(frame))
        self._samples += samples.size

    def close(self) -> None:
        """Flush the encoders and move the finished file onto the target path."""
        if self._done:
            return
        if self._frames == 0:
            self.abort()
            raise CodecError(f"{self.path}: no video frame was written")
        try:
            self._mux_video(self._video.encode(None))
            if self._copy is not None:
                self._copy.mux_until(self._container, None)
            if self._audio is not None:
                self._container.mux(self._audio.encode(None))
            self._container.close()
        except BaseException as err:  # the temp file goes whatever the error
            self.abort()
            if isinstance(err, av.FFmpegError):
                raise CodecError(f"{self.path}: writing failed ({_reason(err)})") from None
            raise
        finally:
            if self._copy is not None:
                self._copy.close()
        commit(self._tmp, self.path)
        self._done = True

    def abort(self) -> None:
        """Drop everything written so far; the target path is left as it was."""
        if self._done:
            return
        self._done = True
        self._container_close()
        if self._copy is not None:
            self._copy.close()
        self._tmp.unlink(missing_ok=True)

    def _container_close(self) -> None:
        container = getattr(self, "_container", None)
        if container is None:
            return
        try:
            container.close()
        except av.FFmpegError:
            pass  # the half-written temp file is deleted anyway

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _AudioCopy:
    """The packets of a file's first audio stream, added to an output container as the video advances.

    Packets are muxed as the video reaches their time, so the muxer never queues more than a
    frame's worth; timestamps move with the source's video start so the copied audio stays in
    sync with frame 0.
    """

    def __init__(self, container: av.container.OutputContainer, source: Path) -> None:
        self._path = source
        self._source = av.open(str(source), metadata_errors="replace")  # as `_open` reads it
        try:
            stream = self._source.streams.audio[0]
            if hasattr(container, "add_stream_from_template"):  # PyAV >= 14
                self._stream = container.add_stream_from_template(stream)
            else:
                self._stream = container.add_stream(template=stream)
            video = self._source.streams.video[0]
            self._shift = round(_start_seconds(video) / stream.time_base) if video.start_time else 0
            self._packets = self._source.demux(stream)
            self._pending = None
        except BaseException:
            self.close()
            raise

    def mux_until(self, container: av.container.OutputContainer, until: Fraction | None) -> None:
        """Mux the source's audio packets that start before ``until`` seconds after frame 0 (None: all)."""
        if self._source is None:
            return
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            if packet.dts is None or packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if until is not None and (stamp - self._shift) * packet.time_base >= until:
                self._pending = packet
                return
            if self._shift:
                packet.dts -= self._shift
                if packet.pts is not None:
                    packet.pts -= self._shift
            packet.stream = self._stream
            try:
                container.mux(packet)
            except av.FFmpegError as err:  # the source's fault, not the output's: e.g. timestamps that go back
                raise CodecError(f"{self._path}: its audio stream cannot be copied ({_reason(err)}; damaged "
                                 f"timestamps?)") from None

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None


def stream_bitrates(path: str | os.PathLike) -> StreamBits:
    """Sum the packet sizes of the first video and audio streams; duration is the video stream's."""
    with _open(path) as container:
        video = _video_stream(container, path)
        streams = [video, *container.streams.audio[:1]]
        bits = {"video": 0, "audio": 0}
        try:
            for packet in container.demux(*streams):
                if packet.size:
                    bits[packet.stream.type] += packet.size * 8
        except av.FFmpegError as err:
            raise CodecError(f"{path}: corrupt or truncated file ({_reason(err)})") from None
        duration = _stream_seconds(video)
        if not duration and container.duration is not None:
            duration = container.duration / av.time_base
    if not duration:
        raise CodecError(f"{path}: the file has no duration")
    return StreamBits(video_bits=bits["video"], audio_bits=bits["audio"], duration=duration)


def encode_decode(
    frames: Sequence[np.ndarray], *, fps: Fraction, crf: float, preset: str = "medium"
) -> tuple[list[np.ndarray], float]:
    """x264 round trip in memory: the decoded (H, W, 3) uint8 RGB frames and the video kbps.

    Encoder packets go straight to an H.264 decoder (Annex B, no container), which is
    what a receiver sees, minus the few hundred bytes of mp4 framing. kbps counts the
    H.264 payload, parameter sets included, over len(frames) / fps seconds.
    """
    if not frames:
        raise ValueError("encode_decode needs at least one frame")
    fps = _check_fps(fps)
    timing = FrameTiming.constant(fps)
    height, width = frames[0].shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = _pix_fmt(width, height)
    encoder.time_base = 1 / fps
    encoder.framerate = fps
    encoder.options = _x264_options(crf, preset)
    decoder = av.CodecContext.create("h264", "r")
    decoded: list[np.ndarray] = []
    bits = 0

    def decode(packets) -> None:
        nonlocal bits
        for packet in packets:
            bits += packet.size * 8
            decoded.extend(f.to_ndarray(format="rgb24") for f in decoder.decode(packet))

    for index, frame in enumerate(frames):
        decode(encoder.encode(_video_frame(frame, width, height, index, timing)))
    decode(encoder.encode(None))
    decoded.extend(f.to_ndarray(format="rgb24") for f in decoder.decode(None))
    if len(decoded) != len(frames):
        raise CodecError(f"x264 round trip returned {len(decoded)} of {len(frames)} frames")
    return decoded, bits / (len(frames) / fps) / 1000.0
