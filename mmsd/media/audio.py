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

Alignment. Video frame t, shown at time s_t (`mmsd.media.timing.FrameTiming`), covers
[s_t, s_t + P) with P its nominal frame period; it owns K vectors whose windows are
centred at s_t + (k + 0.5) P / K, k = 0..K-1. At a constant rate s_t = t / fps and
P = 1 / fps. At a variable rate s_t is the frame's own timestamp and P the shortest
frame interval, so a frame after a gap hears the sound at its own time, with the vector
spacing of the camera's running rate (what the networks were trained on). 16000 / (30 K)
is not an integer hop, so instead of a hop the window of every vector is cut out at its
exact centre, rounded to the nearest sample (a 62.5 us error at 16 kHz), with zeros
outside the signal as in librosa's ``center=True``. Vectors whose centre lies past the
end of the audio (no or short audio) are all-zero, so "no audio" reads as a constant input.

Every function taking ``timing`` also takes an exact frame rate (a ``Fraction``) for a
constant-rate video.

Normalisation (issue 13: unfamiliar voices). The raw MFCC of a voice carry its timbre, its
loudness and its microphone as offsets and scales of the coefficients; a network trained on a
few synthetic voices reads those as mouth shapes. ``RunningCmvn`` removes them: each vector
minus the running mean of the utterance so far, over the running standard deviation
(cepstral mean and variance normalisation, CMVN). Running, not whole-utterance, so that
streaming, low-latency decoding and training see the same numbers: vector n is normalised
with the statistics of vectors 1..n (all of them for the first ``memory`` vectors, then an
exponential window of ``memory`` vectors, 5 s at 100 vectors/s, so a long call follows a
change of speaker or room). All-zero vectors (no audio) stay zero and are not counted. The
cache stores raw MFCC; a model's config says which normalisation it reads (``MFCC_NORMS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from mmsd.media.timing import FrameTiming


@dataclass(frozen=True)
class MfccConfig:
    sample_rate: int = 16000
    n_mfcc: int = 20  # M
    per_frame: int = 4  # K MFCC vectors per video frame
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 50.0
    fmax: float = 8000.0


MFCC_NORMS = ("none", "cmvn")


def check_norm(norm: str) -> None:
    """ValueError unless `norm` is one of MFCC_NORMS."""
    if norm not in MFCC_NORMS:
        raise ValueError(f"mfcc_norm must be one of {', '.join(MFCC_NORMS)}, got {norm!r}")


def model_norm(config: dict) -> str:
    """The MFCC normalisation a model's config says it reads: "none" for weights written before
    the option existed (they were trained on raw MFCC)."""
    return str(config.get("mfcc_norm", "none"))


@dataclass
class RunningCmvn:
    """Streaming CMVN of MFCC vectors (see the module docstring); one instance per utterance.

    memory: vectors after which the statistics become an exponential moving window (ours: 500).
    floor: added to the variance, in squared MFCC units, so that the first vectors of an
        utterance (variance ~ 0) stay bounded (ours: 1.0; c0 varies by ~10-30 within speech).
    """

    memory: int = 500
    floor: float = 1.0
    count: int = 0
    mean: np.ndarray | None = None
    var: np.ndarray | None = None

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """(K, M) float32 raw vectors of one frame, in time order -> (K, M) float32 normalised."""
        vectors = np.asarray(vectors, np.float32)
        out = np.zeros_like(vectors)
        for k, x in enumerate(vectors.astype(np.float64)):
            if not x.any():
                continue  # no audio: stays zero, does not count
            if self.mean is None:
                self.mean, self.var = np.zeros_like(x), np.zeros_like(x)
            self.count += 1
            rate = max(1.0 / self.count, 1.0 / self.memory)
            delta = x - self.mean
            self.mean = self.mean + rate * delta
            self.var = (1.0 - rate) * (self.var + rate * delta * delta)
            out[k] = (x - self.mean) / np.sqrt(self.var + self.floor)
        return out


def normalise(mfcc: np.ndarray, norm: str) -> np.ndarray:
    """A whole utterance's MFCC (T, K, M) as a model with ``mfcc_norm=norm`` reads it: float32 (T, K, M).

    "cmvn": `RunningCmvn` from the first frame, exactly what the streaming decoder computes.
    """
    check_norm(norm)
    mfcc = np.asarray(mfcc, np.float32)
    if norm == "none":
        return mfcc
    cmvn = RunningCmvn()
    return np.stack([cmvn(frame) for frame in mfcc]) if len(mfcc) else mfcc.copy()


