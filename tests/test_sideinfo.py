from __future__ import annotations

import itertools
import json

import pytest

from mmsd import emotions
from mmsd.errors import MmsdError
from mmsd.media.sideinfo import SideInfo, SideInfoError, from_metadata, parse, read_emotion_track


def test_round_trip_and_compact_json():
    info = SideInfo(scale=4, segments=((0, 0), (75, 6), (210, 5)))
    text = info.to_json()
    assert text == '{"mmsd":1,"scale":4,"emotion":[[0,0],[75,6],[210,5]]}'
    assert parse(text) == info
    assert info.bits == 8 * len(text)
    assert SideInfo(scale=2).to_json() == '{"mmsd":1,"scale":2}'
    assert parse(SideInfo(scale=2).to_json()) == SideInfo(scale=2)


def test_state_at_and_per_frame_states():
    info = SideInfo(segments=((0, 3), (5, 7), (6, 1)))
    assert [info.state_at(t) for t in range(9)] == [3, 3, 3, 3, 3, 7, 1, 1, 1]
    assert list(itertools.islice(info.states(), 9)) == [3, 3, 3, 3, 3, 7, 1, 1, 1]
    assert SideInfo().state_at(10) is None
    assert not SideInfo().has_emotion


def test_from_states_run_length_codes():
    states = ["neutral"] * 4 + ["happy-strong"] * 3 + [4, 4, 0]
    info = SideInfo.from_states(states, scale=4)
    assert info.segments == ((0, 0), (4, emotions.parse("happy-strong").id), (9, 0))
    assert [info.state_at(t) for t in range(10)] == [emotions.parse(s).id for s in states]
    assert info.truncated(9).segments == info.segments[:2]


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"mmsd":1,"scale":4,', "malformed side-information JSON"),
        ('{"mmsd":2,"scale":4}', "unsupported side-information version 2"),
        ('{"scale":4}', "not mmsd side information"),
        ('{"mmsd":1,"scale":0}', "scale must be a positive integer"),
        ('{"mmsd":1,"emotion":[[0,15]]}', "state id 15 is not in 0..14"),
        ('{"mmsd":1,"emotion":[[0,-1]]}', "state id -1"),
        ('{"mmsd":1,"emotion":[[3,1]]}', "must start at frame 0"),
        ('{"mmsd":1,"emotion":[[0,1],[9,2],[9,3]]}', "starts at frame 9, not after frame 9"),
        ('{"mmsd":1,"emotion":[[0,"happy"]]}', r"must be \[first frame, state id\]"),
        ('{"mmsd":1,"emotion":{"0":1}}', "must be a list"),
        ('{"mmsd":1,"crf":40}', "unknown keys: crf"),
        # damaged comments (issue 40's fuzzer): past the JSON parser's limits, or megabytes long
        ("[" * 5000, r"malformed side-information JSON \(nested too deeply\)"),
        ('{"mmsd":1,"scale":' + "9" * 5000 + "}", r"malformed side-information JSON \(a number too long\)"),
        ('{"mmsd":1,"emotion":[[0,4' + ",4" * 5000 + "]]}", r"got \[0, 4, 4, .*\.\.\.$"),
        ('{"mmsd":1,"scale":"' + "x" * 5000 + '"}', r"got 'xxx.*\.\.\.$"),
        ('{"mmsd":1' + "".join(f',"k{i}":0' for i in range(999)) + "}", "unknown keys: k0, k1, "),
    ],
)
def test_parse_rejects_bad_side_information_in_one_line(text, match):
    with pytest.raises(SideInfoError, match=match) as info:
        parse(text)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_from_metadata_ignores_plain_comments():
    assert from_metadata({}) is None
    assert from_metadata({"comment": "recorded at the lab"}) is None
    assert from_metadata({"comment": SideInfo(scale=3).to_json()}) == SideInfo(scale=3)
    with pytest.raises(SideInfoError):
        from_metadata({"comment": "{broken"})


def test_emotion_track_csv(tmp_path):
    path = tmp_path / "track.csv"
    path.write_text("frame,state\n2,happy-strong\n10,happy-strong\n25,6\n40,03-01\n")
    info = read_emotion_track(path, scale=4)
    happy = emotions.parse("happy-strong").id
    # the first row also covers the frames before it; equal neighbours merge
    assert info.segments == ((0, happy), (25, 6), (40, emotions.from_ravdess(3, 1).id))
    assert json.loads(info.to_json())["emotion"] == [list(s) for s in info.segments]


@pytest.mark.parametrize(
    "body, match",
    [
        ("frame,state\n0,grumpy\n", r"track.csv:2: unknown emotion state 'grumpy'"),
        ("0,neutral\n5,sad-normal\n5,calm-normal\n", "track.csv:3: frame 5 does not follow frame 5"),
        ("0,neutral,extra\n", "expected 'frame,state'"),
        ("frame,state\n", "has no rows"),
    ],
)
def test_emotion_track_errors(tmp_path, body, match):
    path = tmp_path / "track.csv"
    path.write_text(body)
    with pytest.raises(MmsdError, match=match):
        read_emotion_track(path)
