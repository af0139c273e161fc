from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mmsd.models
from mmsd import emotions
from mmsd.errors import MmsdError
from mmsd.media.audio import MfccConfig, iter_mfcc, mfcc_for_frame_range, mfcc_for_frames, normalise
from mmsd.media.codec import CodecError, VideoWriter, iter_audio, probe, read_audio, read_frames
from mmsd.media.sideinfo import SideInfo
from mmsd.media.timing import FrameTiming
from mmsd.models import build_model, load_config
from mmsd.models.output import RestorationOutput
from mmsd.models.weights import save_model
from mmsd.restore.restorer import Restorer

FULL = {"radius": 2, "causal": False, "audio": True, "emotion": True, "mfcc_per_frame": 4, "n_mfcc": 20}


class Recorder(nn.Module):
    """Stand-in network: records its inputs, returns the reference frame repeated 4x per axis."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.causal = config.get("causal", False)
        self.gain = nn.Parameter(torch.ones(1))
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]] = []

    def forward(self, lr, mfcc=None, emotion=None):
        self.calls.append((lr.clone(), mfcc, emotion))
        reference = lr[:, -1] if self.causal else lr[:, lr.shape[1] // 2]  # (B, 3, H, W)
        return RestorationOutput(image=reference.repeat_interleave(4, -1).repeat_interleave(4, -2) * self.gain)


def numbered_frames(count: int, pulled: list[int] | None = None, size=(6, 8)):
    """Frames whose every pixel is 10 x their index (mod 25); records how many were pulled."""
    for index in range(count):
        if pulled is not None:
            pulled.append(index)
        yield np.full((*size, 3), 10 * (index % 25), np.uint8)


def windows(recorder: Recorder) -> list[list[int]]:
    """Frame index of each window position, per restored frame, from the recorded inputs, in frame order
    (workers record their calls in any order; a later frame's window is never lexicographically smaller)."""
    rows = []
    for lr, _, _ in recorder.calls:
        rows.extend((lr[:, :, 0, 0, 0] * 255 / 10).round().long().tolist())  # (B, T)
    return sorted(rows)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("causal", [False, True])
def test_windows_replicate_the_edges(causal, workers):
    config = {**FULL, "audio": False, "emotion": False, "causal": causal}
    recorder = Recorder(config)
    restorer = Restorer(recorder, config=config, batch_size=3, workers=workers)
    out = list(restorer.restore_frames(numbered_frames(7)))
    assert len(out) == 7
    assert out[0].shape == (24, 32, 3) and out[0].dtype == np.uint8
    assert [int(frame[0, 0, 0]) for frame in out] == [10 * t for t in range(7)]
    if causal:
        assert windows(recorder)[:2] == [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]
        assert windows(recorder)[6] == [2, 3, 4, 5, 6]
    else:
        assert windows(recorder) == [
            [0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 5],
            [2, 3, 4, 5, 6], [3, 4, 5, 6, 6], [4, 5, 6, 6, 6],
        ]
    assert all(mfcc is None and emotion is None for _, mfcc, emotion in recorder.calls)


def test_single_frame_video():
    config = {**FULL, "audio": False, "emotion": False}
    recorder = Recorder(config)
    assert len(list(Restorer(recorder, config=config).restore_frames(numbered_frames(1)))) == 1
    assert windows(recorder) == [[0, 0, 0, 0, 0]]


@pytest.mark.parametrize("workers", [1, 3])
def test_restore_frames_pulls_lazily(workers):
    """Frame t comes out once frames up to t + latency_frames are in (look-ahead 2, batch 4, the workers')."""
    config = {**FULL, "audio": False, "emotion": False}
    pulled: list[int] = []
    restorer = Restorer(Recorder(config), config=config, batch_size=4, workers=workers)
    assert restorer.latency_frames == 2 + 4 * workers - 1
    outputs = restorer.restore_frames(numbered_frames(1000, pulled))
    next(outputs)
    assert len(pulled) <= 1 + restorer.latency_frames
    assert not torch.is_inference_mode_enabled()  # no grad-mode leak into the caller between frames
    list(itertools.islice(outputs, 40))
    assert len(pulled) <= 41 + restorer.latency_frames
    outputs.close()  # a consumer that stops early: the workers' jobs are dropped, nothing hangs


def test_audio_and_emotion_follow_the_window():
    recorder = Recorder(FULL)
    restorer = Restorer(recorder, config=FULL, batch_size=2, workers=1)  # calls recorded in frame order
    mfcc = (np.full((4, 20), t, np.float32) for t in range(5))
    list(restorer.restore_frames(numbered_frames(5), mfcc=mfcc, emotion=[0, 0, 4, 4, 9]))
    features = torch.cat([m for _, m, _ in recorder.calls])  # (5, T, K, M)
    assert features.shape == (5, 5, 4, 20)
    assert features[:, :, 0, 0].long().tolist() == windows(recorder)
    assert torch.cat([e for _, _, e in recorder.calls]).tolist() == [0, 0, 4, 4, 9]


def test_a_cmvn_model_hears_the_running_normalisation_of_the_raw_features():
    config = {**FULL, "mfcc_norm": "cmvn"}
    recorder = Recorder(config)
    raw = np.random.default_rng(0).normal(30.0, 8.0, (7, 4, 20)).astype(np.float32)
    list(Restorer(recorder, config=config, batch_size=3, workers=1).restore_frames(numbered_frames(7), mfcc=iter(raw)))
    fed = torch.cat([m for _, m, _ in recorder.calls])[:, 2].numpy()  # centre of each window: (T, K, M)
    np.testing.assert_allclose(fed, normalise(raw, "cmvn"), atol=1e-6)
    assert np.abs(fed[1:].mean()) < 1.0  # not the raw features (mean 30)


def test_missing_audio_and_emotion_become_silence_and_neutral():
    recorder = Recorder(FULL)
    list(Restorer(recorder, config=FULL, batch_size=4).restore_frames(numbered_frames(3)))
    _, mfcc, emotion = recorder.calls[0]
    assert mfcc.shape == (3, 5, 4, 20) and not mfcc.any()
    assert emotion.tolist() == [emotions.NEUTRAL.id] * 3


def test_bad_frames_are_rejected():
    restorer = Restorer("bicubic")
    with pytest.raises(ValueError, match="differs from the first frame"):
        list(restorer.restore_frames([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)]))
    with pytest.raises(ValueError, match="uint8 RGB"):
        list(restorer.restore_frames([np.zeros((8, 8), np.uint8)]))


