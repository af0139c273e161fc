"""Torch dataset over a `mmsd prepare` cache (layout in `mmsd.data.cache`).

Legend: B batch, T frames in the window (2N+1), K MFCC vectors per frame, M MFCC
coefficients, h w the LR size of a sample (72x120 whole, p x p cropped), 4h 4w HR.

One item is (clip, crf, centre frame t) for every clip of the chosen actors, every
chosen CRF and every centre frame that has a stored HR frame (every ``hr_step``-th
frame of the clip), thinned by ``frame_step``. Frames outside the clip are edge
replicated (the first or last frame repeats). Training mode (``patch=p``) cuts a
random p x p LR window and the HR 4p x 4p window over the same scene area, anywhere
in the frame (``crop_focus="frame"``) or centred on a random point of the frame's face
box (``crop_focus="face"``, clamped to the frame); the crop of item i depends only on
(seed, epoch, i), so runs repeat and DataLoader workers agree. Files are opened per read and per-clip arrays are loaded lazily in each
worker, so the dataset works with any ``num_workers`` and start method.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mmsd.data.cache import CACHE_FORMAT, CACHE_VERSION, decode_image
from mmsd.errors import MmsdError
from mmsd.media.audio import check_norm, normalise as normalise_mfcc

VOICES_FILE = "voices.npz"  # per clip: MFCC of augmented copies of its audio (`mmsd voices`)


@dataclass
class Sample:
    """One training/evaluation example (torch tensors; see the module legend)."""

    lr: Tensor  # (T, 3, h, w) float32 [0, 1], centre = frame t
    hr: Tensor  # (3, 4h, 4w) float32 [0, 1]
    mfcc: Tensor  # (T, K, M) float32, zeros when the clip has no audio
    emotion: int  # 0..14
    au: Tensor  # (17,) float32 AU intensities of frame t, zeros if none
    au_mask: bool  # True when an AU target exists
    face_box: Tensor  # (4,) int64 x0 y0 x1 y1 in this sample's HR pixels (x1, y1 exclusive; clipped)
    mouth_box: Tensor  # (4,) int64
    crf: int
    key: str  # 'Actor_05/01-01-03-02-01-01-05#crf32@t17'
    crop: Tensor  # (4,) float32 x0 y0 x1 y1 of the LR crop as fractions of the full LR frame; (0, 0, 1, 1) whole


@dataclass
class Batch:
    """Samples stacked along a new first axis B."""

    lr: Tensor  # (B, T, 3, h, w)
    hr: Tensor  # (B, 3, 4h, 4w)
    mfcc: Tensor  # (B, T, K, M)
    emotion: Tensor  # (B,) int64
    au: Tensor  # (B, 17)
    au_mask: Tensor  # (B,) bool
    face_box: Tensor  # (B, 4) int64
    mouth_box: Tensor  # (B, 4) int64
    crf: Tensor  # (B,) int64
    key: list[str]
    crop: Tensor  # (B, 4) float32

    def to(self, device, non_blocking: bool = False) -> Batch:
        return self._map(lambda v: v.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        return self._map(Tensor.pin_memory)

    def _map(self, fn) -> Batch:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Batch(**{name: fn(v) if isinstance(v, Tensor) else v for name, v in values.items()})

    def __len__(self) -> int:
        return len(self.key)


def collate(samples: list[Sample]) -> Batch:
    """Stack samples into a Batch (all must have the same crop size)."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    return Batch(
        lr=torch.stack([s.lr for s in samples]),
        hr=torch.stack([s.hr for s in samples]),
        mfcc=torch.stack([s.mfcc for s in samples]),
        emotion=torch.tensor([s.emotion for s in samples], dtype=torch.int64),
        au=torch.stack([s.au for s in samples]),
        au_mask=torch.tensor([s.au_mask for s in samples], dtype=torch.bool),
        face_box=torch.stack([s.face_box for s in samples]),
        mouth_box=torch.stack([s.mouth_box for s in samples]),
        crf=torch.tensor([s.crf for s in samples], dtype=torch.int64),
        key=[s.key for s in samples],
        crop=torch.stack([s.crop for s in samples]),
    )


# --------------------------------------------------------------------------- cache index


