"""RAVDESS file names, corpus listing and the speaker-independent split.

A RAVDESS video is named ``MM-VV-EE-II-SS-RR-AA.mp4`` (Livingstone & Russo 2018):
modality (01 audio+video, 02 video only, 03 audio only), vocal channel (01 speech,
02 song), emotion (01..08), intensity (01 normal, 02 strong; neutral only 01),
statement (01, 02), repetition (01, 02), actor (01..24, odd actors male). The corpus
is laid out as ``Actor_01/ ... Actor_24/``. An OpenFace CSV with the same stem next
to a video (``Actor_05/01-01-03-02-01-01-05.csv``) supplies AU targets and landmarks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmsd import emotions
from mmsd.emotions import EmotionState

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
NUM_ACTORS = 24

# field name -> inclusive range of its code
_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("modality", 1, 3),
    ("channel", 1, 2),
    ("emotion", 1, 8),
    ("intensity", 1, 2),
    ("statement", 1, 2),
    ("repetition", 1, 2),
    ("actor", 1, NUM_ACTORS),
)
_NAME_RE = re.compile(r"^\d\d(-\d\d){6}$")
_ACTOR_DIR_RE = re.compile(r"^Actor_(\d\d)$")


@dataclass(frozen=True)
class ClipName:
    """The seven codes of a RAVDESS name ``MM-VV-EE-II-SS-RR-AA``."""

    modality: int
    channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    def __post_init__(self) -> None:
        for field, low, high in _FIELDS:
            value = getattr(self, field)
            if not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"RAVDESS {field} must be {low:02d}-{high:02d}, got {value!r}")
        if self.emotion == 1 and self.intensity != 1:
            raise ValueError(f"RAVDESS neutral (emotion 01) has only intensity 01, got {self.intensity:02d}")

    @classmethod
    def parse(cls, name: str) -> ClipName:
        """Codes from a file name or stem, e.g. '01-01-03-02-01-01-05.mp4'; ValueError if malformed."""
        stem = Path(name).name
        for suffix in (*VIDEO_SUFFIXES, ".csv"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        if not _NAME_RE.match(stem):
            raise ValueError(f"not a RAVDESS name (MM-VV-EE-II-SS-RR-AA, two digits each): {name!r}")
        try:
            return cls(*(int(code) for code in stem.split("-")))
        except ValueError as exc:
            raise ValueError(f"{name!r}: {exc}") from None

    @property
    def state(self) -> EmotionState:
        """The emotion state (one of 15) of this clip."""
        return emotions.from_ravdess(self.emotion, self.intensity)

    @property
    def male(self) -> bool:
        return self.actor % 2 == 1

    def __str__(self) -> str:
        return "-".join(f"{getattr(self, field):02d}" for field, _, _ in _FIELDS)


@dataclass(frozen=True)
class Clip:
    """One audio+video clip of the corpus, with its OpenFace CSV when present."""

    path: Path
    name: ClipName
    csv: Path | None = None

    @property
    def key(self) -> str:
        """Stable id relative to the corpus root, e.g. 'Actor_05/01-01-03-02-01-01-05'."""
        return f"Actor_{self.name.actor:02d}/{self.name}"


def list_corpus(root: str | Path) -> tuple[list[Clip], list[tuple[Path, str]]]:
    """Audio+video clips (modality 01) under ``root/Actor_XX/``, sorted by key.

    Returns (clips, skipped): skipped lists (path, reason) for files that look like
    videos but cannot be used (malformed name, actor not matching its folder,
    duplicate stem). Non-video files and other modalities are ignored silently
    (modality 02/03 are not errors, just not this task's input).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"corpus root is not a directory: {root}")
    clips: dict[str, Clip] = {}
    skipped: list[tuple[Path, str]] = []
    for actor_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        match = _ACTOR_DIR_RE.match(actor_dir.name)
        if not match:
            continue
        folder_actor = int(match.group(1))
        for path in sorted(actor_dir.iterdir()):
            if not path.is_file() or path.suffix.lower() not in VIDEO_SUFFIXES or path.name.startswith("."):
                continue
            try:
                name = ClipName.parse(path.name)
            except ValueError as exc:
                skipped.append((path, str(exc)))
                continue
            if name.actor != folder_actor:
                skipped.append((path, f"actor {name.actor:02d} in the name but folder {actor_dir.name}"))
                continue
            if name.modality != 1:
                continue
            csv = path.with_suffix(".csv")
            clip = Clip(path=path, name=name, csv=csv if csv.is_file() else None)
            if clip.key in clips:
                skipped.append((path, f"duplicate of {clips[clip.key].path.name}"))
                continue
            clips[clip.key] = clip
    return [clips[k] for k in sorted(clips)], skipped


@dataclass(frozen=True)
class Split:
    """Speaker-independent split by actor: test actors are never seen in training."""

    train: tuple[int, ...] = tuple(range(1, 19))
    test: tuple[int, ...] = tuple(range(19, NUM_ACTORS + 1))

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            actors = tuple(int(a) for a in getattr(self, part))
            bad = [a for a in actors if not 1 <= a <= NUM_ACTORS]
            if bad:
                raise ValueError(f"split {part} actors must be in 1-{NUM_ACTORS}, got {bad}")
            if len(set(actors)) != len(actors):
                raise ValueError(f"split {part} lists an actor twice: {sorted(actors)}")
            object.__setattr__(self, part, tuple(sorted(actors)))
        shared = sorted(set(self.train) & set(self.test))
        if shared:
            raise ValueError(f"split is not speaker-independent: actors {shared} are in train and test")

    @classmethod
    def parse(cls, train: str, test: str) -> Split:
        """From actor lists like '1-18' and '19,20,21-24'."""
        return cls(train=_parse_actor_list(train), test=_parse_actor_list(test))

    def part(self, actor: int) -> str | None:
        """'train', 'test' or None for an actor in neither part."""
        if actor in self.train:
            return "train"
        if actor in self.test:
            return "test"
        return None

    def select(self, clips: list[Clip], part: str) -> list[Clip]:
        """The clips of one part ('train' or 'test')."""
        if part not in ("train", "test"):
            raise ValueError(f"split part must be 'train' or 'test', got {part!r}")
        actors = set(getattr(self, part))
        return [c for c in clips if c.name.actor in actors]


def _parse_actor_list(text: str) -> tuple[int, ...]:
    actors: list[int] = []
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        low, sep, high = item.partition("-")
        try:
            actors.extend(range(int(low), int(high) + 1) if sep else [int(low)])
        except ValueError:
            raise ValueError(f"actor list must look like '1-18' or '19,20,21-24', got {text!r}") from None
    return tuple(actors)