def vector_centres(
    num_frames: int, timing: FrameTiming | Fraction, cfg: MfccConfig = MfccConfig(), *, first_frame: int = 0
) -> np.ndarray:
    """Sample index of each vector's window centre: int64 (T * K,), vector (t, k) at t * K + k.

    Exact rational arithmetic: round(sample_rate * (s_t + (k + 0.5) P / K)), halves rounded up.
    ``first_frame`` gives the centres of frames first_frame .. first_frame + T - 1 instead.
    """
    timing = _as_timing(timing)
    k = cfg.per_frame
    base, period = timing.time_base, timing.period
    # Python ints (object arrays): a 90 kHz time base overflows int64 within the hour
    ticks = np.array([timing.ticks(t) for t in range(first_frame, first_frame + num_frames)] or [0], dtype=object)
    steps = np.array([(2 * j + 1) * period.numerator * base.denominator for j in range(k)], dtype=object)
    numerator = cfg.sample_rate * (ticks[:, None] * (2 * k * period.denominator * base.numerator) + steps)  # (T, K)
    denominator = 2 * k * period.denominator * base.denominator
    centres = (2 * numerator + denominator) // (2 * denominator)
    return centres[:num_frames].reshape(-1).astype(np.int64)


def _as_timing(timing: FrameTiming | Fraction) -> FrameTiming:
    if isinstance(timing, FrameTiming):
        return timing
    fps = Fraction(timing)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return FrameTiming.constant(fps)


def mfcc_for_frames(
    samples: np.ndarray, num_frames: int, timing: FrameTiming | Fraction, cfg: MfccConfig = MfccConfig()
) -> np.ndarray:
    """MFCC vectors per video frame.

    Args:
        samples: mono float32 (S,) at ``cfg.sample_rate``, sample 0 at the first frame's time.
        num_frames: T, the number of video frames.
        timing: the frames' times, or the exact frame rate of a constant-rate video.
    Returns:
        float32 (T, K, M); zeros for vectors whose centre lies past the end of the audio.
    """
    timing = _as_timing(timing)
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    samples = np.asarray(samples, np.float32).reshape(-1)
    out = np.zeros((num_frames * cfg.per_frame, cfg.n_mfcc), np.float32)
    centres = vector_centres(num_frames, timing, cfg)
    centres = centres[centres < samples.size]
    if centres.size:
        out[: centres.size] = _mfcc_at(samples, centres, cfg)
    return out.reshape(num_frames, cfg.per_frame, cfg.n_mfcc)


def mfcc_for_frame_range(
    samples: np.ndarray,
    start: int,
    first_frame: int,
    num_frames: int,
    timing: FrameTiming | Fraction,
    cfg: MfccConfig = MfccConfig(),
    *,
    total: int | None = None,
) -> np.ndarray:
    """MFCC of frames first_frame .. first_frame + T - 1 from a chunk of the audio, for streaming.

    Args:
        samples: mono float32 (S,) chunk; samples[i] is sample ``start + i`` of the whole audio.
        total: the whole audio's length when the chunk reaches its end (vectors centred at or
            past it are zero); None when the audio goes on, so the chunk must hold every window.
    Returns:
        float32 (T, K, M), equal to ``mfcc_for_frames(audio, ...)[first_frame : first_frame + T]``.
    Raises:
        ValueError if the chunk misses part of a window it needs.
    """
    samples = np.asarray(samples, np.float32).reshape(-1)
    out = np.zeros((num_frames * cfg.per_frame, cfg.n_mfcc), np.float32)
    if num_frames == 0:
        return out.reshape(0, cfg.per_frame, cfg.n_mfcc)
    half = cfg.n_fft // 2
    centres = vector_centres(num_frames, timing, cfg, first_frame=first_frame)
    if total is not None:
        centres = centres[centres < total]
    if centres.size:
        low, high = int(centres[0]) - half, int(centres[-1]) + half  # the windows' span [low, high)
        need_low, need_high = max(low, 0), high if total is None else min(high, total)
        if need_low < start or need_high > start + samples.size:
            raise ValueError(
                f"audio chunk {start}..{start + samples.size} misses samples {need_low}..{need_high}"
                f" needed for frames {first_frame}..{first_frame + num_frames - 1}"
            )
        local = np.zeros(high - low, np.float32)  # local[j] = sample low + j, zero outside the audio
        local[need_low - low : need_high - low] = samples[need_low - start : need_high - start]
        out[: centres.size] = _mfcc_at(local, centres - low, cfg)
    return out.reshape(num_frames, cfg.per_frame, cfg.n_mfcc)