def test_bicubic_matches_interpolate():
    frame = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)  # odd size
    out = next(Restorer("bicubic").restore_frames([frame]))
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    expected = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    expected = (expected * 255).round().byte()[0].permute(1, 2, 0).numpy()
    assert out.shape == (36, 44, 3)
    assert np.array_equal(out, expected)


def test_model_files(tmp_path, monkeypatch):
    monkeypatch.setattr(mmsd.models, "build_model", lambda name, config: Recorder(config), raising=False)
    good = tmp_path / "tiny.safetensors"
    save_model(good, name="recorder", config={**FULL, "radius": 1}, state={"gain": torch.full((1,), 2.0)})
    restorer = Restorer(good)
    assert (restorer.name, restorer.radius, restorer.uses_audio) == ("recorder", 1, True)
    assert restorer.model.gain.item() == 2.0

    wrong = tmp_path / "wrong.safetensors"
    save_model(wrong, name="recorder", config=FULL, state={"gain": torch.ones(3)})
    with pytest.raises(MmsdError, match="weights do not fit model 'recorder'") as info:
        Restorer(wrong)
    assert "\n" not in str(info.value)

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is no safetensors file")
    with pytest.raises(MmsdError, match="not a safetensors weights file"):
        Restorer(junk)
    with pytest.raises(MmsdError, match="no model 'nosuchmodel'.*available: bicubic"):
        Restorer("nosuchmodel")


