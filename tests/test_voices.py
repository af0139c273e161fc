"""Unfamiliar voices (issue 13, part 3): running MFCC normalisation, voice variants, swapped audio."""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np
import pytest

from mmsd.data.dataset import VOICES_FILE, CacheDataset, ClipIndex
from mmsd.media import audio


def _speechlike(seconds: float = 1.5, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Harmonics at a gliding pitch under a syllable-rate envelope: float32 (S,)."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    noise = np.random.default_rng(seed).standard_normal(t.size) * 0.01
    return (0.1 * voice * envelope + noise).astype(np.float32)


def test_running_cmvn_streams_exactly_what_the_whole_utterance_gets():
    mfcc = audio.mfcc_for_frames(_speechlike(), 40, Fraction(30))
    whole = audio.normalise(mfcc, "cmvn")
    cmvn = audio.RunningCmvn()
    streamed = np.stack([cmvn(frame) for frame in mfcc])
    np.testing.assert_array_equal(streamed, whole)
    assert np.array_equal(audio.normalise(mfcc, "none"), mfcc)
    # raw coefficients sit tens of units off zero; normalised ones near it (the running mean lags a drifting voice)
    late = whole[10:].reshape(-1, mfcc.shape[-1])
    assert np.abs(mfcc.reshape(-1, mfcc.shape[-1]).mean(axis=0)).mean() > 10.0
    assert np.abs(late.mean(axis=0)).mean() < 1.0 and 0.5 < late.std(axis=0).mean() < 1.5


def test_running_cmvn_removes_loudness_and_channel_offsets_and_keeps_silence():
    mfcc = audio.mfcc_for_frames(_speechlike(), 40, Fraction(30))
    louder = audio.mfcc_for_frames(_speechlike() * 4.0, 40, Fraction(30))  # +12 dB: shifts c0
    assert np.abs(louder - mfcc).max() > 5.0
    np.testing.assert_allclose(audio.normalise(louder, "cmvn")[4:], audio.normalise(mfcc, "cmvn")[4:], atol=0.05)
    coloured = mfcc * 1.5 + np.linspace(-20, 20, mfcc.shape[-1], dtype=np.float32)  # another channel/timbre
    difference = np.abs(audio.normalise(coloured, "cmvn")[10:] - audio.normalise(mfcc, "cmvn")[10:])
    assert difference.mean() < 0.05 and difference.max() < 0.3  # raw: 20 units apart (the variance floor stays)
    silent = np.zeros((5, 4, 20), np.float32)
    assert not audio.normalise(np.concatenate([mfcc[:5], silent]), "cmvn")[5:].any()  # no audio stays zero
    with pytest.raises(ValueError, match="mfcc_norm"):
        audio.normalise(mfcc, "loud")


def test_pitch_shift_moves_the_pitch_and_keeps_the_length():
    from mmsd.data.voices import pitch_shift

    rate = 16000
    tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate)).astype(np.float32)
    for semitones in (-4.0, 3.0):
        shifted = pitch_shift(tone, semitones)
        assert shifted.shape == tone.shape
        peak = np.fft.rfftfreq(tone.size, 1 / rate)[np.argmax(np.abs(np.fft.rfft(shifted)))]
        assert peak == pytest.approx(200 * 2 ** (semitones / 12), rel=0.02)


@pytest.fixture(scope="module")
def voiced_cache(prepared_cache, tmp_path_factory):
    """A copy of the fixture cache with 2 voice variants per clip that has audio (`mmsd voices`)."""
    from mmsd.cli import main

    out = tmp_path_factory.mktemp("voiced") / "cache"
    shutil.copytree(prepared_cache, out)
    assert main(["voices", str(out), "--variants", "2", "--no-progress"]) == 0
    return out


def test_voices_writes_deterministic_variants_for_clips_with_audio(voiced_cache, prepared_cache, tmp_path):
    from mmsd.cli import main

    index = ClipIndex(voiced_cache)
    for clip in index.clips:
        reader = index.reader(clip)
        if not clip.has_audio:
            assert not (clip.path / VOICES_FILE).exists() and len(reader.voices) == 0
            continue
        voices = reader.voices
        assert voices.shape == (2, *reader.arrays["mfcc"].shape)
        assert np.abs(voices[0] - reader.arrays["mfcc"]).mean() > 1.0  # another voice, not a copy
        assert np.abs(voices[0] - voices[1]).mean() > 1.0
    # the same seed gives the same variants; a re-run leaves finished clips alone
    again = tmp_path / "cache"
    shutil.copytree(prepared_cache, again)
    assert main(["voices", str(again), "--variants", "2", "--no-progress"]) == 0
    key = next(c.key for c in index.clips if c.has_audio)
    with np.load(voiced_cache / key / VOICES_FILE) as a, np.load(again / key / VOICES_FILE) as b:
        np.testing.assert_array_equal(a["mfcc"], b["mfcc"])
    stamp = (again / key / VOICES_FILE).stat().st_mtime_ns
    assert main(["voices", str(again), "--variants", "2", "--no-progress"]) == 0
    assert (again / key / VOICES_FILE).stat().st_mtime_ns == stamp


