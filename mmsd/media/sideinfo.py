"""Side information: what the sender adds to the mp4 for the soft decoder, in the `comment` tag.

Compact JSON, one object, no spaces::

    {"mmsd":1,"scale":4,"emotion":[[0,0],[75,6],[210,5]]}

* ``mmsd``: the format version (1). Its presence marks the comment as ours.
* ``scale``: the downsampling factor the sender applied (the decoder upsamples by it).
* ``emotion`` (optional): the emotion state per segment, run-length coded as
  ``[first frame, state id]`` pairs (0-based frame index, state ids of `mmsd.emotions`),
  first frames strictly increasing from 0; a segment lasts until the next one starts.
  Absent or empty when the sender gave no state.
* ``size`` (optional): ``[width, height]`` of the picture in the coded frames' top-left corner,
  when the coded frames are larger: the sender pads an odd width or height by one repeated
  column or row, since x264's 4:2:0 (what the networks were trained on and every player
  decodes) needs even sizes. The decoder crops its output to ``scale`` times this size.

A constant state costs ~40 bytes for the whole file; each change adds ~8 bytes.
A comment that does not start with ``{`` is someone else's text and means "no side
information"; one that does must parse, or `parse` raises a one-line `SideInfoError`.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmsd import emotions
from mmsd.errors import MmsdError

VERSION = 1
TAG = "comment"  # the container metadata key that carries the JSON

Segment = tuple[int, int]  # (first frame, state id)


class SideInfoError(MmsdError):
    """Side information that cannot be read; the message says which part is wrong."""


@dataclass(frozen=True)
class SideInfo:
    """Scale and run-length emotion segments of an encoded file."""

    scale: int = 4
    segments: tuple[Segment, ...] = ()
    version: int = VERSION
    size: tuple[int, int] | None = None  # (width, height) of the picture inside padded coded frames

    def __post_init__(self) -> None:
        if self.version != VERSION:
            raise SideInfoError(f"unsupported side-information version {_shown(self.version)} "
                                f"(this mmsd reads {VERSION})")
        if not _is_int(self.scale) or self.scale < 1:
            raise SideInfoError(f"side-information scale must be a positive integer, got {_shown(self.scale)}")
        if self.size is not None:
            if not (isinstance(self.size, (tuple, list)) and len(self.size) == 2
                    and all(_is_int(n) and n >= 1 for n in self.size)):
                raise SideInfoError(f"side-information size must be [width, height], got {_shown(self.size)}")
            object.__setattr__(self, "size", tuple(self.size))
        previous = -1
        for index, segment in enumerate(self.segments):
            if not (isinstance(segment, (tuple, list)) and len(segment) == 2 and all(map(_is_int, segment))):
                raise SideInfoError(f"emotion segment {index} must be [first frame, state id], "
                                    f"got {_shown(segment)}")
            first, state = segment
            if index == 0 and first != 0:
                raise SideInfoError(f"the first emotion segment must start at frame 0, got {first}")
            if first <= previous:
                raise SideInfoError(f"emotion segment {index} starts at frame {first}, not after frame {previous}")
            if not 0 <= state < emotions.NUM_STATES:
                raise SideInfoError(f"emotion segment {index}: state id {state} is not in 0..{emotions.NUM_STATES - 1}")
            previous = first
        object.__setattr__(self, "segments", tuple((int(f), int(s)) for f, s in self.segments))

    @classmethod
    def from_states(cls, states: Iterable[int | str | emotions.EmotionState], *, scale: int = 4) -> SideInfo:
        """Run-length code one state per frame (ids, names or EmotionState)."""
        segments: list[Segment] = []
        for frame, value in enumerate(states):
            state = emotions.parse(value).id
            if not segments or segments[-1][1] != state:
                segments.append((frame, state))
        return cls(scale=scale, segments=tuple(segments))

    @property
    def has_emotion(self) -> bool:
        return bool(self.segments)

    def state_at(self, frame: int) -> int | None:
        """The state id of a 0-based frame; None when the file carries no emotion."""
        if not self.segments:
            return None
        if frame < 0:
            raise ValueError(f"frame index must be >= 0, got {frame}")
        index = bisect.bisect_right(self.segments, frame, key=lambda segment: segment[0]) - 1
        return self.segments[index][1]

    def states(self) -> Iterator[int]:
        """State id of frame 0, 1, 2, ... (endless: the last segment lasts forever). Needs emotion."""
        if not self.segments:
            raise ValueError("this side information carries no emotion state")
        for (first, state), (following, _) in zip(self.segments, self.segments[1:]):
            for _ in range(following - first):
                yield state
        while True:
            yield self.segments[-1][1]

    def truncated(self, num_frames: int) -> SideInfo:
        """The same, without segments that start at or after ``num_frames``."""
        return dataclasses.replace(self, segments=tuple(s for s in self.segments if s[0] < num_frames))

    def crop(self, frame: np.ndarray, scale: int) -> np.ndarray:
        """A frame restored `scale` x from the coded frames (H, W, C), the sender's padding cut off
        (`size`); unchanged when the file carries no size."""
        if self.size is None:
            return frame
        width, height = (scale * n for n in self.size)
        return np.ascontiguousarray(frame[:height, :width])

    def to_json(self) -> str:
        data: dict = {"mmsd": self.version, "scale": self.scale}
        if self.segments:
            data["emotion"] = [list(segment) for segment in self.segments]
        if self.size is not None:
            data["size"] = list(self.size)
        return json.dumps(data, separators=(",", ":"))

    @property
    def bits(self) -> int:
        """Size of the comment value in bits (UTF-8), for the rate report."""
        return 8 * len(self.to_json().encode("utf-8"))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cut(text: str, limit: int = 60) -> str:
    """Text read from a file, cut short for a one-line message: a damaged comment can hold megabytes."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _shown(value) -> str:
    return _cut(repr(value))