@dataclass(frozen=True)
class ClipMeta:
    """What the evaluator needs to know about a cached clip (from its meta.json)."""

    key: str  # 'Actor_05/01-01-03-02-01-01-05'
    path: Path  # the clip's cache directory
    actor: int
    emotion: int  # state id 0..14
    channel: int  # 1 speech, 2 song
    statement: int
    repetition: int
    num_frames: int
    fps: Fraction
    has_audio: bool
    has_au: bool
    kbps: dict[int, float]  # video kbps of the LR stream per CRF
    hr_frames: tuple[int, ...]  # frames with a stored HR frame
    crop_source: str  # 'landmarks', 'haar' or 'centre'
    crop_box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the HR crop in the source frames
    source: str = ""  # the source video as `prepare` recorded it ('' for content made in memory)

    def find_source(self) -> Path | None:
        """The clip's source video if it still exists: the recorded path as given, or relative to
        the folders above the cache (prepare may have run from the repo or from data/)."""
        if not self.source:
            return None
        recorded, cache = Path(self.source), self.path.parent.parent
        for candidate in (recorded, cache.parent.parent / recorded, cache.parent / recorded):
            if candidate.is_file():
                return candidate
        return None

    @classmethod
    def load(cls, path: Path) -> ClipMeta:
        meta = json.loads((path / "meta.json").read_text())
        return cls(
            key=meta["key"],
            path=path,
            actor=int(meta["actor"]),
            emotion=int(meta["emotion"]),
            channel=int(meta["channel"]),
            statement=int(meta["statement"]),
            repetition=int(meta["repetition"]),
            num_frames=int(meta["num_frames"]),
            fps=Fraction(meta["fps"]),
            has_audio=bool(meta["has_audio"]),
            has_au=bool(meta["has_au"]),
            kbps={int(c): float(v) for c, v in meta["kbps"].items()},
            hr_frames=tuple(range(0, int(meta["num_frames"]), int(meta["hr_step"]))),
            crop_source=meta["crop_source"],
            crop_box=tuple(int(v) for v in meta["crop_box"]),
            source=meta.get("source", ""),
        )


def read_index(cache: str | Path) -> list[ClipMeta]:
    """The finished clips of a cache (metadata only, no frame data), sorted by key."""
    return ClipIndex(cache).clips


class ClipIndex:
    """The finished clips of a cache, sorted by key, and the cache's settings."""

    def __init__(self, cache: str | Path) -> None:
        self.root = Path(cache)
        settings_path = self.root / "cache.json"
        if not settings_path.is_file():
            raise MmsdError(f"{self.root} is not an mmsd cache (no cache.json); run `mmsd prepare` first")
        settings = json.loads(settings_path.read_text())
        if settings.get("format") != CACHE_FORMAT or settings.get("version") != CACHE_VERSION:
            raise MmsdError(
                f"{settings_path}: format {settings.get('format')!r} v{settings.get('version')},"
                f" expected {CACHE_FORMAT!r} v{CACHE_VERSION}"
            )
        self.settings = settings
        self.crfs: tuple[int, ...] = tuple(settings["crfs"])
        self.hr_size: tuple[int, int] = tuple(settings["hr_size"])  # W x H
        self.lr_size: tuple[int, int] = tuple(settings["lr_size"])  # W x H
        self.scale: int = int(settings["scale"])
        finished = sorted(self.root.glob("Actor_*/*/meta.json"))  # temp dirs (.NAME.tmp-PID) are not finished
        self.clips: list[ClipMeta] = [ClipMeta.load(p.parent) for p in finished if not p.parent.name.startswith(".")]

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)

    def select(self, actors: Sequence[int] | None = None) -> list[ClipMeta]:
        """The clips of these actors (all when None)."""
        if actors is None:
            return list(self.clips)
        wanted = set(int(a) for a in actors)
        return [c for c in self.clips if c.actor in wanted]

    def reader(self, clip: ClipMeta | str) -> ClipReader:
        """Frame and array access for one clip (by meta or key)."""
        if isinstance(clip, str):
            matches = [c for c in self.clips if c.key == clip]
            if not matches:
                raise KeyError(f"no clip {clip!r} in {self.root}")
            clip = matches[0]
        return ClipReader(clip, self.crfs)


