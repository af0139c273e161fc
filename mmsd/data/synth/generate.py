"""The synthetic RAVDESS-layout talking-head corpus (`mmsd synth`, `mmsd.commands.synth`).

Layout, as RAVDESS after OpenFace: DIR/Actor_XX/01-01-EE-II-SS-RR-XX.mp4 (H.264
near-lossless, 30 fps, AAC 48 kHz mono) with DIR/Actor_XX/<same stem>.csv (OpenFace
2.x columns: 68 landmarks of the rendered face, 17 AU_r, 18 AU_c). Every actor gets
2 statements x 15 states x --reps repetitions.

Per clip: espeak-ng speaks the statement with the actor's voice and the emotion's
prosody (speech.py), framed by 0.3-0.55 s of silence; phonemes and the audio
envelope give the mouth track (visemes.py); the emotion, the actor's style and the
speech give the AU track (expression.py); the landmarks follow from the AUs and the
renderer draws the frames from them (face.py; `--style photo`: photo.py), with small head
motion (sway, nods with speech), gaze shifts and lighting drift.

Deterministic: every random generator is seeded from (seed, actor, clip), the
actor's look from (seed, actor), and espeak runs from a fresh state per utterance,
so the same arguments give the same CSV, the same audio and the same decoded frames
whatever --workers is. Resumable: a clip whose .mp4 and .csv both exist is skipped;
both files are written atomically (temp file + rename).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from scipy.signal import resample_poly

from mmsd import emotions
from mmsd.data.synth import expression, face, photo, shape, speech, visemes
from mmsd.emotions import EmotionState
from mmsd.media.fileio import atomic_path

FPS = 30
AUDIO_RATE = 48000
_LOOK, _STYLE, _SCALE = 0xFACE, 0x57E, 0x5CA1E
RENDERERS: dict[str, type[face.FaceRenderer]] = {"cartoon": face.FaceRenderer, "photo": photo.PhotoFaceRenderer}


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Sizes are W x H."""

    out: Path
    actors: tuple[int, ...] = tuple(range(1, 25))
    reps: int = 1
    width: int = 640
    height: int = 360
    seed: int = 0
    states: tuple[EmotionState, ...] = emotions.STATES
    statements: tuple[int, ...] = (1, 2)
    crf: float = 12.0          # near-lossless; the paper's lightest setting is CRF 15
    preset: str = "veryfast"
    face_scale: tuple[float, float] = (1.0, 1.0)  # per-actor face size multiplier, drawn in this range
    style: str = "cartoon"     # renderer: "cartoon" (the original corpus) or "photo" (mmsd.data.synth.photo)

    def __post_init__(self) -> None:
        if self.style not in RENDERERS:
            raise ValueError(f"--style must be one of {', '.join(RENDERERS)}, got {self.style!r}")

    def clips(self) -> list[tuple[int, EmotionState, int, int]]:
        """(actor, state, statement, repetition) of every clip, grouped by actor."""
        return [(a, s, st, r) for a in self.actors for s in self.states
                for st in self.statements for r in range(1, self.reps + 1)]

    def path(self, actor: int, state: EmotionState, statement: int, rep: int) -> Path:
        emo, inten = state.ravdess_codes
        name = f"01-01-{emo:02d}-{inten:02d}-{statement:02d}-{rep:02d}-{actor:02d}.mp4"
        return self.out / f"Actor_{actor:02d}" / name


PRESETS: dict[str, dict] = {
    # 2 actors, 4 states that move brows, lip corners and jaw; small frames: a few seconds
    "tiny": dict(actors=(1, 2), width=320, height=180, statements=(1,),
                 states=tuple(emotions.parse(n) for n in
                              ("neutral", "happy-strong", "sad-strong", "surprised-strong"))),
}


