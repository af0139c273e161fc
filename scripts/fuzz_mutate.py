"""The mutations of `scripts/fuzz.py`: one valid file in, one damaged copy out, each step named.

Byte-level steps work on any container (bit flips, byte runs zeroed, set to 0xFF or
duplicated, truncation, random bytes inserted). Box-level steps read an mp4/mov as its tree
of boxes and write it back with every size recomputed, so that a change stays local: boxes
reordered, cut or given a wrong size, header fields set to absurd values (dimensions, time
scales, durations, sample rates, channel counts, sample table counts), codec and handler
codes swapped, bytes of a header box flipped, and the side-information JSON of the `comment`
tag corrupted (its length may change: the boxes around it grow or shrink). A Matroska file
gets the byte-level steps and a same-length corruption of its JSON.

`mutate(data, rng)` is a pure function of its inputs: a `random.Random` seeded with the
same value gives the same file, so a case is identified by (fuzzer seed, entry point, index).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# Boxes whose payload holds child boxes, after this many bytes of their own fields.
CONTAINERS = {b"moov": 0, b"trak": 0, b"mdia": 0, b"minf": 0, b"stbl": 0, b"udta": 0, b"edts": 0, b"dinf": 0,
              b"ilst": 0, b"meta": 4, b"stsd": 8, b"dref": 8, b"avc1": 78, b"mp4a": 28}

# box -> (offset in its payload, width in bytes, what it is); version-0 layouts, as PyAV writes them
FIELDS: dict[bytes, list[tuple[int, int, str]]] = {
    b"mvhd": [(12, 4, "movie time scale"), (16, 4, "movie duration"), (96, 4, "next track id")],
    b"tkhd": [(12, 4, "track id"), (20, 4, "track duration"), (76, 4, "track width"), (80, 4, "track height")],
    b"mdhd": [(12, 4, "media time scale"), (16, 4, "media duration")],
    b"avc1": [(24, 2, "coded width"), (26, 2, "coded height"), (74, 2, "depth")],
    b"mp4a": [(16, 2, "channel count"), (18, 2, "sample size"), (24, 4, "sample rate (16.16)")],
    b"stts": [(4, 4, "time-to-sample entries"), (8, 4, "sample count"), (12, 4, "sample delta")],
    b"ctts": [(4, 4, "composition entries"), (12, 4, "composition offset")],
    b"stsz": [(4, 4, "uniform sample size"), (8, 4, "sample count"), (12, 4, "first sample size")],
    b"stsc": [(4, 4, "sample-to-chunk entries"), (12, 4, "samples per chunk")],
    b"stco": [(4, 4, "chunk count"), (8, 4, "first chunk offset")],
    b"stss": [(4, 4, "sync sample count"), (8, 4, "first sync sample")],
    b"elst": [(4, 4, "edit count"), (8, 4, "edit duration"), (12, 4, "media time"), (16, 4, "media rate")],
    b"stsd": [(4, 4, "sample description count")],
    b"esds": [(4, 12, "audio decoder descriptor start")],
}
ABSURD = (0, 1, 2, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
CODES = (b"avc1", b"hev1", b"mp4v", b"mp4a", b"Opus", b"ac-3", b"samr", b"text", b"\x00\x00\x00\x00", b"zzzz")
HANDLERS = (b"vide", b"soun", b"text", b"meta", b"hint", b"\x00\x00\x00\x00")
# side-information texts that exercise each rule of `mmsd.media.sideinfo.parse` and its edges
BAD_JSON = [
    '{"mmsd":1,"scale":0}', '{"mmsd":1,"scale":-4}', '{"mmsd":1,"scale":4.5}', '{"mmsd":1,"scale":1e400}',
    '{"mmsd":1,"scale":99999999999999999999999}', '{"mmsd":1,"scale":' + "9" * 5000 + "}", '{"mmsd":1,"scale":true}',
    '{"mmsd":1,"scale":null}',
    '{"mmsd":"1"}', '{"mmsd":2}', '{"mmsd":NaN}', '{"mmsd":1,"emotion":{}}', '{"mmsd":1,"emotion":[[0]]}',
    '{"mmsd":1,"emotion":[[0,1e999]]}', '{"mmsd":1,"emotion":[[0,4],[99999999999999999999,5]]}',
    '{"mmsd":1,"emotion":[[0,4],[0,4]]}', '{"mmsd":1,"emotion":[[-1,4]]}', '{"mmsd":1,"emotion":[[0,15]]}',
    '{"mmsd":1,"emotion":[[0,4]],"mmsd":2}', '{"mmsd":1,"emotion":"happy"}', '{"mmsd":1,"extra":1}',
    '{"mmsd":1,"emotion":[' + "[0,4]," * 3000 + "[0,4]]}", '{"mmsd":1,"x":' + "[" * 100000 + "]" * 100000 + "}",
    "{" + "[" * 5000, "{\"mmsd\":1,\"scale\":4\x00}", '{"mmsd":1,"scale":4,"emotion":[[0,4]]} trailing',
    "{\udcff\"mmsd\":1}", "{}", "{",
]
BAD_JSON_BYTES = [b'{"mmsd":1,"scale":\xff\xfe}', b"{\xc3\x28}", b'{"mmsd":1}\xed\xa0\x80']


@dataclass
class Box:
    """One mp4 box: its four-character kind, its own fields (`head`) and its children (None: a leaf).
    `size` overrides the size written in its header (a deliberately wrong one)."""

    kind: bytes
    head: bytes
    children: list[Box] | None = None
    size: int | None = None

    def to_bytes(self) -> bytes:
        body = self.head + b"".join(child.to_bytes() for child in self.children or ())
        size = len(body) + 8 if self.size is None else self.size
        return struct.pack(">I", size & 0xFFFFFFFF) + self.kind + body


def parse_boxes(data: bytes, parent: bytes = b"") -> list[Box] | None:
    """The boxes of `data` back to back; None unless they tile it exactly (not an mp4, or damaged)."""
    boxes, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 8:
            return None
        size, kind = struct.unpack(">I", data[pos:pos + 4])[0], data[pos + 4:pos + 8]
        if size < 8 or pos + size > len(data):
            return None
        payload = data[pos + 8:pos + size]
        skip = CONTAINERS.get(kind, 0 if parent == b"ilst" else None)
        children = parse_boxes(payload[skip:], kind) if skip is not None and len(payload) > skip else None
        boxes.append(Box(kind, payload if children is None else payload[:skip], children))
        pos += size
    return boxes


def walk(boxes: list[Box]) -> Iterator[tuple[list[Box], int]]:
    """(sibling list, index) of every box, depth first."""
    for index, box in enumerate(boxes):
        yield boxes, index
        if box.children:
            yield from walk(box.children)


def _kind(kind: bytes) -> str:
    return kind.decode("latin-1").encode("unicode_escape").decode()


def _absurd(rng: random.Random, width: int) -> int:
    value = rng.choice(ABSURD) if rng.random() < 0.8 else rng.getrandbits(8 * width)
    return value & ((1 << 8 * width) - 1)


@dataclass
class Mp4:
    """A parsed mp4 being mutated in place."""

    boxes: list[Box]
    steps: list[str] = field(default_factory=list)

    def all(self, want: Callable[[Box], bool] = lambda box: True) -> list[tuple[list[Box], int]]:
        return [(siblings, i) for siblings, i in walk(self.boxes) if want(siblings[i])]


def _reorder(mp4: Mp4, rng: random.Random) -> str | None:
    groups = [siblings for siblings, i in mp4.all() if i == 0 and len(siblings) > 1]
    if not groups:
        return None
    siblings = rng.choice(groups)
    a, b = rng.sample(range(len(siblings)), 2)
    siblings[a], siblings[b] = siblings[b], siblings[a]
    return f"swap boxes {_kind(siblings[b].kind)} and {_kind(siblings[a].kind)}"


def _cut(mp4: Mp4, rng: random.Random) -> str | None:
    siblings, index = rng.choice(mp4.all())
    box = siblings.pop(index)
    return f"cut box {_kind(box.kind)}"


def _wrong_size(mp4: Mp4, rng: random.Random) -> str | None:
    siblings, index = rng.choice(mp4.all())
    box = siblings[index]
    true = len(box.to_bytes())
    box.size = rng.choice([0, 1, 7, true - 1, true + 1, true * 2, 0xFFFFFFFF, rng.randrange(1 << 32)])
    return f"size of box {_kind(box.kind)} {true} -> {box.size}"


def _field(mp4: Mp4, rng: random.Random) -> str | None:
    found = mp4.all(lambda box: box.kind in FIELDS and box.children is None or box.kind in (b"avc1", b"mp4a"))
    if not found:
        return None
    siblings, index = rng.choice(found)
    box = siblings[index]
    offset, width, name = rng.choice(FIELDS[box.kind])
    if offset + width > len(box.head):
        return None
    if width > 4:  # a run of a descriptor: random bytes
        value = rng.randbytes(width)
        box.head = box.head[:offset] + value + box.head[offset + width:]
        return f"{_kind(box.kind)} {name} -> {value.hex()}"
    value = _absurd(rng, width)
    box.head = box.head[:offset] + value.to_bytes(width, "big") + box.head[offset + width:]
    return f"{_kind(box.kind)} {name} -> {value}"


def _code(mp4: Mp4, rng: random.Random) -> str | None:
    entries = mp4.all(lambda box: box.kind in (b"avc1", b"mp4a", b"avcC", b"esds"))
    handlers = mp4.all(lambda box: box.kind == b"hdlr" and len(box.head) >= 12)
    if handlers and (not entries or rng.random() < 0.4):
        siblings, index = rng.choice(handlers)
        box = siblings[index]
        new = rng.choice(HANDLERS)
        box.head = box.head[:8] + new + box.head[12:]
        return f"handler type -> {_kind(new)}"
    if not entries:
        return None
    siblings, index = rng.choice(entries)
    box = siblings[index]
    old, box.kind = box.kind, rng.choice(CODES)
    return f"box kind {_kind(old)} -> {_kind(box.kind)}"


def _header_bytes(mp4: Mp4, rng: random.Random) -> str | None:
    leaves = mp4.all(lambda box: box.kind != b"mdat" and len(box.head) > 0)
    if not leaves:
        return None
    siblings, index = rng.choice(leaves)
    box = siblings[index]
    head = bytearray(box.head)
    flips = rng.randint(1, 4)
    for _ in range(flips):
        head[rng.randrange(len(head))] ^= 1 << rng.randrange(8)
    box.head = bytes(head)
    return f"{flips} bit(s) flipped in box {_kind(box.kind)}"


def find_sideinfo(data: bytes) -> tuple[int, int] | None:
    """(start, stop) of the side-information JSON in `data`: from '{"mmsd"' to its closing brace."""
    start = data.find(b'{"mmsd"')
    if start < 0:
        return None
    depth = 0
    for stop in range(start, len(data)):
        depth += {0x7B: 1, 0x5B: 1, 0x7D: -1, 0x5D: -1}.get(data[stop], 0)
        if depth == 0:
            return start, stop + 1
    return None


def bad_sideinfo(original: bytes, rng: random.Random) -> bytes:
    """A corrupted side-information text: a rule broken on purpose, or the original edited at random."""
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(BAD_JSON).encode("utf-8", "surrogatepass")
    if roll < 0.55:
        return rng.choice(BAD_JSON_BYTES)
    text = bytearray(original)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(text) + 1)
        action = rng.randrange(3)
        if action == 0 and at < len(text):
            del text[at]
        elif action == 1:
            text.insert(at, rng.choice(b'{}[],:"0123456789-.eE \x00\xff'))
        elif at < len(text):
            text[at] = rng.randrange(256)
    return bytes(text)


def _sideinfo(mp4: Mp4, rng: random.Random) -> str | None:
    found = mp4.all(lambda box: box.children is None and find_sideinfo(box.head) is not None)
    if not found:
        return None
    siblings, index = rng.choice(found)
    box = siblings[index]
    start, stop = find_sideinfo(box.head)
    new = bad_sideinfo(box.head[start:stop], rng)
    box.head = box.head[:start] + new + box.head[stop:]
    return f"side information -> {new[:60]!r}{'...' if len(new) > 60 else ''}"


BOX_STEPS = {"reorder": _reorder, "cut": _cut, "size": _wrong_size, "field": _field, "code": _code,
             "header-bits": _header_bytes, "sideinfo": _sideinfo}


# --------------------------------------------------------------------------- byte level


def _bit_flips(data: bytearray, rng: random.Random) -> str:
    flips = rng.randint(1, 16)
    for _ in range(flips):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return f"{flips} bit(s) flipped"


def _run(data: bytearray, rng: random.Random) -> tuple[int, int]:
    start = rng.randrange(len(data))
    return start, min(len(data), start + rng.choice([1, 2, 4, 8, 16, 64, 256, 1024, 4096]))


def _zero_run(data: bytearray, rng: random.Random) -> str:
    start, stop = _run(data, rng)
    fill = rng.choice([0x00, 0xFF])
    data[start:stop] = bytes([fill]) * (stop - start)
    return f"bytes {start}-{stop - 1} set to {fill:#04x}"


def _duplicate_run(data: bytearray, rng: random.Random) -> str:
    start, stop = _run(data, rng)
    data[stop:stop] = data[start:stop]
    return f"bytes {start}-{stop - 1} duplicated"


def _insert(data: bytearray, rng: random.Random) -> str:
    at, count = rng.randrange(len(data) + 1), rng.choice([1, 3, 16, 200])
    data[at:at] = rng.randbytes(count)
    return f"{count} random byte(s) inserted at {at}"


def _truncate(data: bytearray, rng: random.Random) -> str:
    at = rng.randrange(len(data))
    del data[at:]
    return f"truncated at {at}"


def _sideinfo_same_length(data: bytearray, rng: random.Random) -> str | None:
    span = find_sideinfo(bytes(data))
    if span is None:
        return None
    start, stop = span
    new = bad_sideinfo(bytes(data[start:stop]), rng)[:stop - start].ljust(stop - start)
    data[start:stop] = new
    return f"side information (same length) -> {new!r}"


BYTE_STEPS = {"bit-flips": _bit_flips, "zero-run": _zero_run, "duplicate-run": _duplicate_run, "insert": _insert,
              "truncate": _truncate, "sideinfo-in-place": _sideinfo_same_length}
# how often each step is drawn; truncation is applied last, whatever the draw order
WEIGHTS = {"bit-flips": 4, "zero-run": 2, "duplicate-run": 1, "insert": 1, "truncate": 2, "sideinfo-in-place": 1,
           "reorder": 1, "cut": 1, "size": 1, "field": 3, "code": 1, "header-bits": 2, "sideinfo": 2}


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """A damaged copy of `data` and the steps that made it (1 to 3 of them)."""
    tree = parse_boxes(data)
    names = [name for name in WEIGHTS if tree is not None or name in BYTE_STEPS]
    count = rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
    chosen = sorted(rng.choices(names, weights=[WEIGHTS[n] for n in names], k=count),
                    key=lambda name: (name in BYTE_STEPS, name == "truncate"))  # box steps need an intact tree
    steps: list[str] = []
    mp4 = Mp4(tree) if tree is not None else None
    out = bytearray(data)
    for name in chosen:
        if name in BOX_STEPS:
            step = BOX_STEPS[name](mp4, rng)
            out = bytearray(b"".join(box.to_bytes() for box in mp4.boxes))
        else:
            step = BYTE_STEPS[name](out, rng) if out else None
        if step:
            steps.append(step)
    if not steps or bytes(out) == data:
        steps.append(_bit_flips(out, rng))
    return bytes(out), steps

