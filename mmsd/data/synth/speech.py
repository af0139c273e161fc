"""Speech for the synthetic corpus: espeak-ng through ctypes, with timed phonemes.

The shared library and voice data are the ones the PyPI package `espeakng-loader`
bundles, so no system package is needed. Synthesis is synchronous
(AUDIO_OUTPUT_SYNCHRONOUS) with espeakINITIALIZE_PHONEME_EVENTS, which gives the
samples and, per phoneme, its start time in the output (`audio_position`, ms).

Voices: odd actors are male (espeak variants m1..m7), even actors female (f1..f5),
as in RAVDESS; each actor also gets its own base pitch, pitch range and rate.
Prosody per emotion (see `PROSODY`): relative changes to rate, pitch, pitch range and
volume, doubled for strong intensity -- sad slower, lower and flatter, angry louder
and faster, happy/fearful/surprised higher and wider. espeak's breathy voices draw
noise from a random generator, whose seed is reset before each utterance
(espeak_ng_SetRandSeed): the same
request always gives the same samples.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import threading
from dataclasses import dataclass

import numpy as np

from mmsd.emotions import EmotionState
from mmsd.errors import MmsdError

STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_EVENT_PHONEME = 7
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT of speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """An actor's voice: espeak voice name ('en-us+m3'), base pitch, range and rate."""

    name: str
    pitch: int   # espeak 0..100, 50 normal
    range: int   # espeak 0..100, 50 normal
    rate: int    # words per minute, 175 normal
    volume: int  # espeak 0..200, 100 normal


@dataclass(frozen=True)
class Prosody:
    """Change from an actor's neutral voice at normal intensity (doubled when strong)."""

    rate: float    # multiplicative, e.g. -0.12 = 12 % slower
    pitch: int     # added to the espeak pitch
    range: int     # added to the espeak pitch range
    volume: float  # multiplicative


PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(0.0, 0, 0, 0.0),
    "calm": Prosody(-0.08, -4, -10, -0.12),
    "happy": Prosody(0.06, 8, 14, 0.12),
    "sad": Prosody(-0.15, -9, -16, -0.22),
    "angry": Prosody(0.10, 3, 10, 0.35),
    "fearful": Prosody(0.12, 12, 12, 0.05),
    "disgust": Prosody(-0.10, -6, -4, 0.0),
    "surprised": Prosody(0.0, 14, 22, 0.18),
}


@dataclass(frozen=True)
class Phoneme:
    """One phoneme of an utterance: espeak's ASCII name and its time span in seconds."""

    name: str
    start: float
    end: float


@dataclass
class Utterance:
    samples: np.ndarray        # (S,) float32 mono in [-1, 1]
    sample_rate: int
    phonemes: list[Phoneme]    # in time order, pauses included ('_', '_:', ...)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def actor_voice(actor: int) -> Voice:
    """The voice of actor 1..24 (odd male, even female, as in RAVDESS)."""
    if actor < 1:
        raise ValueError(f"actor must be >= 1, got {actor}")
    k = (actor - 1) // 2
    male = actor % 2 == 1
    variant = f"m{1 + k % 7}" if male else f"f{1 + k % 5}"
    # Spread pitch and rate over actors with a fixed low-discrepancy sequence.
    u = (k * 0.618034) % 1.0
    v = (k * 0.414214 + 0.3) % 1.0
    return Voice(
        name=f"en-us+{variant}",
        pitch=int(round((35 if male else 48) + 22 * u)),
        range=int(round(40 + 25 * v)),
        rate=int(round(160 + 30 * ((u + v) % 1.0))),
        volume=100,
    )


def emotional_voice(voice: Voice, state: EmotionState) -> Voice:
    """`voice` with the prosody of `state` (strong intensity moves twice as far)."""
    p = PROSODY[state.emotion]
    k = 2.0 if state.intensity == "strong" else 1.0
    return Voice(
        name=voice.name,
        pitch=int(np.clip(voice.pitch + k * p.pitch, 0, 100)),
        range=int(np.clip(voice.range + k * p.range, 0, 100)),
        rate=int(np.clip(round(voice.rate * (1 + k * p.rate)), 80, 450)),
        volume=int(np.clip(round(voice.volume * (1 + k * p.volume)), 10, 200)),
    )


class _Engine:
    """The process-wide espeak-ng instance (the library keeps global state)."""

    def __init__(self) -> None:
        import espeakng_loader

        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise MmsdError(f"cannot load the espeak-ng library of espeakng-loader: {exc}") from None
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        data = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise MmsdError(f"espeak-ng failed to initialise with data {data.decode()}")
        self.sample_rate = rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, num_samples, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != 0:
            if events[i].type == _EVENT_PHONEME:
                name = bytes(events[i].id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((name, events[i].audio_position))
            i += 1
        return 0

    def synth(self, text: str, voice: Voice) -> Utterance:
        """Synthesise in a forked child: espeak keeps static state (e.g. the pitch
        flutter phase) from one utterance to the next that no API call resets, so
        every utterance starts from this process's never-used instance instead."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesise, send, exit without running Python cleanup
            code = 0
            try:
                payload = pickle.dumps(self._synth_here(text, voice))
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                payload, code = pickle.dumps(MmsdError(str(exc))), 1
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
            os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as inp:
            payload = inp.read()
        _, status = os.waitpid(pid, 0)
        result = pickle.loads(payload) if payload else MmsdError(f"espeak-ng child failed ({status})")
        if isinstance(result, Exception):
            raise result
        return result

    def _synth_here(self, text: str, voice: Voice) -> Utterance:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise MmsdError(f"espeak-ng has no voice {voice.name!r}")
        for param, value in ((_RATE, voice.rate), (_PITCH, voice.pitch), (_RANGE, voice.range),
                             (_VOLUME, voice.volume), (_WORDGAP, 0)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        self.lib.espeak_ng_SetRandSeed(12345)
        data = text.encode() + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, 1, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise MmsdError(f"espeak-ng synthesis failed (error {err}) for {text!r}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        samples = pcm.astype(np.float32) / 32768.0
        duration = len(samples) / self.sample_rate
        times = [min(ms / 1000.0, duration) for _, ms in self._events]
        phonemes = [
            Phoneme(name, t, times[i + 1] if i + 1 < len(times) else duration)
            for i, ((name, _), t) in enumerate(zip(self._events, times))
        ]
        return Utterance(samples, self.sample_rate, [p for p in phonemes if p.end > p.start])


_engine: _Engine | None = None
_lock = threading.Lock()


def synthesize(text: str, voice: Voice) -> Utterance:
    """Speak `text` with `voice`: samples at espeak's rate (22050 Hz) and timed phonemes."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Engine()
        return _engine.synth(text, voice)