def test_streaming_mfcc_equals_whole_file_mfcc():
    rng = np.random.default_rng(1)
    fps = Fraction(30000, 1001)
    for length in (0, 300, 16000 * 2 + 77):
        samples = (0.1 * rng.standard_normal(length)).astype(np.float32)
        expected = mfcc_for_frames(samples, 80, fps)
        cuts = np.cumsum(rng.integers(1, 2500, 100))
        chunks = np.split(samples, cuts[cuts < length])
        got = np.stack(list(itertools.islice(iter_mfcc(iter(chunks), fps, frames_per_step=7), 80)))
        assert np.array_equal(got, expected)
        # a chunk from the middle gives the same frames as the whole signal
        assert np.array_equal(mfcc_for_frame_range(samples[8000:], 8000, 20, 5, fps, total=length), expected[20:25])
    with pytest.raises(ValueError, match="misses samples"):
        mfcc_for_frame_range(np.zeros(100, np.float32), 8000, 20, 5, fps)


def test_streaming_mfcc_of_a_variable_frame_rate_equals_whole_file_mfcc():
    rng = np.random.default_rng(2)
    steps = rng.choice([1, 1, 1, 3, 6], 79)  # 1/30 s steps and gaps of 100 and 200 ms
    timing = FrameTiming.from_pts(np.concatenate([[0], np.cumsum(steps)]).tolist(), Fraction(1, 30))
    samples = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    expected = mfcc_for_frames(samples, 80, timing)
    cuts = np.cumsum(rng.integers(1, 2500, 100))
    got = np.stack(list(itertools.islice(iter_mfcc(iter(np.split(samples, cuts[cuts < samples.size])), timing,
                                                   frames_per_step=7), 80)))
    assert np.array_equal(got, expected)


def write_clip(path, *, frames=12, size=(40, 24), audio=True, comment=None, fps=Fraction(25)):
    width, height = size
    rng = np.random.default_rng(0)
    with VideoWriter(path, width=width, height=height, fps=fps, crf=18, preset="ultrafast",
                     audio_rate=16000 if audio else None,
                     metadata={"comment": comment} if comment else None) as writer:
        for _ in range(frames):
            writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        if audio:
            t = np.arange(round(frames / fps * 16000)) / 16000
            writer.write_audio((0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))


def test_iter_audio_equals_read_audio(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path)
    for rate in (16000, 44100):
        assert np.array_equal(np.concatenate(list(iter_audio(path, rate))), read_audio(path, rate))


def test_restore_file_feeds_side_information_and_audio(tmp_path, monkeypatch):
    monkeypatch.setattr(mmsd.models, "build_model", lambda name, config: Recorder(config), raising=False)
    weights = tmp_path / "tiny.safetensors"
    save_model(weights, name="recorder", config=FULL, state={"gain": torch.ones(1)})
    src = tmp_path / "low.mp4"
    write_clip(src, comment=SideInfo(segments=((0, 3), (5, 9))).to_json())
    restorer = Restorer(weights, batch_size=5, workers=1)  # calls recorded in frame order
    report = restorer.restore_file(src, tmp_path / "out.mp4", progress=False, on_warning=pytest.fail)
    assert (report.frames, report.width, report.height, report.emotion_source) == (12, 160, 96, "side information")
    assert report.model == str(weights)  # the model as the user named it
    calls = restorer.model.calls
    assert torch.cat([e for _, _, e in calls]).tolist() == [3] * 5 + [9] * 7
    expected = mfcc_for_frames(read_audio(src), 12, Fraction(25), MfccConfig())
    fed = torch.cat([m for _, m, _ in calls])[:, 2].numpy()  # centre of each window: (T, K, M)
    assert np.allclose(fed, expected)
    assert probe(tmp_path / "out.mp4").num_frames == 12

    # --emotion overrides; no audio track -> silence and a warning
    silent = tmp_path / "silent.mp4"
    write_clip(silent, audio=False)
    messages: list[str] = []
    restorer = Restorer(weights)
    report = restorer.restore_file(silent, tmp_path / "out2.mp4", emotion="sad-strong", progress=False,
                                   on_warning=messages.append)
    assert report.emotion_source == "argument" and report.audio == "none"
    assert len(messages) == 1 and "no audio track" in messages[0]
    assert not any(m.any() for _, m, _ in restorer.model.calls)
    assert {e for _, _, e in restorer.model.calls for e in e.tolist()} == {emotions.parse("sad-strong").id}
    assert not probe(tmp_path / "out2.mp4").has_audio

    # no side information, no emotion: neutral with a warning
    messages.clear()
    Restorer(weights).restore_file(silent, tmp_path / "out3.mp4", progress=False, on_warning=messages.append)
    assert any("assuming neutral" in m for m in messages)