def test_dataset_reads_normalised_variant_or_swapped_audio(voiced_cache):
    index = ClipIndex(voiced_cache)
    voiced = [c for c in index.clips if c.has_audio]
    first, other = voiced[0], voiced[1]
    plain = CacheDataset(voiced_cache, actors=None, keys=[first.key], radius=1)
    normed = CacheDataset(voiced_cache, actors=None, keys=[first.key], radius=1, mfcc_norm="cmvn")
    varied = CacheDataset(voiced_cache, actors=None, keys=[first.key], radius=1, mfcc_norm="cmvn", voice_augment=1.0)
    swapped = CacheDataset(voiced_cache, actors=None, keys=[first.key], radius=1, audio_from={first.key: other.key})
    reader = index.reader(first)
    raw = reader.arrays["mfcc"]
    np.testing.assert_array_equal(plain.clip_mfcc(0), raw)
    np.testing.assert_array_equal(normed.clip_mfcc(0), audio.normalise(raw, "cmvn"))
    variants = [audio.normalise(v, "cmvn") for v in reader.voices]
    picked = [varied.clip_mfcc(i) for i in range(len(varied))]
    assert all(any(np.array_equal(p, v) for v in variants) for p in picked)
    assert len({p.tobytes() for p in picked}) == 2  # both variants are used
    theirs = index.reader(other).arrays["mfcc"]
    n = min(len(theirs), first.num_frames)
    np.testing.assert_array_equal(swapped.clip_mfcc(0)[:n], theirs[:n])
    sample = swapped[0]
    t = int(swapped.items[0][2])
    np.testing.assert_array_equal(sample.mfcc.numpy()[1], swapped.clip_mfcc(0)[t])


def test_audio_mismatch_gives_some_items_another_clips_audio_and_is_repeatable(voiced_cache, monkeypatch):
    from mmsd.data.dataset import ClipReader

    keys = [c.key for c in ClipIndex(voiced_cache).clips if c.has_audio][:3]
    # the fixture's clips share one soundtrack: give each clip an MFCC that says whose it is
    monkeypatch.setattr(ClipReader, "mfcc", lambda reader, norm="none", voice=None: np.full(
        (reader.clip.num_frames, 4, 20), keys.index(reader.clip.key), np.float32))
    mixed = CacheDataset(voiced_cache, actors=None, keys=keys, radius=1, audio_mismatch=0.5)
    own = [keys.index(mixed.clips[int(ci)].key) for ci in mixed.items[:, 0]]

    def heard():
        return [int(mixed.clip_mfcc(i)[0, 0, 0]) for i in range(len(mixed))]

    first = heard()
    foreign = [a != b for a, b in zip(first, own)]
    assert 0.2 < np.mean(foreign) < 0.8  # about half the items hear another clip ...
    assert {a for a, b in zip(first, own) if a != b} == {0, 1, 2}  # ... any of the others
    assert heard() == first  # the same within an epoch
    mixed.set_epoch(1)
    assert heard() != first  # redrawn in the next
    plain = CacheDataset(voiced_cache, actors=None, keys=keys, radius=1)
    assert [int(plain.clip_mfcc(i)[0, 0, 0]) for i in range(len(plain))] == own
    with pytest.raises(ValueError, match="audio_mismatch"):
        CacheDataset(voiced_cache, actors=None, keys=keys, audio_mismatch=1.5)


def test_swapped_audio_pairs_the_same_sentence_of_the_next_actor():
    from types import SimpleNamespace

    from mmsd.evaluation.protocol import swapped_audio

    def clip(actor, emotion, statement):
        key = f"Actor_{actor:02d}/01-01-{emotion + 1:02d}-01-{statement:02d}-01-{actor:02d}"
        return SimpleNamespace(key=key, actor=actor, emotion=emotion, channel=1, statement=statement, repetition=1)

    clips = [clip(a, e, s) for a in (19, 20, 21) for e in (0, 3) for s in (1, 2)] + [clip(22, 5, 1)]
    pairs = swapped_audio(clips)
    assert pairs[clip(19, 3, 2).key] == clip(20, 3, 2).key
    assert pairs[clip(20, 0, 1).key] == clip(21, 0, 1).key
    assert clip(21, 0, 1).key not in pairs  # the next actor (22) never said it: keeps its own audio
    assert clip(22, 5, 1).key not in pairs  # the last actor's partner is the first (19): no such clip
    assert len(pairs) == 12 - 4
