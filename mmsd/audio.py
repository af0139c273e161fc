"""MFCC features aligned to video frames: the audio input of MMSD-Net's audio branch.

The paper says only "MFCC". Our settings (``MfccConfig``) and why:

* 16 kHz mono: speech carries its phonetic cues below 8 kHz; RAVDESS's 48 kHz adds none.
* n_fft 512 (32 ms Hann window): the usual 20-40 ms speech frame, short enough to
  resolve a plosive, long enough to resolve the pitch harmonics of a low voice.
* 40 mel bands from 50 Hz to 8 kHz and 20 cepstra: the common speech front end;
  20 rather than 13 coefficients keep some spectral detail for the mouth shape.
* K = 4 vectors per video frame: 100 vectors/s at 25 fps, 120 at 30 fps, the usual
  10 ms MFCC hop.
* log-mel without a global ``top_db`` floor, so each vector depends only on its own
  32 ms of audio (the streaming decoder sees the same features as training).

Alignment. Video frame t covers [t/fps, (t+1)/fps); it owns K vectors whose windows are
centred at (t + (k + 0.5)/K) / fps, k = 0..K-1. 16000 / (30 K) is not an integer hop,
so instead of a hop the window of every vector is cut out at its exact centre, rounded
to the nearest sample (a 62.5 us error at 16 kHz), with zeros outside the signal as in
librosa's ``center=True``. Vectors whose centre lies past the end of the audio (no or
short audio) are all-zero, so "no audio" reads as a constant input.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import librosa
import numpy as np


@dataclass(frozen=True)
class MfccConfig:
    sample_rate: int = 16000
    n_mfcc: int = 20  # M
    per_frame: int = 4  # K MFCC vectors per video frame
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 50.0
    fmax: float = 8000.0


def vector_centres(num_frames: int, fps: Fraction, cfg: MfccConfig = MfccConfig()) -> np.ndarray:
    """Sample index of each vector's window centre: int64 (T * K,), vector (t, k) at t * K + k.

    Exact rational arithmetic: round(sample_rate * (t + (k + 0.5)/K) / fps), halves rounded up.
    """
    fps = Fraction(fps)
    half_steps = 2 * np.arange(num_frames * cfg.per_frame, dtype=np.int64) + 1  # 2(tK + k) + 1
    numerator = half_steps * cfg.sample_rate * fps.denominator
    denominator = 2 * cfg.per_frame * fps.numerator
    return (2 * numerator + denominator) // (2 * denominator)


def mfcc_for_frames(
    samples: np.ndarray, num_frames: int, fps: Fraction, cfg: MfccConfig = MfccConfig()
) -> np.ndarray:
    """MFCC vectors per video frame.

    Args:
        samples: mono float32 (S,) at ``cfg.sample_rate``, sample 0 at the first frame's start.
        num_frames: T, the number of video frames.
        fps: exact video frame rate.
    Returns:
        float32 (T, K, M); zeros for vectors whose centre lies past the end of the audio.
    """
    fps = Fraction(fps)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    samples = np.asarray(samples, np.float32).reshape(-1)
    out = np.zeros((num_frames * cfg.per_frame, cfg.n_mfcc), np.float32)
    centres = vector_centres(num_frames, fps, cfg)
    centres = centres[centres < samples.size]
    if centres.size:
        out[: centres.size] = _mfcc_at(samples, centres, cfg)
    return out.reshape(num_frames, cfg.per_frame, cfg.n_mfcc)


def _mfcc_at(samples: np.ndarray, centres: np.ndarray, cfg: MfccConfig) -> np.ndarray:
    """MFCC of the n_fft windows centred at ``centres`` (N,): float32 (N, M)."""
    half = cfg.n_fft // 2
    padded = np.pad(samples, (half, half))
    frames = padded[centres[:, None] + np.arange(cfg.n_fft)]  # (N, n_fft), centre at index half
    window, mel_basis = _filters(cfg)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (N, n_fft/2 + 1)
    log_mel = librosa.power_to_db(power @ mel_basis.T, top_db=None)  # (N, n_mels)
    return librosa.feature.mfcc(S=log_mel.T, n_mfcc=cfg.n_mfcc).T.astype(np.float32)


@lru_cache(maxsize=4)
def _filters(cfg: MfccConfig) -> tuple[np.ndarray, np.ndarray]:
    """Periodic Hann window (n_fft,) and Slaney mel filter bank (n_mels, n_fft/2 + 1), as librosa's defaults."""
    hann = librosa.filters.get_window("hann", cfg.n_fft, fftbins=True)
    mel_basis = librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )
    return hann, mel_basis


def window(features: np.ndarray, t: int, radius: int) -> np.ndarray:
    """features[t - radius : t + radius + 1] along axis 0, repeating the first/last row at the edges.

    Args:
        features: (T, ...) per-frame features, e.g. MFCC (T, K, M).
    Returns:
        (2 * radius + 1, ...).
    """
    length = len(features)
    if not 0 <= t < length:
        raise ValueError(f"frame index {t} is outside 0..{length - 1}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    return features[np.clip(np.arange(t - radius, t + radius + 1), 0, length - 1)]
