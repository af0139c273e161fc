import numpy as np
import pytest

from mmsd import emotions


def test_fifteen_states_with_stable_ids_and_unique_names():
    assert emotions.NUM_STATES == 15
    assert [s.id for s in emotions.STATES] == list(range(15))
    assert len(set(emotions.NAMES)) == 15
    assert emotions.STATES[0].name == "neutral"
    assert emotions.parse("happy-strong").id == 4
    assert emotions.STATES[14].name == "surprised-strong"


@pytest.mark.parametrize("state", emotions.STATES, ids=lambda s: s.name)
def test_every_state_round_trips_through_name_id_and_ravdess_codes(state):
    assert emotions.parse(state.name) is state
    assert emotions.parse(state.id) is state
    assert emotions.parse(str(state.id)) is state
    emotion_code, intensity_code = state.ravdess_codes
    assert emotions.from_ravdess(emotion_code, intensity_code) is state
    assert emotions.parse(f"{emotion_code:02d}-{intensity_code:02d}") is state


def test_neutral_has_only_normal_intensity():
    assert emotions.from_ravdess(1, 1) is emotions.NEUTRAL
    assert emotions.parse("Neutral-Normal") is emotions.NEUTRAL
    with pytest.raises(ValueError, match="neutral only 01"):
        emotions.from_ravdess(1, 2)


@pytest.mark.parametrize("bad", ["joyful", "happy-extreme", "09-01", "03-03", 15, -1, "", 2.5])
def test_bad_states_are_rejected_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="emotion"):
        emotions.parse(bad)


def test_one_hot_vectors():
    s = emotions.parse("sad-normal").one_hot()
    assert s.shape == (15,) and s.dtype == np.float32
    assert s.sum() == 1 and s[emotions.parse("sad-normal").id] == 1
    batch = emotions.one_hot(np.array([[0, 14], [3, 3]]))
    assert batch.shape == (2, 2, 15)
    np.testing.assert_array_equal(batch.argmax(-1), [[0, 14], [3, 3]])
    with pytest.raises(ValueError, match="0..14"):
        emotions.one_hot(np.array([15]))
