"""Voice variants of a cache's audio (`mmsd voices CACHE`, `mmsd.commands.voices`), for training an audio
branch that a voice unlike the training voices does not confuse (issue 13, part 3).

The synthetic corpus speaks with a few espeak voices; a user's speaker is a human with
another pitch, another vocal tract, another microphone and room, and an audio track that
went through a low-rate AAC encoder. For every clip with audio, this writes
``voices.npz`` beside its ``arrays.npz``: the raw MFCC (V, T, K, M) of V variants of its
audio, each the clip's own sound through a random chain of

* a pitch and formant shift of -4..+4 semitones (a phase-vocoder time stretch, then a
  resampling back to the clip's length: it moves the harmonics and the spectral envelope
  together, as a different vocal tract would; numpy, because librosa's numba version costs
  5-10 s of compilation in every new process);
* a gain of -12..+6 dB;
* with probability 1/2, a room: convolution with an exponentially decaying noise impulse
  response (RT60 0.15-0.6 s), mixed 20-60 % wet;
* with probability 0.7, noise: white or pink (1/f), at 5-30 dB SNR;
* with probability 0.3, a telephone band (resampled to 8 kHz and back);
* with probability 1/2, low-rate AAC (mono, 16-32 kbps) and back.

The timing never changes (no tempo change: the mouth must stay in sync with the sound).
Deterministic per (seed, clip key, variant). `mmsd train --voice-augment P` then gives a
share P of the training samples one of these variants instead of the clip's own audio;
with the MFCC normalisation of `mmsd.media.audio` (``mfcc_norm=cmvn``) this is how the audio
branch learns the mouth from what is said rather than from who says it. A re-run skips
clips that already have their variants; files are written atomically.
"""

from __future__ import annotations

import io
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import librosa
import numpy as np
from scipy.signal import fftconvolve, istft, stft
from tqdm import tqdm

from mmsd.data.dataset import VOICES_FILE, ClipIndex, ClipMeta
from mmsd.errors import MmsdError
from mmsd.media import audio, codec
from mmsd.media.fileio import atomic_path

DEFAULT_VARIANTS = 3


