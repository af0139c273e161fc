"""`mmsd encode` and `mmsd decode` end to end, in-process through mmsd.cli.main."""

from __future__ import annotations

import contextlib
import io
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmsd import cli, emotions
from mmsd.media.codec import VideoWriter, frame_timing, probe, read_audio, read_frames
from mmsd.media.sideinfo import SideInfo
from mmsd.media.timing import FrameTiming
from mmsd.models.bicubic import Bicubic
from mmsd.models.weights import save_model

FPS = Fraction(30000, 1001)
SIZE = (160, 96)  # W x H


@pytest.fixture(autouse=True)
def commands(monkeypatch):
    """encode/decode in the CLI's table (a no-op once mmsd/cli.py lists them)."""
    monkeypatch.setitem(cli.COMMANDS, "encode", ("mmsd.commands.encode", "encode"))
    monkeypatch.setitem(cli.COMMANDS, "decode", ("mmsd.commands.decode", "decode"))


def moving_pattern(t: int, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    red = 128 + 100 * np.sin((xx + 3 * t) / 6.0) * np.cos(yy / 5.0)
    green = 128 + 80 * np.cos((yy - 2 * t) / 9.0)
    return np.stack([red, green, np.full_like(red, 90)], axis=2).astype(np.uint8)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """1 s of 160x96 moving pattern at 29.97 fps with a modulated 440 Hz tone."""
    path = tmp_path_factory.mktemp("src") / "talk.mp4"
    width, height = SIZE
    s = np.arange(48048) / 48000
    tone = 0.4 * np.sin(2 * np.pi * 440 * s) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * s))
    with VideoWriter(path, width=width, height=height, fps=FPS, crf=12, preset="ultrafast", audio_rate=48000) as writer:
        for t in range(30):
            writer.write(moving_pattern(t, width, height))
        writer.write_audio(tone.astype(np.float32))
    return path


@pytest.fixture(scope="module")
def encoded(source, tmp_path_factory) -> tuple[Path, str]:
    """The source encoded at CRF 40, x4 down, with an emotion track; and encode's stdout."""
    folder = tmp_path_factory.mktemp("low")
    track = folder / "track.csv"
    track.write_text("frame,state\n0,neutral\n12,happy-strong\n")
    low = folder / "low.mp4"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setitem(cli.COMMANDS, "encode", ("mmsd.commands.encode", "encode"))
        args = ["encode", str(source), "-o", str(low), "--crf", "40", "--emotion-track", str(track), "-q"]
        assert cli.main(args) == 0
    return low, out.getvalue()


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def no_leftovers(folder: Path, name: str) -> bool:
    """Neither the target nor a temp file of it exists."""
    return not any(p.name == name or p.name.startswith(f".{name}.tmp") for p in folder.iterdir())


def test_encode_writes_low_resolution_side_info_and_rates(encoded):
    low, stdout = encoded
    info = probe(low)
    assert (info.width, info.height, info.fps, info.num_frames) == (40, 24, FPS, 30)
    assert info.has_audio
    side = json.loads(info.metadata["comment"])
    assert side == {"mmsd": 1, "scale": 4, "emotion": [[0, 0], [12, emotions.parse("happy-strong").id]]}
    assert len(info.metadata["comment"]) < 60
    for line in ("video", "audio", "side info"):
        assert any(row.split()[:len(line.split())] == line.split() and "bit/s" in row for row in stdout.splitlines())


