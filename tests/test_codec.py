from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from mmsd.errors import MmsdError
from mmsd.media.codec import (
    CodecError,
    VideoWriter,
    encode_decode,
    frame_timing,
    iter_audio,
    probe,
    read_audio,
    read_frames,
    stream_bitrates,
)
from mmsd.media.timing import FrameTiming

NTSC = Fraction(30000, 1001)


def gradient_frames(num: int, width: int, height: int) -> list[np.ndarray]:
    """A diagonal colour gradient sliding a few pixels per frame: (H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width]
    return [
        np.stack([(2 * x + 3 * t) % 256, (3 * y + t) % 256, (x + y + 5 * t) % 256], axis=-1).astype(np.uint8)
        for t in range(num)
    ]


def tone(seconds: float, rate: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_clip(path, frames, fps, *, crf=18, audio_rate=None, metadata=None, preset="ultrafast"):
    height, width = frames[0].shape[:2]
    with VideoWriter(
        path, width=width, height=height, fps=fps, crf=crf, preset=preset,
        audio_rate=audio_rate, metadata=metadata,
    ) as writer:
        for frame in frames:
            writer.write(frame)
        if audio_rate is not None:
            samples = tone(len(frames) / fps, audio_rate)
            # uneven chunks: the writer must buffer them into AAC frames
            for chunk in np.array_split(samples, 7):
                writer.write_audio(chunk)
    return path


@pytest.fixture(scope="module")
def ntsc_clip(tmp_path_factory):
    """30 frames of 120x72 at 30000/1001 fps with a 16 kHz tone, near-lossless."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    frames = gradient_frames(30, 120, 72)
    write_clip(path, frames, NTSC, crf=8, audio_rate=16000, metadata={"title": "A clip", "comment": "state=happy-strong"})
    return path, frames


def test_round_trip_keeps_size_rate_count_audio(ntsc_clip):
    path, frames = ntsc_clip
    info = probe(path)
    assert (info.width, info.height) == (120, 72)
    assert info.fps == NTSC and isinstance(info.fps, Fraction)
    assert info.num_frames == 30
    assert info.duration == pytest.approx(30 / NTSC, abs=1e-3)
    assert info.has_audio and info.audio_rate == 16000

    decoded = list(read_frames(path))
    assert len(decoded) == 30
    assert decoded[0].shape == (72, 120, 3) and decoded[0].dtype == np.uint8
    error = np.abs(np.stack(decoded).astype(np.int16) - np.stack(frames)).mean()
    assert error < 3.0

    audio = read_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == round(16000 * 30 / NTSC)
    assert np.abs(audio).max() == pytest.approx(0.5, abs=0.1)


def test_read_audio_resamples(ntsc_clip):
    path, _ = ntsc_clip
    assert len(read_audio(path, 8000)) == round(8000 * 30 / NTSC)


def test_metadata_title_and_comment_kept(ntsc_clip):
    path, _ = ntsc_clip
    meta = probe(path).metadata
    assert meta["title"] == "A clip"
    assert meta["comment"] == "state=happy-strong"


@pytest.mark.parametrize("fps", [Fraction(25), NTSC, Fraction(30), Fraction(60)])
def test_exact_frame_rate_round_trips(tmp_path, fps):
    path = write_clip(tmp_path / "r.mp4", gradient_frames(6, 64, 48), fps)
    info = probe(path)
    assert info.fps == fps
    assert info.num_frames == 6
    assert sum(1 for _ in read_frames(path)) == 6


def test_odd_size_round_trip(tmp_path):
    frames = gradient_frames(5, 121, 73)
    path = write_clip(tmp_path / "odd.mp4", frames, Fraction(25), crf=8)
    info = probe(path)
    assert (info.width, info.height) == (121, 73)
    decoded = list(read_frames(path))
    assert [f.shape for f in decoded] == [(73, 121, 3)] * 5
    assert np.abs(np.stack(decoded).astype(np.int16) - np.stack(frames)).mean() < 3.0

    round_trip, kbps = encode_decode(frames, fps=Fraction(25), crf=20, preset="ultrafast")
    assert [f.shape for f in round_trip] == [(73, 121, 3)] * 5 and kbps > 0