class ClipReader:
    """Random access to one cached clip: frames decode on demand; small arrays load once."""

    def __init__(self, clip: ClipMeta, crfs: tuple[int, ...]) -> None:
        self.clip = clip
        self.crfs = tuple(crfs)
        self._arrays: dict[str, np.ndarray] | None = None
        self._voices: np.ndarray | None = None
        self._mfcc: dict[tuple[str, int | None], np.ndarray] = {}
        self._hr_pos = {t: i for i, t in enumerate(clip.hr_frames)}

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """mfcc (T,K,M), au (T,17), au_mask (T,), face_box / mouth_box (T,4), indexes."""
        if self._arrays is None:
            with np.load(self.clip.path / "arrays.npz") as npz:
                self._arrays = {name: npz[name] for name in npz.files}
        return self._arrays

    def mfcc(self, norm: str = "none", voice: int | None = None) -> np.ndarray:
        """The clip's MFCC (T, K, M) float32 as a model with ``mfcc_norm=norm`` reads it
        (`mmsd.media.audio.normalise`), from the clip's own audio or from its voice variant ``voice``
        (0..variants-1 of voices.npz, `mmsd voices`)."""
        key = (norm, voice)
        if key not in self._mfcc:
            raw = self.arrays["mfcc"] if voice is None else self.voices[voice]
            self._mfcc[key] = normalise_mfcc(raw, norm)
        return self._mfcc[key]

    @property
    def voices(self) -> np.ndarray:
        """MFCC of the clip's voice variants, (V, T, K, M) float32; V = 0 when `mmsd voices` did not run."""
        if self._voices is None:
            path = self.clip.path / VOICES_FILE
            if path.is_file():
                with np.load(path) as npz:
                    self._voices = npz["mfcc"]
            else:
                self._voices = np.zeros((0, *self.arrays["mfcc"].shape), np.float32)
        return self._voices

    def lr(self, crf: int, frames: Sequence[int] | None = None) -> np.ndarray:
        """Decoded LR frames of one CRF: (len(frames), h, w, 3) uint8; all frames when None."""
        if crf not in self.crfs:
            raise ValueError(f"CRF {crf} is not in this cache (has {list(self.crfs)})")
        index = self.arrays["lr_index"][self.crfs.index(crf)]  # (T, 2)
        frames = range(self.clip.num_frames) if frames is None else frames
        return np.stack(self._read(index[list(frames)]))

    def lr_clean(self, frames: Sequence[int] | None = None) -> np.ndarray:
        """LR frames before x264 (4x downsampled HR): (len(frames), h, w, 3) uint8; all when None."""
        frames = range(self.clip.num_frames) if frames is None else frames
        return np.stack(self._read(self.arrays["lr_clean_index"][list(frames)]))

    def hr(self, t: int) -> np.ndarray:
        """The HR frame t: (H, W, 3) uint8; ValueError when frame t has no stored HR."""
        if t not in self._hr_pos:
            raise ValueError(f"{self.clip.key}: no HR for frame {t} (stored every {self._hr_step()} frames)")
        return self._read(self.arrays["hr_index"][[self._hr_pos[t]]])[0]

    def _hr_step(self) -> int:
        frames = self.clip.hr_frames
        return frames[1] - frames[0] if len(frames) > 1 else 1

    def _read(self, spans: np.ndarray) -> list[np.ndarray]:
        out = []
        with open(self.clip.path / "frames.bin", "rb") as f:
            for offset, length in spans:
                f.seek(int(offset))
                out.append(decode_image(f.read(int(length))))
        return out


# --------------------------------------------------------------------------- dataset


def window_indices(t: int, radius: int, num_frames: int, causal: bool = False) -> np.ndarray:
    """Frames of the window around t, edge replicated: t-N..t+N, or t-2N..t when causal."""
    offsets = np.arange(-2 * radius, 1) if causal else np.arange(-radius, radius + 1)
    return np.clip(t + offsets, 0, num_frames - 1)


CROP_FOCUS = ("frame", "face")