def iter_mfcc(
    chunks: Iterable[np.ndarray],
    timing: FrameTiming | Fraction,
    cfg: MfccConfig = MfccConfig(),
    *,
    frames_per_step: int = 32,
) -> Iterator[np.ndarray]:
    """Per-frame MFCC (K, M) from audio that arrives in chunks, in constant memory.

    ``chunks`` yields consecutive mono float32 pieces of any length (sample 0 at the first
    frame's time). Frame t gets the same vectors as ``mfcc_for_frames(audio, ...)[t]``.
    The iterator is endless: once the audio has ended it yields zeros, as for missing audio,
    so zip it with the video frames. Audio is pulled only as far as the next
    ``frames_per_step`` frames' windows reach.
    """
    if frames_per_step < 1:
        raise ValueError(f"frames_per_step must be >= 1, got {frames_per_step}")
    timing = _as_timing(timing)
    half = cfg.n_fft // 2
    chunks = iter(chunks)
    buffer, buffer_start = np.zeros(0, np.float32), 0  # buffer[i] is sample buffer_start + i
    total: int | None = None  # the audio's length, once the chunks have run out
    frame = 0
    while total is None or vector_centres(1, timing, cfg, first_frame=frame)[0] < total:
        need = int(vector_centres(frames_per_step, timing, cfg, first_frame=frame)[-1]) + half
        pieces, have = [buffer], buffer_start + buffer.size
        while total is None and have < need:
            chunk = next(chunks, None)
            if chunk is None:
                total = have
                break
            pieces.append(np.asarray(chunk, np.float32).reshape(-1))
            have += pieces[-1].size
        if len(pieces) > 1:
            buffer = np.concatenate(pieces)
        yield from mfcc_for_frame_range(buffer, buffer_start, frame, frames_per_step, timing, cfg, total=total)
        frame += frames_per_step
        drop = min(buffer.size, int(vector_centres(1, timing, cfg, first_frame=frame)[0]) - half - buffer_start)
        if drop > 0:
            buffer, buffer_start = buffer[drop:], buffer_start + drop
    silence = np.zeros((cfg.per_frame, cfg.n_mfcc), np.float32)
    while True:
        yield silence


def _mfcc_at(samples: np.ndarray, centres: np.ndarray, cfg: MfccConfig) -> np.ndarray:
    """MFCC of the n_fft windows centred at ``centres`` (N,): float32 (N, M)."""
    half = cfg.n_fft // 2
    padded = np.pad(samples, (half, half))
    frames = padded[centres[:, None] + np.arange(cfg.n_fft)]  # (N, n_fft), centre at index half
    window, mel_basis, dct = _filters(cfg)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (N, n_fft/2 + 1)
    log_mel = 10.0 * np.log10(np.maximum(power @ mel_basis.T, 1e-10))  # (N, n_mels): librosa.power_to_db's dB
    return (log_mel @ dct.T).astype(np.float32)  # (N, M): librosa.feature.mfcc's orthonormal DCT-II


@lru_cache(maxsize=4)
def _filters(cfg: MfccConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Periodic Hann window (n_fft,), Slaney mel filter bank (n_mels, n_fft/2 + 1) and the orthonormal DCT-II
    (n_mfcc, n_mels), as librosa's defaults. Built with numpy where librosa's helpers would import scipy's
    signal and fft modules on first use: about a second at the start of every decode (docs/speed.md)."""
    n = np.arange(cfg.n_fft)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.n_fft)  # scipy's get_window("hann", fftbins=True)
    mel_basis = _slaney_mel_basis(cfg)
    k, m = np.arange(cfg.n_mfcc)[:, None], np.arange(cfg.n_mels)[None, :]
    dct = np.cos(np.pi * k * (2 * m + 1) / (2 * cfg.n_mels)) * np.sqrt(2.0 / cfg.n_mels)
    dct[0] /= np.sqrt(2.0)
    return hann, mel_basis, dct


_MEL_HZ = 200.0 / 3  # Hz per mel below 1 kHz (Slaney)
_MEL_LOG_STEP = np.log(6.4) / 27.0  # log-Hz per mel above 1 kHz (Slaney)


def _slaney_mel_basis(cfg: MfccConfig) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with its defaults (Slaney's mel scale, area-normalised
    triangles, float32): (n_mels, n_fft/2 + 1)."""

    def to_mel(hz):  # linear below 1 kHz, logarithmic above
        hz = np.asarray(hz, np.float64)
        return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / _MEL_LOG_STEP, hz / _MEL_HZ)

    def to_hz(mel):
        return np.where(mel >= 15.0, 1000.0 * np.exp(_MEL_LOG_STEP * (mel - 15.0)), mel * _MEL_HZ)

    bins = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)  # (n_fft/2 + 1,) Hz
    edges = to_hz(np.linspace(to_mel(cfg.fmin), to_mel(cfg.fmax), cfg.n_mels + 2))  # (n_mels + 2,) Hz
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


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