def test_encode_decode_rate_falls_with_crf():
    frames = gradient_frames(25, 120, 72)
    results = {crf: encode_decode(frames, fps=Fraction(25), crf=crf, preset="veryfast") for crf in (15, 40)}
    for decoded, _ in results.values():
        assert len(decoded) == 25 and decoded[0].shape == (72, 120, 3)
    errors = {crf: np.abs(np.stack(d).astype(np.int16) - np.stack(frames)).mean() for crf, (d, _) in results.items()}
    assert results[40][1] < results[15][1]
    assert errors[40] > errors[15]


def test_stream_bitrates(ntsc_clip, tmp_path):
    path, _ = ntsc_clip
    bits = stream_bitrates(path)
    assert bits.duration == pytest.approx(float(30 / NTSC), abs=1e-3)
    assert bits.video_kbps > 0 and bits.audio_kbps > 0
    assert bits.video_bits + bits.audio_bits < path.stat().st_size * 8

    silent = write_clip(tmp_path / "silent.mp4", gradient_frames(5, 64, 48), Fraction(25))
    assert stream_bitrates(silent).audio_bits == 0
    assert read_audio(silent).shape == (0,)


def test_variable_frame_rate_frames_come_as_they_are(tmp_path):
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = 64, 48
        for index, pts in enumerate([0, 1, 3, 4, 8, 9]):
            frame = av.VideoFrame.from_ndarray(gradient_frames(index + 1, 64, 48)[-1], format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert sum(1 for _ in read_frames(path)) == 6
    assert 0 < probe(path).fps <= 30
    timing = frame_timing(path)
    assert timing.variable and [timing.seconds(t) for t in range(6)] == [Fraction(p, 30) for p in (0, 1, 3, 4, 8, 9)]


def presentation_times(path) -> list[Fraction]:
    with av.open(str(path)) as container:
        return [frame.pts * frame.time_base for frame in container.decode(video=0)]


@pytest.mark.parametrize("suffix, base", [(".mp4", Fraction(1, 90000)), (".mkv", Fraction(1, 90000)),
                                          (".mp4", Fraction(1001, 30000))])
def test_writer_keeps_variable_frame_times(tmp_path, suffix, base):
    pts = [0, 3003, 6006, 9009, 18018, 27027, 30030]  # at 90 kHz: 29.97 fps with two 100.1 ms gaps
    timing = FrameTiming.from_pts([int(p * Fraction(1, 90000) / base) for p in pts], base)
    path = tmp_path / f"vfr{suffix}"
    with VideoWriter(path, width=64, height=48, timing=timing, preset="ultrafast") as writer:
        for frame in gradient_frames(7, 64, 48):
            writer.write(frame)
    times = presentation_times(path)
    tick = Fraction(1, 1000) if suffix == ".mkv" else Fraction(0)  # Matroska stores milliseconds
    assert all(abs((t - times[0]) - p * Fraction(1, 90000)) <= tick for t, p in zip(times, pts, strict=True))
    read = frame_timing(path)
    assert read.variable and abs(read.intervals[1] - Fraction(9009, 90000)) <= tick
    # the last frame lasts as long as the one before it, not 1 / mean rate
    assert probe(path).duration == pytest.approx(float(Fraction(33033, 90000)), abs=float(tick) + 1e-6)


def test_constant_rate_timing_is_read_exactly(ntsc_clip, tmp_path):
    path, frames = ntsc_clip
    assert frame_timing(path) == FrameTiming.constant(NTSC)
    mkv = write_clip(tmp_path / "ntsc.mkv", frames, NTSC)  # 1 ms ticks: 33 and 34 ms steps
    assert frame_timing(mkv) == FrameTiming.constant(NTSC)


def test_writer_copies_another_file_s_audio(ntsc_clip, tmp_path):
    path, frames = ntsc_clip
    out = tmp_path / "copy.mp4"
    with VideoWriter(out, width=120, height=72, timing=frame_timing(path), preset="ultrafast",
                     audio_from=path) as writer:
        for frame in frames:
            writer.write(frame)
    with av.open(str(path)) as a, av.open(str(out)) as b:
        assert [bytes(p) for p in a.demux(audio=0) if p.size] == [bytes(p) for p in b.demux(audio=0) if p.size]
    assert np.array_equal(read_audio(out), read_audio(path))
    with pytest.raises(ValueError, match="one of fps and timing"):
        VideoWriter(tmp_path / "x.mp4", width=64, height=48)
    with pytest.raises(ValueError, match="audio_rate .* or audio_from"):
        VideoWriter(tmp_path / "x.mp4", width=64, height=48, fps=NTSC, audio_rate=16000, audio_from=path)
    with pytest.raises(CodecError, match="cannot copy the audio of"):
        VideoWriter(tmp_path / "x.mp4", width=64, height=48, fps=NTSC, audio_from=tmp_path / "copy.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.mp4"]


def test_writer_is_atomic_on_exception(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, width=64, height=48, fps=Fraction(25), preset="ultrafast") as writer:
            for frame in gradient_frames(3, 64, 48):
                writer.write(frame)
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"old")
    with pytest.raises(ValueError, match=r"expected \(48, 64, 3\) uint8"):
        with VideoWriter(target, width=64, height=48, fps=Fraction(25)) as writer:
            writer.write(np.zeros((48, 63, 3), np.uint8))
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_writer_needs_frames(tmp_path):
    with pytest.raises(CodecError, match="no video frame"):
        with VideoWriter(tmp_path / "empty.mp4", width=64, height=48, fps=Fraction(25)):
            pass
    assert list(tmp_path.iterdir()) == []


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(CodecError, match=r"nope\.mp4: no such file"):
        probe(missing)
    with pytest.raises(CodecError, match="no such file"):
        read_frames(missing)


