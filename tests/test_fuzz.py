"""scripts/fuzz.py (issue 40): damaged files never crash mmsd's entry points.

The crash inputs the fuzzer found (tests/data/fuzz/ENTRY-*.mp4) are replayed, then a small campaign
with a fixed seed runs; both in one `python scripts/fuzz.py` process, which forks a child per run
from a parent that has imported torch but never run it (this process has)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEPT = sorted((ROOT / "tests" / "data" / "fuzz").glob("*-*.mp4"))
SEED = 40  # the number; any seed must pass


@pytest.fixture(scope="module")
def fuzz():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import fuzz

        yield fuzz
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def test_kept_crashes_and_a_small_campaign_end_well(fuzz, tmp_path):
    assert len(KEPT) >= 4 and {path.name.split("-")[0] for path in KEPT} >= {"decode", "encode", "personalize"}
    command = [sys.executable, str(ROOT / "scripts" / "fuzz.py"), "--replay", *map(str, KEPT), "-n", "5",
               "--seed", str(SEED), "--jobs", "2", "--crashes", str(tmp_path / "crashes")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the fuzzer found something:\n{done.stdout}\n{done.stderr[-3000:]}"
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(fuzz.ENTRY_POINTS) + len({path.name.split("-")[0] for path in KEPT})
    assert not (tmp_path / "crashes").exists()


def _result(fuzz, exit_code, stderr="", problems=()):
    case = fuzz.Case("decode", 0, "sent.mp4", ["bit flips"], b"", ".mp4")
    return fuzz.Result(case, exit_code, 0.1, stderr, list(problems))


def test_what_counts_as_a_finding(fuzz):
    assert _result(fuzz, 0).findings == []
    assert _result(fuzz, 1, "mmsd decode: error: x.mp4: has no video stream\n").findings == []
    traceback = "Traceback (most recent call last):\n  File ...\nAttributeError: 'AudioStream' ...\n"
    assert _result(fuzz, 1, traceback).findings == ["traceback", "exit 1 without an error line"]
    assert _result(fuzz, None).findings == ["hang"]
    assert _result(fuzz, -11).findings == ["signal 11"]
    assert _result(fuzz, 2, "mmsd decode: error: ...").findings == ["exit 2"]
    assert _result(fuzz, 0, problems=["file beside the output: .restored.mp4.x.tmp"]).findings == [
        "half-written: file beside the output: .restored.mp4.x.tmp"]
    assert _result(fuzz, 1, "mmsd decode: error: 'NoneType' object has no attribute 'rate'\n").findings == [
        "Python's error text: mmsd decode: error: 'NoneType' object has no attribute 'rate'"]


def test_mutations_are_reproducible_and_box_steps_keep_the_file_whole(fuzz):
    import fuzz_mutate

    seed = (ROOT / "tests" / "data" / "fuzz" / "seeds" / "sent.mp4").read_bytes()
    tree = fuzz_mutate.parse_boxes(seed)
    assert b"".join(box.to_bytes() for box in tree) == seed  # parsed and written back byte for byte
    once, again = (fuzz_mutate.mutate(seed, random.Random("1/decode/7")) for _ in range(2))
    assert once == again
    for step in ("reorder", "cut", "field", "code", "header-bits", "sideinfo"):
        mp4 = fuzz_mutate.Mp4(fuzz_mutate.parse_boxes(seed))
        assert fuzz_mutate.BOX_STEPS[step](mp4, random.Random(step))
        damaged = b"".join(box.to_bytes() for box in mp4.boxes)
        assert damaged != seed and fuzz_mutate.parse_boxes(damaged) is not None, step  # sizes recomputed
    mp4 = fuzz_mutate.Mp4(fuzz_mutate.parse_boxes(seed))
    fuzz_mutate.BOX_STEPS["sideinfo"](mp4, random.Random(3))
    start, stop = fuzz_mutate.find_sideinfo(seed)
    assert seed[start:stop] == b'{"mmsd":1,"scale":4,"emotion":[[0,4],[20,5],[40,0]]}'