def augment_voice(samples: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One random variant of mono float32 speech (S,) at ``sample_rate``: float32 (S,), same timing."""
    y = np.asarray(samples, np.float32).reshape(-1)
    if y.size == 0:
        return y.copy()
    y = pitch_shift(y, float(rng.uniform(-4.0, 4.0)))
    y = y * np.float32(10.0 ** (rng.uniform(-12.0, 6.0) / 20.0))
    if rng.random() < 0.5:
        y = _room(y, sample_rate, rng)
    if rng.random() < 0.7:
        y = _noise(y, rng)
    if rng.random() < 0.3:
        y = librosa.resample(librosa.resample(y, orig_sr=sample_rate, target_sr=8000), orig_sr=8000,
                             target_sr=sample_rate)[: y.size]
    if rng.random() < 0.5:
        y = aac_round_trip(y, sample_rate, int(rng.choice([16000, 24000, 32000])))
    out = np.zeros(samples.size, np.float32)
    out[: min(y.size, out.size)] = y[: out.size]
    return np.clip(out, -1.0, 1.0)


def pitch_shift(y: np.ndarray, semitones: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Mono float32 (S,) shifted by ``semitones`` (pitch and formants), same length (S,)."""
    rate = 2.0 ** (semitones / 12.0)
    _, _, spec = stft(y, nperseg=n_fft, noverlap=n_fft - hop, boundary="even")  # (F, N)
    steps = np.arange(0.0, spec.shape[1] - 1, 1.0 / rate)  # source frames of the STFT stretched by `rate`
    base = steps.astype(np.int64)
    frac = (steps - base)[None, :]
    left, right = spec[:, base], spec[:, base + 1]
    magnitude = (1.0 - frac) * np.abs(left) + frac * np.abs(right)
    advance = np.linspace(0.0, np.pi * hop, spec.shape[0])[:, None]  # expected phase advance per hop
    deviation = np.angle(right) - np.angle(left) - advance
    deviation -= 2.0 * np.pi * np.round(deviation / (2.0 * np.pi))
    phase = np.angle(spec[:, :1]) + np.cumsum(np.concatenate([np.zeros_like(advance), (advance + deviation)[:, :-1]],
                                                             axis=1), axis=1)
    _, stretched = istft(magnitude * np.exp(1j * phase), nperseg=n_fft, noverlap=n_fft - hop, boundary=True)
    stretched = stretched.astype(np.float32)
    if stretched.size < 2:
        return y.copy()
    return librosa.resample(stretched, orig_sr=stretched.size, target_sr=y.size)[: y.size].astype(np.float32)


def _room(y: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    rt60 = rng.uniform(0.15, 0.6)
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    response = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    response /= np.sqrt(np.sum(response**2))
    wet = fftconvolve(y, response)[: y.size]
    mix = rng.uniform(0.2, 0.6)
    return ((1.0 - mix) * y + mix * wet).astype(np.float32)


def _noise(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(y.size)
    if rng.random() < 0.5:  # pink: 1/f power
        spectrum = np.fft.rfft(noise)
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        noise = np.fft.irfft(spectrum, n=y.size)
    power = np.mean(y.astype(np.float64) ** 2)
    if power == 0:
        return y
    snr = rng.uniform(5.0, 30.0)
    noise *= np.sqrt(power / 10.0 ** (snr / 10.0) / max(np.mean(noise**2), 1e-12))
    return (y + noise).astype(np.float32)


def aac_round_trip(samples: np.ndarray, sample_rate: int, bit_rate: int) -> np.ndarray:
    """Mono float32 (S,) through an AAC encoder at ``bit_rate`` and back (same rate; length may differ)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=sample_rate, layout="mono")
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(np.asarray(samples, np.float32)[None, :], format="flt", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    pieces = []
    with av.open(buffer, "r", format="adts") as src:
        for frame in src.decode(audio=0):
            for piece in resampler.resample(frame):
                pieces.append(piece.to_ndarray().reshape(-1))
    for piece in resampler.resample(None):
        pieces.append(piece.to_ndarray().reshape(-1))
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)


def voice_variants(samples: np.ndarray, num_frames: int, timing, variants: int, seed: int, key: str,
                   cfg: audio.MfccConfig = audio.MfccConfig()) -> np.ndarray:
    """Raw MFCC of ``variants`` random variants of a clip's audio: float32 (V, T, K, M)."""
    out = []
    for v in range(variants):
        rng = np.random.default_rng([seed, zlib.crc32(key.encode()), v])
        changed = augment_voice(samples, cfg.sample_rate, rng)
        out.append(audio.mfcc_for_frames(changed, num_frames, timing, cfg))
    return np.stack(out).astype(np.float32)


def _write_clip(job: tuple[ClipMeta, int, int, dict]) -> str:
    clip, variants, seed, mfcc_settings = job
    cfg = audio.MfccConfig(**mfcc_settings)
    source = clip.find_source()
    if source is None:
        raise MmsdError(f"{clip.key}: its source video {clip.source or '(none recorded)'} is gone; "
                        "voices need the clips' audio")
    samples = codec.read_audio(source, sample_rate=cfg.sample_rate)
    mfcc = voice_variants(samples, clip.num_frames, codec.frame_timing(source), variants, seed, clip.key, cfg)
    with atomic_path(clip.path / VOICES_FILE, suffix=".npz") as tmp:
        np.savez_compressed(tmp, mfcc=mfcc, seed=np.int64(seed))
    return clip.key


def _done(clip: ClipMeta, variants: int) -> bool:
    path = clip.path / VOICES_FILE
    if not path.is_file():
        return False
    with np.load(path) as npz:
        return npz["mfcc"].shape[0] >= variants


def add_voices(cache: str | Path, *, variants: int = DEFAULT_VARIANTS, seed: int = 0, workers: int = 1,
               progress: bool = True) -> tuple[int, int, int]:
    """Give every clip of `cache` with audio `variants` voice variants (clips that have them are skipped);
    returns (clips given them now, clips that had them, clips without audio)."""
    if variants < 1 or workers < 1:
        raise MmsdError(f"--variants and --workers must be >= 1, got {variants} and {workers}")
    index = ClipIndex(cache)
    mfcc_settings = index.settings.get("mfcc") or {}
    clips = [c for c in index.clips if c.has_audio]
    todo = [c for c in clips if not _done(c, variants)]
    jobs = [(clip, variants, seed, mfcc_settings) for clip in todo]
    with tqdm(total=len(clips), initial=len(clips) - len(todo), unit="clip", desc="voices",
              disable=not progress, dynamic_ncols=True) as bar:
        if workers == 1:
            for job in jobs:
                _write_clip(job)
                bar.update(1)
        else:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(_write_clip, jobs):
                    bar.update(1)
    return len(todo), len(clips) - len(todo), len(index.clips) - len(clips)