def test_text_file_is_not_a_video(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(CodecError, match=r"notes\.mp4: not a readable video file"):
        probe(text)
    with pytest.raises(MmsdError, match="not a readable video"):
        read_frames(text)


def test_truncated_file(ntsc_clip, tmp_path):
    path, _ = ntsc_clip
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CodecError, match=r"cut\.mp4"):
        probe(cut)
    with pytest.raises(CodecError, match=r"cut\.mp4"):
        list(read_frames(cut))


def test_truncated_after_index_raises_after_good_frames(tmp_path):
    # an mp4 with its index up front ("faststart") cut in half still opens: the frames
    # before the cut decode, then the reader must say the file is damaged
    path = tmp_path / "fast.mp4"
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 64, 48
        rng = np.random.default_rng(0)
        for _ in range(20):
            noise = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(noise, format="rgb24")))
        container.mux(stream.encode(None))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(CodecError, match=r"fast\.mp4: corrupt or truncated video after frame \d+"):
        for frame in read_frames(path):
            got.append(frame)
    assert 0 < len(got) < 20


def test_audio_only_file_has_no_video(tmp_path):
    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(0.5, 16000)[None], format="flt", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(CodecError, match=r"speech\.m4a: has no video stream"):
        probe(path)
    with pytest.raises(CodecError, match="no video stream"):
        read_frames(path)
    assert len(read_audio(path)) == pytest.approx(8000, abs=1030)


def _damaged_copy(path, tmp_path, name: str, *changes: tuple[bytes, bytes], after: bytes = b""):
    """`path` with the first `old` after `after` replaced by `new`, for each (old, new) of `changes`
    (of the same length: every box keeps its size)."""
    data = path.read_bytes()
    for old, new in changes:
        assert len(old) == len(new)
        at = data.index(old, data.index(after))
        data = data[:at] + new + data[at + len(old):]
    damaged = tmp_path / name
    damaged.write_bytes(data)
    return damaged


