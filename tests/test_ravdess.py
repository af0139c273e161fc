from pathlib import Path

import pytest

from mmsd import emotions
from mmsd.data.ravdess import Clip, ClipName, Split, list_corpus


@pytest.mark.parametrize("state", emotions.STATES, ids=lambda s: s.name)
def test_every_emotion_state_parses_from_a_name_and_prints_back(state):
    emotion, intensity = state.ravdess_codes
    text = f"01-01-{emotion:02d}-{intensity:02d}-02-01-17"
    name = ClipName.parse(f"{text}.mp4")
    assert name == ClipName(
        modality=1, channel=1, emotion=emotion, intensity=intensity, statement=2, repetition=1, actor=17
    )
    assert name.state is state
    assert str(name) == text
    assert ClipName.parse(text) == name  # stem without suffix
    assert name.male


@pytest.mark.parametrize(
    "bad, match",
    [
        ("01-01-03-02-01-01.mp4", "not a RAVDESS name"),  # six fields
        ("01-01-3-02-01-01-05.mp4", "not a RAVDESS name"),  # one digit
        ("01-01-03-02-01-01-05-07.mp4", "not a RAVDESS name"),
        ("clip.mp4", "not a RAVDESS name"),
        ("04-01-03-02-01-01-05.mp4", "modality must be 01-03, got 4"),
        ("01-03-03-02-01-01-05.mp4", "channel must be 01-02, got 3"),
        ("01-01-09-01-01-01-05.mp4", "emotion must be 01-08, got 9"),
        ("01-01-00-01-01-01-05.mp4", "emotion must be 01-08, got 0"),
        ("01-01-03-03-01-01-05.mp4", "intensity must be 01-02, got 3"),
        ("01-01-01-02-01-01-05.mp4", "neutral .* only intensity 01"),
        ("01-01-03-02-03-01-05.mp4", "statement must be 01-02, got 3"),
        ("01-01-03-02-01-00-05.mp4", "repetition must be 01-02, got 0"),
        ("01-01-03-02-01-01-25.mp4", "actor must be 01-24, got 25"),
    ],
)
def test_malformed_names_say_what_is_wrong(bad, match):
    with pytest.raises(ValueError, match=match):
        ClipName.parse(bad)


def test_clip_key_names_the_actor_folder():
    name = ClipName.parse("01-01-03-02-01-01-05.mp4")
    clip = Clip(path=Path("/x/Actor_05/01-01-03-02-01-01-05.mp4"), name=name)
    assert clip.key == "Actor_05/01-01-03-02-01-01-05"
    assert clip.csv is None and name.male


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_listing_keeps_audio_video_clips_finds_csvs_and_reports_bad_names(tmp_path):
    good = [
        _touch(tmp_path / "Actor_02/01-01-05-01-01-01-02.mp4"),
        _touch(tmp_path / "Actor_01/01-01-03-02-01-01-01.mp4"),
        _touch(tmp_path / "Actor_01/01-02-08-02-02-02-01.mp4"),  # song is audio+video too
    ]
    csv = _touch(tmp_path / "Actor_01/01-01-03-02-01-01-01.csv")
    _touch(tmp_path / "Actor_01/02-01-03-02-01-01-01.mp4")  # video only: ignored
    _touch(tmp_path / "Actor_01/03-01-03-02-01-01-01.mp4")  # audio only: ignored
    _touch(tmp_path / "Actor_01/notes.txt")
    _touch(tmp_path / "Actor_01/.01-01-03-02-01-01-01.mp4.tmp-x")  # a writer's temp file
    _touch(tmp_path / "other/01-01-03-02-01-01-01.mp4")  # not an actor folder
    bad_name = _touch(tmp_path / "Actor_01/01-01-09-01-01-01-01.mp4")
    wrong_actor = _touch(tmp_path / "Actor_02/01-01-03-02-01-01-03.mp4")
    odd = _touch(tmp_path / "Actor_02/take1.mov")

    clips, skipped = list_corpus(tmp_path)

    assert [c.key for c in clips] == [
        "Actor_01/01-01-03-02-01-01-01",
        "Actor_01/01-02-08-02-02-02-01",
        "Actor_02/01-01-05-01-01-01-02",
    ]
    assert sorted(c.path for c in clips) == sorted(good)
    assert clips[0].csv == csv and clips[1].csv is None
    assert clips[2].name.state.name == "angry-normal"
    reasons = dict(skipped)
    assert set(reasons) == {bad_name, wrong_actor, odd}
    assert "emotion must be 01-08" in reasons[bad_name]
    assert "folder Actor_02" in reasons[wrong_actor]
    assert list_corpus(tmp_path) == (clips, skipped)  # deterministic


def test_listing_a_missing_root_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        list_corpus(tmp_path / "nope")


def test_default_split_is_speaker_independent_1_18_vs_19_24():
    split = Split()
    assert split.train == tuple(range(1, 19)) and split.test == tuple(range(19, 25))
    assert split.part(18) == "train" and split.part(19) == "test"
    names = [ClipName(1, 1, 3, 1, 1, 1, actor) for actor in (1, 18, 19, 24)]
    clips = [Clip(path=Path(f"{n}.mp4"), name=n) for n in names]
    assert [c.name.actor for c in split.select(clips, "test")] == [19, 24]
    assert [c.name.actor for c in split.select(clips, "train")] == [1, 18]


def test_split_is_configurable_and_validated():
    split = Split.parse("1-3,7", "24, 20-21")
    assert split.train == (1, 2, 3, 7) and split.test == (20, 21, 24)
    assert split.part(5) is None
    with pytest.raises(ValueError, match=r"actors \[3\] are in train and test"):
        Split(train=(1, 2, 3), test=(3, 4))
    with pytest.raises(ValueError, match="must be in 1-24"):
        Split(train=(0, 1), test=(2,))
    with pytest.raises(ValueError, match="actor list must look like"):
        Split.parse("1-x", "2")