class CacheDataset(torch.utils.data.Dataset):
    """Samples (see `Sample`) over the clips of some actors in a prepared cache.

    patch=None -> whole frames (evaluation); patch=p -> LR p x p crop + aligned HR 4p x 4p,
    placed anywhere (crop_focus="frame") or around the face (crop_focus="face").
    causal=True -> window t-2N..t (streaming) instead of t-N..t+N.
    frame_step -> every frame_step-th of the centre frames that have HR.
    keys -> only these clips (e.g. 'Actor_05/01-01-03-02-01-01-05'), within `actors`.
    mfcc_norm -> the MFCC normalisation the model reads ("none" or "cmvn", `mmsd.media.audio`).
    voice_augment=p -> with probability p (per item and epoch) the MFCC of one of the clip's
    voice variants (`mmsd voices`) instead of its own audio; clips without variants keep theirs.
    audio_mismatch=p -> with probability p (per item and epoch) the audio of another clip of this
    dataset, drawn at random, instead of its own (training: a voice that does not match the lips);
    cut or padded with silence to this clip's length, and voice-augmented like the clip's own.
    audio_from -> clip key -> key of another clip of the cache whose audio replaces this clip's
    (mismatched-audio tests); cut or padded with silence to this clip's length.
    Call set_epoch(e) before iterating an epoch; DataLoader workers see the new epoch
    when they start, so use persistent_workers=False (the default) with random crops.
    """

    def __init__(
        self,
        cache: str | Path | ClipIndex,
        *,
        actors: Sequence[int] | None,
        crfs: Sequence[int] | None = None,
        radius: int = 2,
        patch: int | None = None,
        crop_focus: str = "frame",
        causal: bool = False,
        frame_step: int = 1,
        seed: int = 0,
        keys: Collection[str] | None = None,
        mfcc_norm: str = "none",
        voice_augment: float = 0.0,
        audio_mismatch: float = 0.0,
        audio_from: Mapping[str, str] | None = None,
    ) -> None:
        self.index = cache if isinstance(cache, ClipIndex) else ClipIndex(cache)
        self.crfs = tuple(self.index.crfs if crfs is None else (int(c) for c in crfs))
        missing = [c for c in self.crfs if c not in self.index.crfs]
        if missing or not self.crfs:
            have = list(self.index.crfs)
            raise ValueError(f"CRFs {list(self.crfs)} not all in the cache {self.index.root} (has {have})")
        if radius < 0:
            raise ValueError(f"radius N must be >= 0, got {radius}")
        lr_w, lr_h = self.index.lr_size
        if patch is not None and not 1 <= patch <= min(lr_w, lr_h):
            raise ValueError(f"patch must be in 1..{min(lr_w, lr_h)} LR pixels, got {patch}")
        if crop_focus not in CROP_FOCUS:
            raise ValueError(f"crop_focus must be one of {', '.join(CROP_FOCUS)}, got {crop_focus!r}")
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        check_norm(mfcc_norm)
        for name, share in (("voice_augment", voice_augment), ("audio_mismatch", audio_mismatch)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {share}")
        self.mfcc_norm, self.voice_augment, self.audio_mismatch = mfcc_norm, float(voice_augment), float(audio_mismatch)
        self.audio_from = dict(audio_from or {})
        self.radius, self.patch, self.causal, self.seed = radius, patch, causal, seed
        self.crop_focus = crop_focus
        self.scale = self.index.scale
        self.epoch = 0
        self.clips = self.index.select(actors)
        if keys is not None:
            wanted = set(keys)
            self.clips = [c for c in self.clips if c.key in wanted]
        if not self.clips:
            chosen = f"actors {sorted(actors) if actors else 'all'}"
            chosen += "" if keys is None else f" and {len(set(keys))} keys"
            raise ValueError(f"no clips of {chosen} in {self.index.root}")
        items = [
            (ci, crf, t)
            for ci, clip in enumerate(self.clips)
            for crf in self.crfs
            for t in clip.hr_frames[::frame_step]
        ]
        self.items = np.asarray(items, dtype=np.int64).reshape(-1, 3)  # (N, 3): clip, crf, centre frame
        self._readers: dict[int, ClipReader] = {}
        self._other_readers: dict[str, ClipReader] = {}

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops (call before each epoch, in the main process)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        # workers start with no loaded clip arrays (spawn pickles the dataset)
        return {**self.__dict__, "_readers": {}, "_other_readers": {}}

    def _reader(self, ci: int) -> ClipReader:
        reader = self._readers.get(ci)
        if reader is None:
            reader = self._readers[ci] = ClipReader(self.clips[ci], self.index.crfs)
        return reader

    def clip_mfcc(self, index: int) -> np.ndarray:
        """The MFCC (T, K, M) float32 that item `index` reads this epoch: its clip's own audio, a
        voice variant of it (voice_augment) or another clip's (audio_mismatch, audio_from), normalised as the
        model reads it."""
        ci = int(self.items[index][0])
        clip = self.clips[ci]
        other = self.audio_from.get(clip.key)
        if other is not None:
            reader = self._reader_of(other)
        else:
            reader = self._reader(ci)
            if self.audio_mismatch > 0 and len(self.clips) > 1:
                rng = np.random.default_rng([self.seed, self.epoch, index, 2])
                if rng.random() < self.audio_mismatch:
                    cj = int(rng.integers(len(self.clips) - 1))
                    reader = self._reader(cj + (cj >= ci))  # any clip but this one
        voice = None
        if self.voice_augment > 0 and len(reader.voices):
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            if rng.random() < self.voice_augment:
                voice = int(rng.integers(len(reader.voices)))
        mfcc = reader.mfcc(self.mfcc_norm, voice)
        if len(mfcc) != clip.num_frames:  # another clip's audio: cut, or pad with silence
            fitted = np.zeros((clip.num_frames, *mfcc.shape[1:]), np.float32)
            fitted[: min(len(mfcc), clip.num_frames)] = mfcc[: clip.num_frames]
            mfcc = fitted
        return mfcc

    def _reader_of(self, key: str) -> ClipReader:
        if key not in self._other_readers:
            self._other_readers[key] = self.index.reader(key)
        return self._other_readers[key]

    def crop_origin(self, index: int) -> tuple[int, int] | None:
        """The LR (y, x) of item `index`'s crop in this epoch, None in whole-frame mode."""
        if self.patch is None:
            return None
        lr_w, lr_h = self.index.lr_size
        p = self.patch
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.crop_focus == "frame":
            return int(rng.integers(0, lr_h - p + 1)), int(rng.integers(0, lr_w - p + 1))
        ci, _, t = (int(v) for v in self.items[index])
        x0, y0, x1, y1 = self._reader(ci).arrays["face_box"][t] / self.scale  # LR pixels
        cy, cx = rng.uniform(y0, max(y1, y0 + 1)), rng.uniform(x0, max(x1, x0 + 1))
        return (int(np.clip(round(cy - p / 2), 0, lr_h - p)), int(np.clip(round(cx - p / 2), 0, lr_w - p)))

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = index % len(self)
        ci, crf, t = (int(v) for v in self.items[index])
        clip, reader = self.clips[ci], self._reader(ci)
        frames = window_indices(t, self.radius, clip.num_frames, self.causal)
        lr = reader.lr(crf, frames)  # (T, h, w, 3) uint8
        hr = reader.hr(t)  # (4h, 4w, 3) uint8
        arrays = reader.arrays
        face = arrays["face_box"][t].astype(np.int64)
        mouth = arrays["mouth_box"][t].astype(np.int64)
        origin = self.crop_origin(index)
        crop = torch.tensor([0.0, 0.0, 1.0, 1.0])
        if origin is not None:
            y, x, p, s = origin[0], origin[1], self.patch, self.scale
            lr = lr[:, y : y + p, x : x + p]
            hr = hr[s * y : s * (y + p), s * x : s * (x + p)]
            shift = np.array([s * x, s * y, s * x, s * y])
            face = np.clip(face - shift, 0, s * p)
            mouth = np.clip(mouth - shift, 0, s * p)
            lr_w, lr_h = self.index.lr_size
            crop = torch.tensor([x / lr_w, y / lr_h, (x + p) / lr_w, (y + p) / lr_h], dtype=torch.float32)
        return Sample(
            lr=torch.from_numpy(np.ascontiguousarray(lr)).permute(0, 3, 1, 2).float().div_(255),  # (T, 3, h, w)
            hr=torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).float().div_(255),  # (3, 4h, 4w)
            mfcc=torch.from_numpy(self.clip_mfcc(index)[frames]),  # (T, K, M)
            emotion=clip.emotion,
            au=torch.from_numpy(arrays["au"][t].astype(np.float32)),
            au_mask=bool(arrays["au_mask"][t]),
            face_box=torch.from_numpy(face),
            mouth_box=torch.from_numpy(mouth),
            crf=crf,
            key=f"{clip.key}#crf{crf}@t{t}",
            crop=crop,
        )