def test_a_stream_of_unknown_codec_is_a_codec_error(ntsc_clip, tmp_path):
    # a damaged sample description (its code and descriptor) names a codec FFmpeg has no decoder for:
    # PyAV gives that stream no codec context, so its rate or size was an AttributeError (and, read
    # after the file was closed, a segfault)
    path, _ = ntsc_clip
    no_audio_codec = _damaged_copy(path, tmp_path, "no-audio-codec.mp4", (b"mp4a", b"zzzz"), (b"esds", b"zzzz"),
                                   after=b"stsd")
    for read in (probe, lambda p: list(iter_audio(p))):
        with pytest.raises(CodecError, match=r"no-audio-codec\.mp4: the audio stream's codec is unknown"):
            read(no_audio_codec)
    no_video_codec = _damaged_copy(path, tmp_path, "no-video-codec.mp4", (b"avc1", b"zzzz"), after=b"stsd")
    for read in (probe, frame_timing, read_frames, stream_bitrates):
        with pytest.raises(CodecError, match=r"no-video-codec\.mp4: the video stream's codec is unknown"):
            read(no_video_codec)


def test_an_absurd_time_scale_is_a_codec_error_and_the_writer_leaves_nothing(ntsc_clip, tmp_path):
    # the video track's time scale (mdhd) damaged to 2^31 - 1 ticks per second: frames 0.24 us apart
    path, _ = ntsc_clip
    data = path.read_bytes()
    at = data.index(b"mdhd") + 16  # type, version and flags, two dates: then the time scale
    damaged = tmp_path / "fast.mp4"
    damaged.write_bytes(data[:at] + (2**31 - 1).to_bytes(4, "big") + data[at + 4:])
    for read in (probe, frame_timing):
        with pytest.raises(CodecError, match=r"fast\.mp4: the video stream's frame rate, .* fps, is not plausible"):
            read(damaged)
    # a rate past 32 bits, had one got through, is the writer's one-line error, and no temp file stays
    with pytest.raises(CodecError, match="cannot set up the encoder"):
        VideoWriter(tmp_path / "out.mp4", width=64, height=48, fps=Fraction(2**40))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.mp4"]


def test_audio_that_cannot_be_copied_is_the_source_s_error_and_the_writer_leaves_nothing(ntsc_clip, tmp_path):
    # every audio packet of the source at time 0 (the audio track's sample delta damaged to 0): the muxer
    # refuses the second; the error was "OUT: writing failed (Invalid argument)", blaming the output
    path, frames = ntsc_clip
    data = path.read_bytes()
    at = data.index(b"stts", data.index(b"soun")) + 16  # type, version and flags, entry count, sample count
    stuck = tmp_path / "stuck.mp4"
    stuck.write_bytes(data[:at] + bytes(4) + data[at + 4:])
    with pytest.raises(CodecError, match=r"stuck\.mp4: its audio stream cannot be copied \(Invalid argument"):
        with VideoWriter(tmp_path / "out.mp4", width=120, height=72, fps=NTSC, audio_from=stuck) as writer:
            for frame in frames:
                writer.write(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stuck.mp4"]


def test_a_tag_that_is_not_utf8_reads_with_replacement_characters(ntsc_clip, tmp_path):
    path, _ = ntsc_clip
    damaged = _damaged_copy(path, tmp_path, "latin.mp4", (b"happy", b"h\xffp\xfey"))
    assert probe(damaged).metadata["comment"] == "state=h\ufffdp\ufffdy-strong"
    with VideoWriter(tmp_path / "copy.mp4", width=120, height=72, fps=NTSC, audio_from=damaged) as writer:
        writer.write(gradient_frames(1, 120, 72)[0])  # the decoder's audio copy opens it too
    assert probe(tmp_path / "copy.mp4").has_audio


def test_bad_encoder_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown x264 preset 'bogus'"):
        VideoWriter(tmp_path / "x.mp4", width=64, height=48, fps=Fraction(25), preset="bogus")
    with pytest.raises(ValueError, match="crf must be in 0..51"):
        encode_decode(gradient_frames(1, 64, 48), fps=Fraction(25), crf=60)
    with pytest.raises(CodecError, match="unsupported container suffix"):
        VideoWriter(tmp_path / "x.avi", width=64, height=48, fps=Fraction(25))
    assert list(tmp_path.iterdir()) == []