def parse_size(text: str) -> tuple[int, int]:
    """'640x360' -> (640, 360); even sizes of at least 64x36."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 640x360 (W x H), got {text!r}") from None
    if w < 64 or h < 36 or w % 2 or h % 2:
        raise ValueError(f"--size must be even and at least 64x36 (W x H), got {text!r}")
    return w, h


# ---- one clip ----------------------------------------------------------------------------
@dataclass
class Clip:
    frames_u: np.ndarray   # (T, 68, 2) landmarks in face units
    aus: np.ndarray        # (T, 17)
    mouth: visemes.MouthTrack
    poses: list[shape.Pose]
    audio: np.ndarray      # (S,) float32 at AUDIO_RATE


def _rng(cfg: SynthConfig, *keys: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *keys])


def _smooth_noise(rng: np.random.Generator, n: int, fps: float, hz: float) -> np.ndarray:
    """Smooth zero-mean unit-ish random motion: sum of 3 sinusoids around `hz`."""
    t = np.arange(n) / fps
    out = np.zeros(n)
    for _ in range(3):
        out += np.sin(2 * np.pi * hz * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi))
    return out / np.sqrt(1.5)


def plan_clip(cfg: SynthConfig, actor: int, state: EmotionState, statement: int, rep: int,
              look: shape.Identity, style: expression.ActorStyle, text: str | None = None) -> Clip:
    """Speech, mouth, AUs, landmarks and poses of one clip (no pixels yet); `text` replaces the
    statement's sentence (the demo speaks one never used in training)."""
    emo, inten = state.ravdess_codes
    rng = _rng(cfg, actor, emo, inten, statement, rep)
    base = speech.emotional_voice(speech.actor_voice(actor), state)
    voice = replace(base, rate=int(base.rate + rng.integers(-6, 7)),
                    pitch=int(np.clip(base.pitch + rng.integers(-2, 3), 0, 100)))
    utt = speech.synthesize(text or speech.STATEMENTS[statement], voice)
    lead, tail = rng.uniform(0.3, 0.55), rng.uniform(0.3, 0.5)
    voiced = resample_poly(utt.samples.astype(np.float64), AUDIO_RATE, utt.sample_rate)
    num_frames = int(round((lead + len(voiced) / AUDIO_RATE + tail) * FPS))
    audio = np.zeros(num_frames * AUDIO_RATE // FPS, np.float32)
    start = int(round(lead * AUDIO_RATE))
    voiced = voiced[: len(audio) - start]
    audio[start:start + len(voiced)] = voiced
    audio = np.clip(audio, -1.0, 1.0)

    env = visemes.rms_envelope(audio, AUDIO_RATE, num_frames, FPS)
    mouth = visemes.mouth_track(utt.phonemes, start / AUDIO_RATE, num_frames, FPS, env)
    aus = expression.au_track(state, style, mouth, FPS, rng)
    frames_u = np.stack([shape.deform(look.shape, aus[t], float(mouth.spread[t]), float(mouth.tuck[t]))
                         for t in range(num_frames)])

    # head: slow sway, small roll, nods that follow the speech envelope; gaze shifts; light drift
    env_n = np.clip(env / max(float(env.max()), 1e-6), 0, 1)
    nod = np.convolve(env_n, np.hanning(9) / np.hanning(9).sum(), mode="same")
    roll = 1.5 * _smooth_noise(rng, num_frames, FPS, 0.25)
    dx = 0.012 * _smooth_noise(rng, num_frames, FPS, 0.2)
    dy = 0.006 * _smooth_noise(rng, num_frames, FPS, 0.3) + 0.012 * nod
    scale = 1.0 + 0.008 * _smooth_noise(rng, num_frames, FPS, 0.15)
    gain = 1.0 + 0.035 * _smooth_noise(rng, num_frames, FPS, 0.12)
    tilt = 0.05 * _smooth_noise(rng, num_frames, FPS, 0.1)
    gaze = np.zeros((num_frames, 2))
    target = rng.uniform(-0.3, 0.3, 2)
    for t in range(num_frames):
        if rng.random() < 1.2 / FPS:  # a saccade about every 0.8 s
            target = rng.uniform(-0.5, 0.5, 2) * [1.0, 0.5]
        gaze[t] = target if t == 0 else gaze[t - 1] + 0.6 * (target - gaze[t - 1])
    poses = [shape.Pose(float(roll[t]), float(dx[t]), float(dy[t]), float(scale[t]),
                       (float(gaze[t, 0]), float(gaze[t, 1])), float(gain[t]), float(tilt[t]))
             for t in range(num_frames)]
    return Clip(frames_u, aus, mouth, poses, audio)


def _actor_parts(cfg: SynthConfig, actor: int):
    look = shape.make_identity(actor, _rng(cfg, actor, _LOOK))
    if cfg.face_scale != (1.0, 1.0):  # smaller faces in the same frame (issue 13: other face scales)
        look = replace(look, scale=look.scale * float(_rng(cfg, actor, _SCALE).uniform(*cfg.face_scale)))
    style = expression.actor_style(_rng(cfg, actor, _STYLE))
    renderer = RENDERERS[cfg.style](look, width=cfg.width, height=cfg.height, rng=_rng(cfg, actor, _LOOK, 1))
    return look, style, renderer


_cache: dict[tuple, tuple] = {}


def _parts(cfg: SynthConfig, actor: int):
    """An actor's look, style and renderer, for the frame size and seed of `cfg`."""
    key = (actor, cfg.width, cfg.height, cfg.seed, cfg.face_scale, cfg.style)
    if key not in _cache:
        _cache.clear()  # one actor at a time: clips are handed out in actor order
        _cache[key] = _actor_parts(cfg, actor)
    return _cache[key]


def _writer(path: Path, cfg: SynthConfig, meta: dict[str, str]):
    """A codec.VideoWriter whose x264 output is bit-reproducible.

    x264's macroblock-tree rate control reads memory it never set, so the same frames
    encoded twice in one process could give different streams (and decoded frames);
    it only matters at high CRF, so it is off here. One x264 thread per clip:
    --workers gives the parallelism.
    """
    from mmsd.media.codec import VideoWriter

    return VideoWriter(path, width=cfg.width, height=cfg.height, fps=Fraction(FPS), crf=cfg.crf,
                       preset=cfg.preset, audio_rate=AUDIO_RATE, metadata=meta,
                       x264_options={"threads": "1", "x264-params": "mbtree=0"})


def write_clip(cfg: SynthConfig, actor: int, state: EmotionState, statement: int, rep: int, *,
               text: str | None = None, path: Path | None = None) -> Path:
    """Render and write one clip (mp4 + csv), atomically. Returns the mp4 path.

    `text` and `path` override the statement's sentence and the corpus file name."""
    from mmsd.data.openface import OpenFaceTrack, write_csv

    look, style, renderer = _parts(cfg, actor)
    clip = plan_clip(cfg, actor, state, statement, rep, look, style, text)
    path = path or cfg.path(actor, state, statement, rep)
    path.parent.mkdir(parents=True, exist_ok=True)
    num_frames = len(clip.aus)
    landmarks = np.zeros((num_frames, 68, 2), np.float32)
    meta = {"title": path.stem, "comment": f"mmsd synth: actor {actor}, {state.name}, "
            f"statement {statement}, repetition {rep}, seed {cfg.seed}"}
    with _writer(path, cfg, meta) as writer:
        writer.write_audio(clip.audio)
        for t in range(num_frames):
            frame, landmarks[t] = renderer.render(
                clip.frames_u[t], clip.aus[t], clip.poses[t], tongue=float(clip.mouth.tongue[t]),
                tuck=float(clip.mouth.tuck[t]), grain_index=t)
            writer.write(frame)
    presence = np.zeros((num_frames, 18), np.float32)
    presence[:, :16] = clip.aus[:, :16] >= 1.0   # AU01..AU26 in both lists; AU28 stays 0
    presence[:, 17] = clip.aus[:, 16] >= 1.0     # AU45
    track = OpenFaceTrack(
        frame=np.arange(1, num_frames + 1), timestamp=np.arange(num_frames) / FPS,
        confidence=np.full(num_frames, 0.98), success=np.ones(num_frames, bool),
        landmarks=landmarks, au_intensity=clip.aus, au_presence=presence)
    csv = path.with_suffix(".csv")
    with atomic_path(csv) as tmp:
        write_csv(tmp, track)
    return path


def _work(job: tuple[SynthConfig, tuple]) -> str:
    cfg, (actor, state_id, statement, rep) = job
    return str(write_clip(cfg, actor, emotions.STATES[state_id], statement, rep))


def _init_worker() -> None:
    cv2.setNumThreads(1)


def generate(cfg: SynthConfig, *, workers: int = 1, progress: bool = True) -> tuple[int, int]:
    """Write every missing clip of `cfg`. Returns (written, skipped)."""
    for stale in cfg.out.glob("Actor_*/.01-*.tmp*"):  # left by a killed run
        stale.unlink(missing_ok=True)
    todo = []
    skipped = 0
    for actor, state, statement, rep in cfg.clips():
        path = cfg.path(actor, state, statement, rep)
        if path.is_file() and path.with_suffix(".csv").is_file():
            skipped += 1
        else:
            todo.append((cfg, (actor, state.id, statement, rep)))
    cfg.out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    bar = tqdm(total=len(todo) + skipped, initial=skipped, unit="clip", disable=not progress,
               desc="synth", dynamic_ncols=True)
    try:
        if workers <= 1 or len(todo) <= 1:
            _init_worker()
            for job in todo:
                _work(job)
                bar.update()
        else:
            # spawn, not fork: a forked child inherits the locks other threads of the caller held (an FFmpeg
            # codec lock left taken hung a test process's workers in the AAC encoder's open), as `prepare` does
            with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
                for _ in pool.imap_unordered(_work, todo, chunksize=1):
                    bar.update()
    finally:
        bar.close()
    return len(todo), skipped