def parse(text: str) -> SideInfo:
    """SideInfo from the JSON text of a `comment` tag; SideInfoError (one line) if malformed."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SideInfoError(f"malformed side-information JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise SideInfoError("malformed side-information JSON (nested too deeply)") from None
    except ValueError:  # an integer of thousands of digits, past Python's int_max_str_digits
        raise SideInfoError("malformed side-information JSON (a number too long)") from None
    if not isinstance(data, dict) or "mmsd" not in data:
        raise SideInfoError("the comment holds JSON but not mmsd side information (no \"mmsd\" version key)")
    unknown = sorted(set(data) - {"mmsd", "scale", "emotion", "size"})
    if data["mmsd"] != VERSION:
        raise SideInfoError(f"unsupported side-information version {_shown(data['mmsd'])} "
                            f"(this mmsd reads {VERSION})")
    if unknown:
        raise SideInfoError(f"side information has unknown keys: {_cut(', '.join(unknown))}")
    segments = data.get("emotion", [])
    if not isinstance(segments, list):
        raise SideInfoError(f"side-information emotion must be a list of [first frame, state id], got "
                            f"{_shown(segments)}")
    return SideInfo(scale=data.get("scale", 4), segments=tuple(segments), version=data["mmsd"], size=data.get("size"))


def from_metadata(metadata: dict[str, str]) -> SideInfo | None:
    """The side information in container metadata, None if there is none (no or a plain-text comment)."""
    text = metadata.get(TAG)
    if text is None or not text.lstrip().startswith("{"):
        return None
    return parse(text)


def read_emotion_track(path: str | os.PathLike, *, scale: int = 4) -> SideInfo:
    """Side information from a CSV of ``frame,state`` rows (state = name, id or RAVDESS codes).

    Each row sets the state from its 0-based frame on; rows must be in increasing frame
    order and the first row's state also covers the frames before it. A header line
    ``frame,state`` is optional. Equal consecutive states merge.
    """
    path = Path(path)
    if not path.is_file():
        raise MmsdError(f"{path}: no such emotion-track file")
    rows: list[Segment] = []
    try:
        with open(path, newline="") as f:
            for number, row in enumerate(csv.reader(f), start=1):
                cells = [cell.strip() for cell in row]
                if not any(cells) or cells[0].startswith("#"):
                    continue
                if number == 1 and cells[0].lower() == "frame":
                    continue
                if len(cells) != 2 or not cells[0].isdigit():
                    raise MmsdError(f"{path}:{number}: expected 'frame,state', got {','.join(row)!r}")
                try:
                    state = emotions.parse(cells[1]).id
                except ValueError as exc:
                    raise MmsdError(f"{path}:{number}: {exc}") from None
                frame = int(cells[0])
                if rows and frame <= rows[-1][0]:
                    raise MmsdError(f"{path}:{number}: frame {frame} does not follow frame {rows[-1][0]}")
                rows.append((frame, state))
    except (OSError, UnicodeDecodeError) as exc:
        raise MmsdError(f"{path}: cannot read the emotion track ({exc})") from None
    if not rows:
        raise MmsdError(f"{path}: the emotion track has no rows")
    segments: list[Segment] = []
    for frame, state in rows:
        if not segments or segments[-1][1] != state:
            segments.append((frame if segments else 0, state))
    return SideInfo(scale=scale, segments=tuple(segments))
