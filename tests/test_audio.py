from __future__ import annotations

from fractions import Fraction

import librosa
import numpy as np
import pytest

from mmsd.media.audio import MfccConfig, mfcc_for_frames, vector_centres, window
from mmsd.media.timing import FrameTiming

SR = 16000
RATES = [Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(60)]


def quiet(seconds: float) -> np.ndarray:
    return (1e-4 * np.random.default_rng(0).standard_normal(round(seconds * SR))).astype(np.float32)


def burst_at_frame(frame: int, fps: Fraction, seconds: float = 2.0) -> np.ndarray:
    """Near-silence with a 1 kHz tone exactly covering video frame `frame`."""
    samples = quiet(seconds)
    start, end = round(SR * frame / fps), round(SR * (frame + 1) / fps)
    t = np.arange(end - start) / SR
    samples[start:end] += 0.5 * np.sin(2 * np.pi * 1000 * t)
    return samples


@pytest.mark.parametrize("fps", RATES)
def test_shapes_and_centres(fps):
    num_frames = int(fps)  # one second of video
    cfg = MfccConfig()
    features = mfcc_for_frames(quiet(1.5), num_frames, fps, cfg)
    assert features.shape == (num_frames, cfg.per_frame, cfg.n_mfcc)
    assert features.dtype == np.float32
    centres = vector_centres(num_frames, fps, cfg)
    expected = [round(float(SR * (t + (k + 0.5) / cfg.per_frame) / fps)) for t in range(num_frames) for k in range(4)]
    assert np.array_equal(centres, expected)


@pytest.mark.parametrize("fps", RATES)
def test_tone_burst_shows_in_its_frame_only(fps):
    frame = 20
    features = mfcc_for_frames(burst_at_frame(frame, fps), 50, fps)
    energy = features[:, :, 0]  # c0 follows log energy
    inner = energy[frame, 1:3]  # the two vectors whose windows sit in the middle of the burst
    assert inner.min() > energy[frame - 10].max() + 50
    assert inner.min() > energy[frame + 10].max() + 50
    around = window(features, frame + 10, 2)[:, :, 0]
    assert around.max() < inner.min() - 50


def test_matches_librosa_at_an_integer_hop():
    # at 25 fps and K = 4 the centres are odd multiples of 80 samples: librosa frames 1, 3, 5, ...
    fps = Fraction(25)
    samples = burst_at_frame(7, fps, seconds=1.0) + quiet(1.0) * 100
    cfg = MfccConfig()
    mel = librosa.feature.melspectrogram(
        y=samples, sr=SR, n_fft=cfg.n_fft, hop_length=80, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )
    reference = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=cfg.n_mfcc).T[1::2]
    features = mfcc_for_frames(samples, 25, fps, cfg).reshape(-1, cfg.n_mfcc)
    np.testing.assert_allclose(features, reference[:100], rtol=1e-3, atol=1e-2)


def test_missing_and_short_audio_give_zeros():
    fps = Fraction(30000, 1001)
    assert not mfcc_for_frames(np.zeros(0, np.float32), 12, fps).any()
    features = mfcc_for_frames(quiet(0.5), 30, fps)
    covered = features.reshape(-1, 20).any(axis=1).reshape(30, 4)
    assert covered[:14].all() and not covered[16:].any()
    assert mfcc_for_frames(quiet(0.5), 0, fps).shape == (0, 4, 20)


def test_window_replicates_edges():
    features = np.arange(5)[:, None] * np.ones((1, 3))
    assert window(features, 0, 2)[:, 0].tolist() == [0, 0, 0, 1, 2]
    assert window(features, 4, 2)[:, 0].tolist() == [2, 3, 4, 4, 4]
    assert window(features, 2, 1)[:, 0].tolist() == [1, 2, 3]
    assert window(features[:1], 0, 3).shape == (7, 3)
    with pytest.raises(ValueError, match="outside 0..4"):
        window(features, 5, 1)


def test_rejects_bad_fps():
    with pytest.raises(ValueError, match="fps must be positive"):
        mfcc_for_frames(quiet(0.1), 3, Fraction(0))


def test_a_frame_after_a_gap_hears_its_own_time():
    # 30 fps, then a 100 ms gap before frame 4: frame 4 is at 200 ms, not at 4/30 s = 133 ms
    timing = FrameTiming.from_pts([0, 1, 2, 3, 6, 7, 8], Fraction(1, 30))
    assert timing.variable and timing.period == Fraction(1, 30)
    samples = quiet(0.5)
    start, end = round(SR * 0.2), round(SR * (0.2 + 1 / 30))  # a tone burst over frame 4's own interval
    samples[start:end] += 0.5 * np.sin(2 * np.pi * 1000 * np.arange(end - start) / SR)
    cfg = MfccConfig()
    centres = vector_centres(7, timing, cfg).reshape(7, 4)
    # vector k of frame 4 is centred at 200 ms + (k + 0.5) / (4 * 30) s
    assert centres[4].tolist() == [round(SR * (0.2 + (k + 0.5) / 120)) for k in range(4)]
    features = mfcc_for_frames(samples, 7, timing, cfg)
    energy = features[:, :, 0]  # c0 follows log energy
    assert energy[4, 1:3].min() > energy[3].max() + 50  # the burst is in frame 4's window, not frame 3's
    by_index = mfcc_for_frames(samples, 7, Fraction(30), cfg)[:, :, 0]
    assert by_index[4].max() < energy[4, 1:3].min() - 50  # cutting at index / fps misses it


def test_a_constant_timing_gives_the_rate_s_features():
    fps = Fraction(30000, 1001)
    samples = quiet(1.0) * 100
    assert np.array_equal(mfcc_for_frames(samples, 20, FrameTiming.constant(fps)), mfcc_for_frames(samples, 20, fps))
    # the same video stored in a 1/30000 time base, its timestamps read from a file
    read = FrameTiming.from_pts([1001 * t for t in range(20)], Fraction(1, 30000), rates=[fps])
    assert not read.variable and read.fps == fps
    assert np.array_equal(vector_centres(20, read), vector_centres(20, fps))