def test_round_trip_bicubic(encoded, tmp_path, capsys):
    low, _ = encoded
    out = tmp_path / "restored.mp4"
    assert cli.main(["decode", str(low), "-o", str(out), "--model", "bicubic", "--batch", "3", "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    before, after = probe(low), probe(out)
    assert (after.width, after.height) == (4 * before.width, 4 * before.height)
    assert (after.num_frames, after.fps) == (30, FPS)
    assert after.duration == pytest.approx(before.duration, abs=1 / 30)
    assert audio_packets(out) == audio_packets(low)
    assert np.array_equal(read_audio(out), read_audio(low))
    # the restored frames are the bicubic upsampling of the decoded ones, up to the CRF 12 re-encode
    lr = next(read_frames(low))
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
    up = (F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1) * 255)[0].permute(1, 2, 0)
    assert np.abs(next(read_frames(out)).astype(float) - up.numpy()).mean() < 3.0


def test_a_constant_rate_stays_exactly_constant(encoded, tmp_path, capsys):
    low, stdout = encoded
    assert frame_timing(low) == FrameTiming.constant(FPS) and "30 frames at 29.970 fps" in stdout
    out = tmp_path / "restored.mp4"
    assert cli.main(["decode", str(low), "-o", str(out), "--model", "bicubic", "-q"]) == 0
    assert frame_timing(out) == FrameTiming.constant(FPS) and "at 29.970 fps" in capsys.readouterr().out


def presentation_times(path: Path) -> list:
    """Each decoded frame's time after the first, exact; and one tick of the stream's time base."""
    with av.open(str(path)) as container:
        times = [frame.pts * frame.time_base for frame in container.decode(video=0)]
        return [t - times[0] for t in times], container.streams.video[0].time_base


def test_variable_frame_rate_keeps_every_frame_at_its_time(tmp_path, capsys):
    # 12 frames at 30 fps, then 8 at 10 fps, and a noise track whose timing must not move
    pts = [*range(12), *range(12, 36, 3)]
    src = tmp_path / "vfr.mp4"
    noise = (0.3 * np.random.default_rng(0).standard_normal(48000 * 35 // 30)).astype(np.float32)
    with VideoWriter(src, width=64, height=48, timing=FrameTiming.from_pts(pts, Fraction(1, 30)), crf=12,
                     preset="ultrafast", audio_rate=48000) as writer:
        writer.write_audio(noise)
        for t in range(len(pts)):
            writer.write(moving_pattern(t, 64, 48))
    low, out = tmp_path / "low.mp4", tmp_path / "out.mp4"
    assert cli.main(["encode", str(src), "-o", str(low), "-q"]) == 0
    assert "20 frames at variable frame rate" in capsys.readouterr().out
    assert cli.main(["decode", str(low), "-o", str(out), "--model", "bicubic", "-q"]) == 0
    assert "frame interval 33.3-100.0 ms" in capsys.readouterr().out
    for path in (low, out):
        times, tick = presentation_times(path)
        assert len(times) == 20 and all(abs(t - Fraction(p, 30)) <= tick for t, p in zip(times, pts))
    # encode re-encodes the sound on the same clock (best match at zero shift); decode copies it
    sent, heard = read_audio(src), read_audio(low)
    n = min(sent.size, heard.size) - 32
    match = [float(np.dot(sent[16 : 16 + n], heard[16 + s : 16 + s + n])) for s in range(-16, 17)]
    assert int(np.argmax(match)) == 16
    assert audio_packets(out) == audio_packets(low)


def pattern_clip(path: Path, width: int, height: int) -> Path:
    """Six frames of the moving pattern at width x height, 25 fps, no sound."""
    with VideoWriter(path, width=width, height=height, fps=25, crf=10, preset="ultrafast") as writer:
        for t in range(6):
            writer.write(moving_pattern(t, width, height))
    return path


def test_encode_odd_size_and_no_audio(tmp_path):
    src = pattern_clip(tmp_path / "odd.mp4", 61, 37)
    low, out = tmp_path / "low.mp4", tmp_path / "out.mp4"
    assert cli.main(["encode", str(src), "-o", str(low), "--scale", "2", "--emotion", "calm-strong", "-q"]) == 0
    info = probe(low)
    assert (info.width, info.height, info.has_audio) == (30, 18, False)
    assert SideInfo(scale=2, segments=((0, emotions.parse("calm-strong").id),)).to_json() == info.metadata["comment"]
    assert cli.main(["decode", str(low), "-o", str(out), "--model", "bicubic", "-q"]) == 0
    restored = probe(out)
    assert (restored.width, restored.height, restored.num_frames, restored.has_audio) == (120, 72, 6, False)


def test_an_odd_low_resolution_size_is_sent_in_420_and_restored_at_the_original_size(tmp_path):
    """400x300 at x4 is 100x75: sent as 100x76 in 4:2:0 (the networks never saw 4:4:4), restored as 400x300."""
    src = pattern_clip(tmp_path / "webcam.mp4", 36, 28)
    low, out = tmp_path / "low.mp4", tmp_path / "out.mp4"
    assert cli.main(["encode", str(src), "-o", str(low), "-q"]) == 0  # 9x7 at x4
    with av.open(str(low)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (10, 8)
        assert stream.codec_context.pix_fmt == "yuv420p"
    assert json.loads(probe(low).metadata["comment"])["size"] == [9, 7]
    sent = next(read_frames(low))
    assert np.abs(sent[:, 9].astype(int) - sent[:, 8]).mean() < 3  # the padding repeats the last column
    assert cli.main(["decode", str(low), "-o", str(out), "--model", "bicubic", "-q"]) == 0
    restored = probe(out)
    assert (restored.width, restored.height, restored.num_frames) == (36, 28, 6)


def test_encode_emotion_auto_needs_a_face(source, tmp_path, capsys):
    from mmsd.sender.emotion_classifier import EmotionClassifier, EmotionNet

    model = tmp_path / "emotion.safetensors"
    EmotionClassifier(EmotionNet()).save(model)
    args = ["encode", str(source), "-o", str(tmp_path / "low.mp4"), "--emotion", "auto", "--emotion-model", str(model)]
    assert cli.main([*args, "-q"]) == 1
    assert "found no face in any of the 5 frames" in capsys.readouterr().err
    assert no_leftovers(tmp_path, "low.mp4")


# ----------------------------------------------------------------- bad input


def bad_files(folder: Path, source: Path, encoded: Path) -> dict[str, Path]:
    """One file per kind of bad input."""
    files = {}
    files["not a video"] = folder / "notes.mp4"
    files["not a video"].write_text("these are meeting notes, not a video\n")
    data = encoded.read_bytes()
    files["truncated"] = folder / "cut.mp4"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["zero frames"] = folder / "empty.mp4"
    with av.open(str(files["zero frames"]), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        container.start_encoding()
    files["audio only"] = folder / "voice.m4a"
    with av.open(str(files["audio only"]), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    files["malformed side info"] = folder / "badside.mp4"
    with VideoWriter(files["malformed side info"], width=16, height=16, fps=25, preset="ultrafast",
                     metadata={"comment": '{"mmsd":1,"emotion":[[0,3],'}) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
    return files


@pytest.mark.parametrize(
    "case, match",
    [
        ("nonexistent", "no such file"),
        ("not a video", "not a readable video file"),
        ("truncated", "not a readable video file"),
        ("zero frames", "no video stream"),
        ("audio only", "no video stream"),
        ("malformed side info", "malformed side-information JSON"),
    ],
)
def test_decode_bad_input_files(case, match, encoded, source, tmp_path, capsys):
    files = bad_files(tmp_path, source, encoded[0])
    src = files.get(case, tmp_path / "missing.mp4")
    out = tmp_path / "out.mp4"
    assert cli.main(["decode", str(src), "-o", str(out), "--model", "bicubic", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmsd decode: error:") and match in err[0], err
    assert no_leftovers(tmp_path, "out.mp4")


def test_decode_truncated_mid_stream(source, tmp_path, capsys):
    """A Matroska file cut in the middle still opens and decodes its first frames."""
    mkv = tmp_path / "long.mkv"
    with VideoWriter(mkv, width=40, height=24, fps=25, crf=20, preset="ultrafast") as writer:
        for t in range(40):
            writer.write(moving_pattern(t, 40, 24))
    data = mkv.read_bytes()
    mkv.write_bytes(data[: len(data) // 2])
    assert cli.main(["decode", str(mkv), "-o", str(tmp_path / "out.mp4"), "--model", "bicubic", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated" in err[0], err
    assert no_leftovers(tmp_path, "out.mp4")


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--emotion", "grumpy"], "unknown emotion state 'grumpy'"),
        (["--model", "nosuchmodel"], "no model 'nosuchmodel'"),
        (["--batch", "0"], "batch size must be >= 1"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
    ],
)
def test_decode_bad_options(extra, match, encoded, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert cli.main(["decode", str(encoded[0]), "-o", str(out), "--model", "bicubic", "-q", *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    assert no_leftovers(tmp_path, "out.mp4")


def test_decode_bad_model_files(encoded, tmp_path, capsys):
    wrong = tmp_path / "wrong.safetensors"
    save_model(wrong, name="bicubic", config={"radius": 2, "causal": False, "scale": 4},
               state={"conv.weight": torch.zeros(8, 3, 3, 3)})
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    out = tmp_path / "out.mp4"
    for model, match in ((wrong, "weights do not fit model 'bicubic'"), (junk, "not a safetensors weights file")):
        assert cli.main(["decode", str(encoded[0]), "-o", str(out), "--model", str(model), "-q"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    assert no_leftovers(tmp_path, "out.mp4")


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_bad_output_paths(command, encoded, source, tmp_path, capsys):
    src = source if command == "encode" else encoded[0]
    cases = [
        (tmp_path / "no" / "such" / "dir.mp4", "does not exist"),
        (src, "would overwrite the input"),
        (tmp_path, "is a directory"),
    ]
    extra = ["--model", "bicubic"] if command == "decode" else []
    before = src.read_bytes()
    for out, match in cases:
        assert cli.main([command, str(src), "-o", str(out), "-q", *extra]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    assert src.read_bytes() == before
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_interrupt_leaves_no_output(command, encoded, source, tmp_path, capsys, monkeypatch):
    calls = iter(range(1000))
    if command == "encode":
        import mmsd.sender.encode

        real = mmsd.sender.encode.resize

        def resize(*args):
            if next(calls) == 5:
                raise KeyboardInterrupt
            return real(*args)

        monkeypatch.setattr(mmsd.sender.encode, "resize", resize)
        src = source
    else:
        real = Bicubic.forward

        def forward(self, *args, **kwargs):
            if next(calls) == 2:
                raise KeyboardInterrupt
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Bicubic, "forward", forward)
        src = encoded[0]
    out = tmp_path / "out.mp4"
    extra = ["--model", "bicubic", "--batch", "2"] if command == "decode" else []
    assert cli.main([command, str(src), "-o", str(out), "-q", *extra]) == 130
    assert capsys.readouterr().err.strip() == "mmsd: interrupted"
    assert no_leftovers(tmp_path, "out.mp4")


def test_encode_bad_input(tmp_path, capsys):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    for src, extra, match in (
        (tmp_path / "missing.mp4", [], "no such file"),
        (notes, [], "not a readable video file"),
        (notes, ["--emotion", "grumpy"], "unknown emotion state 'grumpy'"),
        (notes, ["--emotion-track", str(tmp_path / "none.csv")], "no such emotion-track file"),
    ):
        out = tmp_path / "low.mp4"
        assert cli.main(["encode", str(src), "-o", str(out), "-q", *extra]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
        assert no_leftovers(tmp_path, "low.mp4")


def test_low_latency_decode_needs_a_causal_model_and_waits_for_no_future_frame(encoded, tmp_path, capsys):
    low, _ = encoded
    out = tmp_path / "out.mp4"
    assert cli.main(["decode", str(low), "-o", str(out), "--model", "bicubic", "--low-latency", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a causal model" in err[0], err
    assert no_leftovers(tmp_path, "out.mp4")
    causal = tmp_path / "causal.safetensors"
    save_model(causal, name="bicubic", config={"radius": 2, "causal": True, "scale": 4}, state={})
    assert cli.main(["decode", str(low), "-o", str(out), "--model", str(causal), "--low-latency", "-q"]) == 0
    assert "latency 0 frames" in capsys.readouterr().out
    assert probe(out).num_frames == 30
    assert cli.main(["decode", str(low), "-o", str(out), "--model", "bicubic", "--batch", "1", "--workers", "1",
                     "-q"]) == 0
    assert "latency 2 frames" in capsys.readouterr().out  # the centred window looks N = 2 frames ahead
    assert cli.main(["decode", str(low), "-o", str(out), "--model", "bicubic", "--workers", "2", "-q"]) == 0
    assert "latency 3 frames" in capsys.readouterr().out  # and the second worker's frame
    assert cli.main(["decode", str(low), "-o", str(out), "--model", str(causal), "--low-latency", "--workers", "2",
                     "-q"]) == 1
    assert "one frame at a time; got --workers 2" in capsys.readouterr().err


def _threads_of_a_fresh_command(env_extra: dict[str, str]) -> int:
    """torch's thread count in a new `mmsd decode` process, as its --help reports it."""
    import os
    import re
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")} | env_extra
    out = subprocess.run([sys.executable, "-m", "mmsd.cli", "decode", "--help"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return int(re.search(r"may use, (\d+) here", " ".join(out.split())).group(1))


class _StandInTorch:
    def __init__(self, threads: int):
        self.threads = threads

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, threads: int) -> None:
        self.threads = threads


def test_commands_use_every_usable_cpu_not_torchs_physical_core_guess(monkeypatch):
    # torch counts the physical cores of /proc/cpuinfo: two vCPUs described as SMT siblings of one core gave
    # one thread, and the decoder one worker. A command starts torch with the CPUs it may run on instead.
    import os
    import sys

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr("builtins.open", _fake_cpu_max("max 100000"))
    assert cli.usable_cpus() == 3
    monkeypatch.setattr("builtins.open", _fake_cpu_max("150000 100000"))
    assert cli.usable_cpus() == 2  # a quota of 1.5 CPUs (a container's --cpus 1.5): two threads
    monkeypatch.undo()

    stand_in = _StandInTorch(threads=1)  # what torch 2.13 starts with on "1 core x 2 threads"
    monkeypatch.setitem(sys.modules, "torch", stand_in)
    monkeypatch.setattr(cli, "usable_cpus", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    cli._default_threads()
    assert stand_in.threads == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's value wins, even above torch's own cap
    cli._default_threads()
    assert stand_in.threads == 3
    monkeypatch.undo()
    # and a fresh command process has it before it parses its arguments
    assert _threads_of_a_fresh_command({}) == cli.usable_cpus()
    assert _threads_of_a_fresh_command({"OMP_NUM_THREADS": "1"}) == 1


def test_a_host_process_keeps_its_own_thread_count(monkeypatch):
    # a program (or a test) that already runs torch and calls cli.main keeps its threads: changing them
    # there made a later fork (`mmsd synth`'s pool) hang in OpenMP
    import mmsd.commands.catalog

    monkeypatch.setattr(cli, "usable_cpus", lambda: torch.get_num_threads() + 1)
    monkeypatch.setattr(mmsd.commands.catalog, "run", lambda args: 0)
    before = torch.get_num_threads()
    assert cli.main(["models"]) == 0
    assert torch.get_num_threads() == before


def _fake_cpu_max(text: str):
    real_open = open

    def fake_open(path, *args, **kwargs):
        if str(path) == "/sys/fs/cgroup/cpu.max":
            return io.StringIO(text)
        return real_open(path, *args, **kwargs)

    return fake_open