def test_restore_file_feeds_each_frame_the_sound_at_its_own_time(tmp_path, monkeypatch):
    monkeypatch.setattr(mmsd.models, "build_model", lambda name, config: Recorder(config), raising=False)
    weights = tmp_path / "tiny.safetensors"
    save_model(weights, name="recorder", config=FULL, state={"gain": torch.ones(1)})
    src = tmp_path / "vfr.mp4"
    timing = FrameTiming.from_pts([0, 1, 2, 3, 6, 7, 8, 11, 12, 13], Fraction(1, 30))  # two 100 ms gaps
    rng = np.random.default_rng(0)
    with VideoWriter(src, width=40, height=24, timing=timing, preset="ultrafast", audio_rate=16000) as writer:
        for _ in range(10):
            writer.write(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
        writer.write_audio((0.3 * rng.standard_normal(16000 * 14 // 30)).astype(np.float32))
    restorer = Restorer(weights, batch_size=3, workers=1)  # calls recorded in frame order
    report = restorer.restore_file(src, tmp_path / "out.mp4", progress=False, on_warning=lambda m: None)
    assert report.timing == timing
    fed = torch.cat([m for _, m, _ in restorer.model.calls])[:, 2].numpy()  # centre of each window: (T, K, M)
    assert np.allclose(fed, mfcc_for_frames(read_audio(src), 10, timing))
    assert not np.allclose(fed[4:], mfcc_for_frames(read_audio(src), 10, timing.fps)[4:])


def test_restore_file_interrupted_leaves_nothing(tmp_path, monkeypatch):
    src = tmp_path / "low.mp4"
    write_clip(src, frames=12)
    restorer = Restorer("bicubic", batch_size=2)
    real = restorer.model.forward
    calls = iter(range(100))

    def forward(*args, **kwargs):
        if next(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(restorer.model, "forward", forward)
    with pytest.raises(KeyboardInterrupt):
        restorer.restore_file(src, tmp_path / "out.mp4", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["low.mp4"]
    assert len(list(read_frames(src))) == 12


def test_overlapped_decode_writes_the_same_frames_as_the_serial_one(tmp_path, monkeypatch):
    src = tmp_path / "low.mp4"
    write_clip(src, frames=12)
    restorer = Restorer("bicubic")
    encoded: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for overlap in (True, False):
        real = VideoWriter.write
        monkeypatch.setattr(VideoWriter, "write",
                            lambda self, frame, o=overlap, real=real: (encoded[o].append(frame.copy()), real(self, frame)))
        report = restorer.restore_file(src, tmp_path / f"out-{overlap}.mp4", progress=False, overlap=overlap)
        monkeypatch.undo()
        assert report.frames == 12 and probe(tmp_path / f"out-{overlap}.mp4").num_frames == 12
    assert len(encoded[True]) == 12
    assert all(np.array_equal(a, b) for a, b in zip(encoded[True], encoded[False], strict=True))


def test_an_encoding_failure_behind_the_network_still_leaves_nothing(tmp_path, monkeypatch):
    src = tmp_path / "low.mp4"
    write_clip(src, frames=12)
    real = VideoWriter.write
    written = itertools.count()

    def write(self, frame):
        if next(written) == 5:
            raise CodecError("disk full")
        real(self, frame)

    monkeypatch.setattr(VideoWriter, "write", write)
    with pytest.raises(CodecError, match="disk full"):
        Restorer("bicubic").restore_file(src, tmp_path / "out.mp4", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["low.mp4"]


def test_read_ahead_keeps_order_raises_in_place_and_stops_when_closed():
    from mmsd.restore.threads import read_ahead

    assert list(read_ahead(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield from range(4)
        raise ValueError("bad packet")

    seen = []
    with pytest.raises(ValueError, match="bad packet"):
        for item in read_ahead(failing(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3]

    produced = []

    def endless():
        for i in itertools.count():
            produced.append(i)
            yield i

    reader = read_ahead(endless(), depth=2)
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    reader.close()  # joins the producer thread
    count = len(produced)
    assert count <= 3 + 2 + 2  # consumed + queued + the one in hand when it stopped
    assert len(produced) == count  # nothing more is produced after close


class PlainForward(nn.Module):
    """The network without its frame_features method: the Restorer then runs the plain forward."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, lr, mfcc=None, emotion=None):
        return self.network(lr, mfcc, emotion)


def test_streaming_extracts_each_frame_once_and_gives_the_plain_output():
    config = dataclasses.asdict(load_config(
        "small", channels=8, deform_groups=2, attention_channels=8, audio_hidden=8, audio_layers=1, au_hidden=8,
        emotion_hidden=8, recon_blocks=1, trunk_blocks=1, upsample_channels=8, extract_blocks=1,
    ))
    torch.manual_seed(0)
    model = build_model("mmsd", config).eval()
    for p in model.parameters():  # away from the zero/identity init, so every branch matters
        p.data.add_(torch.randn_like(p) * 0.1)
    extracted: list[int] = []
    real = model.frame_features
    model.frame_features = lambda frames: extracted.append(len(frames)) or real(frames)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (11, 12, 20, 3), dtype=np.uint8)
    mfcc = rng.standard_normal((11, 4, 20)).astype(np.float32)
    states = [0, 0, 3, 3, 3, 7, 7, 7, 7, 1, 1]
    fast = list(Restorer(model, config=config, batch_size=4).restore_frames(frames, mfcc=mfcc, emotion=states))
    plain = list(Restorer(PlainForward(model), config=config, batch_size=4).restore_frames(
        frames, mfcc=mfcc, emotion=states))
    assert sum(extracted) == 11  # once per frame, not once per window (55)
    assert len(fast) == len(plain) == 11
    for a, b in zip(fast, plain):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # uint8 rounding of equal floats


def test_real_mmsd_network_from_a_model_file(tmp_path):
    """A tiny MMSD-Net saved with save_model restores through the registry with audio and emotion."""
    config = dataclasses.asdict(load_config(
        "small", channels=8, deform_groups=2, attention_channels=8, audio_hidden=8, audio_layers=1, au_hidden=8,
        emotion_hidden=8, recon_blocks=1, trunk_blocks=1, upsample_channels=8, extract_blocks=1,
    ))
    path = tmp_path / "tiny-mmsd.safetensors"
    save_model(path, name="mmsd", config=config, state=build_model("mmsd", config).state_dict())
    restorer = Restorer(path, batch_size=3)
    assert (restorer.name, restorer.uses_audio, restorer.uses_emotion) == ("mmsd", True, True)
    mfcc = np.random.default_rng(0).standard_normal((3, 4, 20)).astype(np.float32)
    out = list(restorer.restore_frames(numbered_frames(3, size=(12, 20)), mfcc=mfcc, emotion="angry-strong"))
    assert len(out) == 3 and out[0].shape == (48, 80, 3) and out[0].dtype == np.uint8


def test_a_shipped_name_loads_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    """A folder `mmsd/` in the working directory (a checkout's package) does not hide the name."""
    import mmsd.restore.loading

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    save_model(shipped / "mmsd.safetensors", name="bicubic", config={"radius": 1, "causal": True, "scale": 4},
               state={})
    (tmp_path / "mmsd").mkdir()
    monkeypatch.setattr(mmsd.models.weights, "SHIPPED_DIR", shipped)
    monkeypatch.delenv(mmsd.models.weights.MODELS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    restorer = Restorer("mmsd")
    assert (restorer.radius, restorer.causal) == (1, True)
    assert (restorer.label, restorer.name) == ("mmsd", "bicubic")  # reports say the name given, not the architecture
    assert mmsd.restore.loading.shipped_models() == ["bicubic", "mmsd"]


def test_the_audio_encoder_runs_on_one_thread_and_the_rest_keeps_all():
    config = dataclasses.asdict(load_config(
        "small", channels=8, deform_groups=2, attention_channels=8, audio_hidden=8, audio_layers=1, au_hidden=8,
        emotion_hidden=8, recon_blocks=1, trunk_blocks=1, upsample_channels=8, extract_blocks=1,
    ))
    network = build_model("mmsd", config).eval()
    threads_seen: list[int] = []
    network.audio.encoder.lstm.register_forward_hook(lambda *_: threads_seen.append(torch.get_num_threads()))
    network.reconstruction.register_forward_hook(lambda *_: threads_seen.append(torch.get_num_threads()))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 24, 40, 3), dtype=np.uint8)
    mfcc = rng.standard_normal((3, 4, 20)).astype(np.float32)
    with torch.inference_mode():
        expected = network(torch.from_numpy(frames[[0, 0, 0, 1, 2]]).permute(0, 3, 1, 2).float().div(255).unsqueeze(0),
                           torch.from_numpy(mfcc[[0, 0, 0, 1, 2]]).unsqueeze(0), torch.tensor([0])).image
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        restored = list(Restorer(network, config=config, workers=1).restore_frames(frames, mfcc=mfcc, emotion=0))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert threads_seen[-6:] == [1, 2] * 3  # per window: the BiLSTM on one thread, reconstruction on two
    first = expected.clamp(0, 1).mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.abs(restored[0].astype(int) - first.astype(int)).max() <= 1


def test_workers_restore_each_frame_as_one_thread_alone_would():
    """Frames restored at once on worker threads (one torch thread each) equal the one-at-a-time output,
    each frame's features are still extracted once, and the caller's thread count is left as it was."""
    config = dataclasses.asdict(load_config(
        "small", channels=8, deform_groups=2, attention_channels=8, audio_hidden=8, audio_layers=1, au_hidden=8,
        emotion_hidden=8, recon_blocks=1, trunk_blocks=1, upsample_channels=8, extract_blocks=1,
    ))
    torch.manual_seed(0)
    model = build_model("mmsd", config).eval()
    for p in model.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    extracted: list[int] = []
    threads_seen: set[int] = set()
    real = model.frame_features
    model.frame_features = lambda frames: extracted.append(len(frames)) or real(frames)
    model.reconstruction.register_forward_hook(lambda *_: threads_seen.add(torch.get_num_threads()))
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (9, 12, 20, 3), dtype=np.uint8)
    mfcc = rng.standard_normal((9, 4, 20)).astype(np.float32)
    states = [0, 0, 3, 3, 3, 7, 7, 1, 1]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        alone = list(Restorer(model, config=config, workers=1).restore_frames(frames, mfcc=mfcc, emotion=states))
        threads_seen.clear()
        extracted.clear()
        restorer = Restorer(model, config=config)
        assert restorer.workers == 2  # the default on the CPU: one per torch thread
        together = list(restorer.restore_frames(frames, mfcc=mfcc, emotion=states))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert threads_seen == {1}
    assert sum(extracted) == 9
    assert len(together) == 9
    for a, b in zip(alone, together):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # uint8 rounding of equal floats


def test_a_failing_worker_raises_in_the_caller():
    class Failing(Recorder):
        def forward(self, lr, mfcc=None, emotion=None):
            if len(self.calls) >= 3:
                raise RuntimeError("out of memory in frame 3")
            return super().forward(lr, mfcc, emotion)

    config = {**FULL, "audio": False, "emotion": False}
    restorer = Restorer(Failing(config), config=config, workers=2)
    with pytest.raises(RuntimeError, match="out of memory"):
        list(restorer.restore_frames(numbered_frames(20)))


def test_causal_models_default_to_one_worker_and_keep_zero_latency():
    config = {**FULL, "audio": False, "emotion": False, "causal": True}
    restorer = Restorer(Recorder(config), config=config)
    assert restorer.workers == 1 and restorer.latency_frames == 0
    with pytest.raises(MmsdError, match="workers must be >= 1"):
        Restorer(Recorder(config), config=config, workers=0)
