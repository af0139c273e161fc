"""Synthetic corpus (mmsd.data.synth): speech, visemes, AUs, renderer and `mmsd synth --preset tiny`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mmsd import emotions
from mmsd.cli import main as cli_main
from mmsd.data.openface import AU_INTENSITY, read_csv
from mmsd.data.ravdess import ClipName
from mmsd.data.synth import acceptance, expression, generate, shape, speech, visemes
from mmsd.media.codec import probe, read_audio, read_frames

AU = {name: i for i, name in enumerate(AU_INTENSITY)}
TINY_CLIPS = 2 * 4  # actors x states, one statement


def _tiny(out: Path, workers: int = 1) -> int:
    return cli_main(["synth", "--out", str(out), "--preset", "tiny", "--workers", str(workers), "--quiet"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    assert _tiny(out) == 0
    return out


@pytest.fixture(scope="module")
def tiny_stats(tiny) -> list[acceptance.ClipStats]:
    return [acceptance.clip_stats(p) for p in sorted(tiny.glob("Actor_*/*.mp4"))]


# ---- speech ------------------------------------------------------------------------------
def test_speech_gives_audio_and_timed_phonemes():
    utt = speech.synthesize(speech.STATEMENTS[1], speech.actor_voice(1))
    assert utt.sample_rate > 8000 and 1.0 < utt.duration < 4.0
    assert np.sqrt(np.mean(utt.samples ** 2)) > 0.01
    starts = [p.start for p in utt.phonemes]
    assert starts == sorted(starts) and len(utt.phonemes) >= 12
    assert {"PBM", "A", "C"} <= {visemes.viseme_of(p.name) for p in utt.phonemes}  # b(y), (t)a(lking)


def test_speech_is_reproducible_whatever_came_before():
    voice = speech.actor_voice(2)
    first = speech.synthesize(speech.STATEMENTS[2], voice)
    speech.synthesize(speech.STATEMENTS[1], speech.actor_voice(7))
    again = speech.synthesize(speech.STATEMENTS[2], voice)
    assert np.array_equal(first.samples, again.samples) and first.phonemes == again.phonemes


def test_prosody_follows_emotion_and_intensity():
    base = speech.actor_voice(3)

    def utter(name):
        return speech.synthesize(speech.STATEMENTS[1], speech.emotional_voice(base, emotions.parse(name)))

    sad, angry, sad_normal = utter("sad-strong"), utter("angry-strong"), utter("sad-normal")
    rms = lambda u: float(np.sqrt(np.mean(u.samples ** 2)))
    assert sad.duration > sad_normal.duration > angry.duration  # sad slower, strong more
    assert rms(angry) > 1.5 * rms(sad)
    v_sad = speech.emotional_voice(base, emotions.parse("sad-strong"))
    v_happy = speech.emotional_voice(base, emotions.parse("happy-strong"))
    assert v_sad.pitch < base.pitch < v_happy.pitch


def test_voices_differ_by_actor_and_gender():
    voices = [speech.actor_voice(a) for a in range(1, 25)]
    assert len(set(voices)) == 24
    assert all("+m" in v.name for v in voices[0::2]) and all("+f" in v.name for v in voices[1::2])


# ---- visemes and AUs ---------------------------------------------------------------------
@pytest.mark.parametrize("phoneme, viseme", [("b", "PBM"), ("m", "PBM"), ("f", "FV"), ("'A@", "A"),
                                             ("u:", "U"), ("i:", "E"), ("D", "TH"), ("_:", "rest"), ("k", "C")])
def test_viseme_of(phoneme, viseme):
    assert visemes.viseme_of(phoneme) == viseme


def test_mouth_closes_for_bilabials_and_silence():
    fps = 30.0
    phonemes = [speech.Phoneme("A:", 0.0, 0.3), speech.Phoneme("m", 0.3, 0.5), speech.Phoneme("A:", 0.5, 0.8)]
    env = np.zeros(60, np.float32)
    env[15:39] = 0.2  # speech from 0.5 s to 1.3 s
    track = visemes.mouth_track(phonemes, 0.5, 60, fps, env)
    assert track.open[:10].max() == 0 and track.open[45:].max() == 0  # silence
    assert track.open[20] > 0.5 and track.open[33] > 0.5               # open vowels
    assert track.open[26] < 0.25 * track.open[20]                     # lips closed on /m/


def test_au_prototypes_follow_emfacs():
    happy = expression.prototype(emotions.parse("happy-strong"))
    assert happy[AU["AU06"]] > 2 and happy[AU["AU12"]] > 2
    surprised = expression.prototype(emotions.parse("surprised-strong"))
    assert all(surprised[AU[a]] > 2 for a in ("AU01", "AU02", "AU05", "AU26"))
    normal = expression.prototype(emotions.parse("sad-normal"))
    strong = expression.prototype(emotions.parse("sad-strong"))
    assert np.all(strong >= normal) and strong.sum() > 1.5 * normal.sum()
    assert not expression.prototype(emotions.NEUTRAL).any()


@pytest.mark.parametrize("au, measure, sign", [("AU01", 0, 1), ("AU02", 0, 1), ("AU04", 0, -1), ("AU12", 1, 1),
                                               ("AU15", 1, -1), ("AU26", 2, 1), ("AU25", 2, 1)])
def test_deform_moves_landmarks_the_facs_way(au, measure, sign):
    aus = np.zeros(17, np.float32)
    rest = acceptance.measures(shape.deform(shape.TEMPLATE, aus)[None])[0]
    aus[AU[au]] = 4.0
    moved = acceptance.measures(shape.deform(shape.TEMPLATE, aus)[None])[0]
    assert sign * (moved[measure] - rest[measure]) > 0.02


def test_blink_closes_the_eyes():
    aus = np.zeros(17, np.float32)
    aus[AU["AU45"]] = 5.0
    lm = shape.deform(shape.TEMPLATE, aus)
    gap = lm[[41, 40, 47, 46], 1] - lm[[37, 38, 43, 44], 1]
    assert np.all(np.abs(gap) < 0.01)


# ---- generator ----------------------------------------------------------------------------
def test_tiny_corpus_layout_and_csv(tiny):
    videos = sorted(tiny.glob("Actor_*/*.mp4"))
    assert len(videos) == TINY_CLIPS and sorted(p.parent.name for p in videos)[0] == "Actor_01"
    for path in videos:
        name = ClipName.parse(path.stem)
        assert name.modality == 1 and path.parent.name == f"Actor_{name.actor:02d}"
        assert name.actor % 2 == 1 or name.actor == 2
        info = probe(path)
        assert (info.width, info.height, info.fps) == (320, 180, 30)
        assert info.has_audio and info.audio_rate == 48000
        track = read_csv(path.with_suffix(".csv"))
        assert track.landmarks.shape == (info.num_frames, 68, 2)
        assert track.au_intensity.shape == (info.num_frames, 17)
        assert track.au_intensity.min() >= 0 and track.au_intensity.max() <= 5
        assert 1.8 < info.num_frames / 30 < 4.0
        # landmarks lie on the frame, eyes above the nose above the mouth above the chin
        lm = track.landmarks
        assert lm[..., 0].min() > 0 and lm[..., 0].max() < 320 and lm[..., 1].min() > 0 and lm[..., 1].max() < 180
        assert np.all(lm[:, 36:48, 1].mean(1) < lm[:, 33, 1]) and np.all(lm[:, 33, 1] < lm[:, 62, 1])
        assert np.all(lm[:, 66, 1] < lm[:, 8, 1])


def test_emotion_shows_in_the_aus(tiny_stats):
    by_state = {emotions.STATES[s.state].name: s.mean_au for s in tiny_stats if s.actor == 1}
    assert by_state["happy-strong"][AU["AU12"]] > by_state["neutral"][AU["AU12"]] + 2
    assert by_state["sad-strong"][AU["AU15"]] > 2 and by_state["surprised-strong"][AU["AU02"]] > 2
    acc, n = acceptance.nearest_centroid(tiny_stats, [2])
    assert n == 4 and acc == 1.0


def test_mouth_follows_the_audio(tiny_stats):
    rs = [s.mouth_audio_r for s in tiny_stats]
    assert np.mean(rs) >= 0.5 and min(rs) > 0.3


def test_renderer_draws_the_aus(tiny_stats):
    for measure, au, sign, coef, _ in acceptance.au_directions(tiny_stats):
        assert coef * sign > 1e-3, (measure, au, coef)


def test_haar_cascade_finds_the_face(tiny_stats):
    found = tried = 0
    for s in tiny_stats:
        f, t = acceptance.haar_hits(s, frames_per_clip=2)
        found, tried = found + f, tried + t
    assert tried == 2 * TINY_CLIPS and found >= 0.75 * tried


def test_same_arguments_give_the_same_files(tiny, tmp_path):
    again = tmp_path / "again"
    assert _tiny(again, workers=2) == 0
    for path in sorted(tiny.glob("Actor_*/*.mp4")):
        other = again / path.relative_to(tiny)
        assert path.with_suffix(".csv").read_bytes() == other.with_suffix(".csv").read_bytes()
        assert np.array_equal(read_audio(path, 48000), read_audio(other, 48000))
        assert all(np.array_equal(a, b) for a, b in zip(read_frames(path), read_frames(other), strict=True))


def test_resume_skips_finished_clips_and_redoes_broken_ones(tiny, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    victim = sorted(copy.glob("Actor_02/*.csv"))[0]
    original = victim.read_bytes()
    victim.unlink()
    stale = copy / "Actor_02" / f".{victim.name}.tmp-1"
    stale.write_text("left by a killed run")
    capsys.readouterr()
    assert _tiny(copy) == 0
    assert f"1 clips written, {TINY_CLIPS - 1} already there" in capsys.readouterr().out
    assert victim.read_bytes() == original and not stale.exists()


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert cli_main(["synth", "--out", str(tmp_path), "--size", "640x"]) == 1
    assert "--size must look like 640x360" in capsys.readouterr().err
    assert cli_main(["synth", "--out", str(tmp_path), "--size", "641x360"]) == 1
    assert cli_main(["synth", "--out", str(tmp_path), "--actors", "0"]) == 1
    assert "--actors must be in 1..99" in capsys.readouterr().err
    with pytest.raises(ValueError, match="even and at least"):
        generate.parse_size("30x20")


def test_one_process_can_write_one_actor_at_two_frame_sizes(tmp_path):
    """The per-actor renderer cache is keyed by frame size too (the demo and `mmsd bench` share a process)."""
    from mmsd.data.synth.generate import SynthConfig, write_clip

    state = emotions.parse("calm-normal")
    for width, height in [(320, 192), (256, 160)]:
        cfg = SynthConfig(out=tmp_path, actors=(24,), width=width, height=height, crf=30, preset="ultrafast")
        path = write_clip(cfg, 24, state, 1, 1, path=tmp_path / f"{width}.mp4")
        info = probe(path)
        assert (info.width, info.height) == (width, height)


def test_face_scale_draws_smaller_faces_in_the_same_frame(tmp_path):
    from mmsd.data.openface import read_csv
    from mmsd.data.synth.generate import SynthConfig, write_clip

    extents = {}
    for scale in (1.0, 0.5):
        cfg = SynthConfig(out=tmp_path, actors=(3,), width=320, height=180, crf=30, preset="ultrafast",
                          face_scale=(scale, scale))
        path = write_clip(cfg, 3, emotions.parse("neutral"), 1, 1, path=tmp_path / f"{scale}.mp4")
        points = np.asarray(read_csv(path.with_suffix(".csv")).landmarks)  # (T, 68, 2)
        extents[scale] = np.ptp(points[0], axis=0)
    assert np.allclose(extents[0.5] / extents[1.0], 0.5, atol=0.03)
