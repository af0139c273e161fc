"""mmsd.data.degrade and mmsd.data.prepare on a tiny corpus that conftest.py writes."""

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import CORRUPT_CLIP, GOOD_CLIPS, MALFORMED, NUM_FRAMES, SHORT_CLIP, TRUNCATED_CLIP, face_landmarks
from PIL import Image

from mmsd.cli import main as cli_main
from mmsd.data.cache import decode_image, encode_image
from mmsd.data.dataset import ClipIndex
from mmsd.data.degrade import (DegradeConfig, FaceCrop, crop_resize, downsample, face_crop_box, face_mouth_boxes,
                               unmagnified)
from mmsd.data.openface import OpenFaceTrack
from mmsd.data.prepare import prepare_corpus
from mmsd.errors import MmsdError
from mmsd.media import codec

CSV_CLIP, NO_AUDIO_CLIP, ODD_CLIP, PLAIN_CLIP = GOOD_CLIPS


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


# --------------------------------------------------------------------------- degradation


def test_downsample_is_antialiased_bicubic_like_pil():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (288, 480, 3), dtype=np.uint8)
    lr = downsample(noise)
    assert lr.shape == (72, 120, 3) and lr.dtype == np.uint8
    reference = np.asarray(Image.fromarray(noise).resize((120, 72), Image.BICUBIC))
    assert np.abs(lr.astype(int) - reference).max() <= 1
    # without the antialiasing prefilter, noise would alias through at full strength
    assert lr.std() < 0.5 * noise.std()
    assert downsample(np.stack([noise, noise])).shape == (2, 72, 120, 3)
    with pytest.raises(ValueError, match="not divisible by scale 4"):
        downsample(noise[:, :478])


def _track(points: np.ndarray, success=None) -> OpenFaceTrack:
    n = len(points)
    return OpenFaceTrack(
        frame=np.arange(1, n + 1),
        timestamp=np.arange(n) / 30,
        confidence=np.full(n, 0.95),
        success=np.ones(n, bool) if success is None else success,
        landmarks=np.asarray(points, np.float32),
        au_intensity=np.zeros((n, 17), np.float32),
        au_presence=None,
    )


def test_landmark_crop_is_5_to_3_holds_the_head_and_boxes_follow_the_landmarks():
    cfg = DegradeConfig()
    # a 100 px brow-to-chin face moving 20 px right over 10 frames in a 1280x720 frame
    points = np.stack([face_landmarks(600 + 2 * t, 360, 90, 100, 0.02) for t in range(10)])
    track = _track(points, success=np.r_[np.ones(9, bool), False])
    points[9] += 300  # an untracked frame with garbage landmarks must not move the box
    track.landmarks[9] += 300
    crop = face_crop_box(None, width=1280, height=720, track=track, cfg=cfg)
    x0, y0, x1, y1 = crop.box
    assert crop.source == "landmarks"
    assert (x1 - x0) * 3 == (y1 - y0) * 5
    assert (y1 - y0) == pytest.approx(cfg.landmark_crop_height * 100, abs=3)
    good = points[:9]
    # the head (0.75 L above the brows, chin + 0.25 L) is inside the crop
    assert y0 <= good[..., 1].min() - 0.7 * 100 and y1 >= good[..., 1].max() + 0.2 * 100
    assert x0 <= good[..., 0].min() and x1 >= good[..., 0].max()

    face, mouth = face_mouth_boxes(crop, 10, track=track, cfg=cfg)
    assert face.shape == mouth.shape == (10, 4) and face.dtype == np.int32
    scale = cfg.hr_width / (x1 - x0)
    for t in range(9):
        lips = (good[t, 48:68] - (x0, y0)) * scale
        assert (mouth[t, :2] <= lips.min(0)).all() and (mouth[t, 2:] >= lips.max(0)).all()
        assert (face[t, :2] <= mouth[t, :2]).all() and (face[t, 2:] >= mouth[t, 2:]).all()
        assert face[t, 2] - face[t, 0] == pytest.approx(90 * scale, abs=2)
    np.testing.assert_array_equal(face[9], face[8])  # untracked: nearest tracked frame's box
    assert face[8, 0] - face[0, 0] == pytest.approx(16 * scale, abs=1)  # boxes move with the face


def test_without_landmarks_or_a_detectable_face_the_crop_is_centred_and_fits():
    flat = [np.full((97, 161, 3), 128, np.uint8)] * 3  # odd size, no face
    crop = face_crop_box(flat, width=161, height=97)
    assert crop.source == "centre" and crop.face is None
    x0, y0, x1, y1 = crop.box
    assert 0 <= x0 and x1 <= 161 and 0 <= y0 and y1 <= 97 and (x1 - x0) * 3 == (y1 - y0) * 5
    hr = crop_resize(np.stack(flat), crop)
    assert hr.shape == (3, 288, 480, 3) and (hr == 128).all()
    face, mouth = face_mouth_boxes(crop, 3)
    assert (face[:, 0] < mouth[:, 0]).all() and (mouth[:, 3] <= face[:, 3]).all()
    assert ((0 <= face) & (face[:, [2, 3]].max() <= 480)).all()


def test_an_unmagnified_crop_keeps_a_small_face_at_its_own_scale():
    small = FaceCrop(box=(500, 300, 650, 390), source="haar", face=(550.0, 310.0, 600.0, 360.0))  # 150x90
    grown = unmagnified(small, width=1280, height=720)
    x0, y0, x1, y1 = grown.box
    assert (x1 - x0, y1 - y0) == (480, 288) and grown.face == small.face and grown.source == "haar"
    assert abs((x0 + x1) / 2 - 575) <= 1 and abs((y0 + y1) / 2 - 345) <= 1  # about the same centre
    corner = unmagnified(FaceCrop(box=(0, 0, 150, 90), source="haar", face=None), width=1280, height=720)
    assert corner.box == (0, 0, 480, 288)  # moved inside the frame
    # a source smaller than 480x288: its own pixels, centred, the overhang to be filled by reflection
    assert unmagnified(small, width=320, height=180).box == (-80, -54, 400, 234)
    big = FaceCrop(box=(0, 0, 600, 360), source="haar", face=None)
    assert unmagnified(big, width=1280, height=720) is big  # downscaled already: kept


def test_a_face_bigger_than_the_frame_gets_the_largest_box_that_fits():
    points = face_landmarks(80, 48, 60, 80, 0.02)[None]  # 2 L = 160 rows > 96
    crop = face_crop_box(None, width=160, height=96, track=_track(points))
    assert crop.box == (0, 0, 160, 96)


@pytest.mark.parametrize("pillow", [True, False], ids=["pillow-webp", "opencv"])
def test_frames_are_stored_losslessly(pillow, monkeypatch):
    import mmsd.data.cache as cache

    if not pillow:
        monkeypatch.setattr(cache, "_pillow_webp", lambda: None)
    elif cache._pillow_webp() is None:
        pytest.skip("Pillow with WebP is not installed")
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (72, 120, 3), dtype=np.uint8)
    frame[:36] //= 8  # some smooth area besides the noise
    for fmt in ("webp", "png"):
        data = encode_image(frame, fmt)
        assert data[8:12] == b"WEBP" if fmt == "webp" else data[1:4] == b"PNG"
        np.testing.assert_array_equal(decode_image(data), frame)


# --------------------------------------------------------------------------- prepare


def test_cache_has_every_good_clip_and_counts_the_bad_ones(prepared_cache, fixture_corpus):
    report = json.loads((prepared_cache / "report.json").read_text())
    assert report["prepared"] == 4 and report["already_done"] == 0
    failed = {str(Path(path).relative_to(fixture_corpus)): why for path, why in report["failed"]}
    assert set(failed) == {f"{CORRUPT_CLIP}.mp4", f"{TRUNCATED_CLIP}.mp4", f"{SHORT_CLIP}.mp4"}
    assert "only 3 frames" in failed[f"{SHORT_CLIP}.mp4"]
    assert [m[0].endswith(MALFORMED) for m in report["malformed"]] == [True]
    index = ClipIndex(prepared_cache)
    assert [c.key for c in index] == sorted(GOOD_CLIPS)
    assert not list(prepared_cache.glob("Actor_*/.*"))  # no temp entries left behind


def test_cache_entries_hold_what_the_contract_lists(prepared_cache):
    index = ClipIndex(prepared_cache)
    assert index.crfs == (15, 40) and index.hr_size == (480, 288) and index.lr_size == (120, 72)
    for clip in index:
        reader = index.reader(clip)
        arrays = reader.arrays
        assert clip.num_frames == NUM_FRAMES and clip.fps == 30
        assert clip.hr_frames == (0, 2, 4, 6, 8, 10)
        assert arrays["mfcc"].shape == (NUM_FRAMES, 4, 20) and arrays["mfcc"].dtype == np.float32
        assert arrays["au"].shape == (NUM_FRAMES, 17) and arrays["au_mask"].shape == (NUM_FRAMES,)
        assert arrays["face_box"].shape == arrays["mouth_box"].shape == (NUM_FRAMES, 4)
        assert clip.kbps[40] < clip.kbps[15]
        lr = reader.lr(15)
        assert lr.shape == (NUM_FRAMES, 72, 120, 3) and lr.dtype == np.uint8
        hr = reader.hr(4)
        assert hr.shape == (288, 480, 3)
        # the coded LR is the 4x downsampled HR, degraded more at CRF 40
        clean = downsample(hr)
        np.testing.assert_array_equal(reader.lr_clean([4])[0], clean)
        assert reader.lr_clean().shape == (NUM_FRAMES, 72, 120, 3)
        assert _psnr(reader.lr(15, [4])[0], clean) > 30
        assert _psnr(reader.lr(40, [4])[0], clean) < _psnr(reader.lr(15, [4])[0], clean)
        with pytest.raises(ValueError, match="no HR for frame 3"):
            reader.hr(3)
    emotions = {c.key: c.emotion for c in index}
    assert emotions[CSV_CLIP] == 4 and emotions[NO_AUDIO_CLIP] == 0  # happy-strong, neutral


def test_hr_frames_are_the_exact_crop_of_the_source(prepared_cache, fixture_corpus):
    index = ClipIndex(prepared_cache)
    reader = index.reader(ODD_CLIP)
    meta = json.loads((reader.clip.path / "meta.json").read_text())
    assert meta["source_size"] == [161, 97]
    crop = FaceCrop(box=tuple(meta["crop_box"]), source=meta["crop_source"], face=None)
    source = list(codec.read_frames(fixture_corpus / f"{ODD_CLIP}.mp4"))
    np.testing.assert_array_equal(reader.hr(6), crop_resize(source[6], crop))


def test_audio_au_and_boxes_per_clip(prepared_cache):
    index = ClipIndex(prepared_cache)
    by_key = {c.key: c for c in index}
    with_csv = index.reader(CSV_CLIP)
    assert by_key[CSV_CLIP].crop_source == "landmarks" and by_key[CSV_CLIP].has_au
    assert with_csv.arrays["au_mask"].all()
    np.testing.assert_allclose(with_csv.arrays["au"][:, 8], 2.5)  # AU12 as written in the CSV
    silent = index.reader(NO_AUDIO_CLIP)
    assert not by_key[NO_AUDIO_CLIP].has_audio and not (silent.arrays["mfcc"]).any()
    assert not by_key[NO_AUDIO_CLIP].has_au and not silent.arrays["au_mask"].any()
    assert by_key[PLAIN_CLIP].has_audio and np.abs(index.reader(PLAIN_CLIP).arrays["mfcc"]).mean() > 1
    for clip in index:
        face, mouth = index.reader(clip).arrays["face_box"], index.reader(clip).arrays["mouth_box"]
        assert (face[:, :2] < face[:, 2:]).all() and (mouth[:, :2] < mouth[:, 2:]).all()
        assert (face[:, 1] < mouth[:, 1]).all() and (mouth[:, 3] <= face[:, 3] + 20).all()


def test_resume_after_an_interrupted_run(fixture_corpus, tmp_path, monkeypatch):
    import mmsd.data.prepare as prepare

    out = tmp_path / "cache"
    calls = {"n": 0}
    real_encode = prepare.encode_image

    def interrupting_encode(frame, fmt="webp"):
        calls["n"] += 1
        if calls["n"] == 40:  # 12 coded + 12 clean LR + 6 HR images per clip at one CRF: in the 2nd clip
            raise KeyboardInterrupt
        return real_encode(frame, fmt)

    monkeypatch.setattr(prepare, "encode_image", interrupting_encode)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(fixture_corpus, out, crfs=(40,), progress=False, log=lambda line: None)
    monkeypatch.setattr(prepare, "encode_image", real_encode)
    done = [p.parent for p in out.glob("Actor_*/*/meta.json")]
    assert len(done) == 1  # the clip being written when the run died has no entry
    stamp = (done[0] / "frames.bin").stat().st_mtime_ns
    # a temp dir as a killed run leaves it
    leftover = out / "Actor_19" / ".01-01-08-02-02-01-19.tmp-99999"
    leftover.mkdir(parents=True)
    (leftover / "frames.bin").write_bytes(b"half")

    lines = []
    report = prepare_corpus(fixture_corpus, out, crfs=(40,), progress=False, log=lines.append)
    assert report.already_done == 1 and report.prepared == 3 and len(report.failed) == 3
    assert len(lines) == 4 and all(line.startswith("mmsd prepare: skipped ") for line in lines)
    assert not leftover.exists() and not list(out.glob("Actor_*/.*"))
    assert (done[0] / "frames.bin").stat().st_mtime_ns == stamp  # finished clips are not redone
    assert [c.key for c in ClipIndex(out)] == sorted(GOOD_CLIPS)

    again = prepare_corpus(fixture_corpus, out, crfs=(40,), progress=False, log=lambda line: None)
    assert again.already_done == 4 and again.prepared == 0


def test_parallel_workers_give_the_same_cache(fixture_corpus, prepared_cache, tmp_path):
    out = tmp_path / "cache"
    report = prepare_corpus(fixture_corpus, out, crfs=(15, 40), workers=2, progress=False, log=lambda line: None)
    assert report.prepared == 4 and len(report.failed) == 3
    assert report.bytes_per_clip > 0 and report.clips_per_second > 0
    serial, parallel = ClipIndex(prepared_cache), ClipIndex(out)
    for a, b in zip(serial, parallel, strict=True):
        assert a.key == b.key and a.kbps == b.kbps
        np.testing.assert_array_equal(serial.reader(a).hr(2), parallel.reader(b).hr(2))
        np.testing.assert_array_equal(serial.reader(a).lr(40), parallel.reader(b).lr(40))


def test_a_cache_keeps_its_settings(prepared_cache, fixture_corpus):
    with pytest.raises(MmsdError, match=r"other settings: crfs \[15, 40\] \(asked \[15, 32\]\)"):
        prepare_corpus(fixture_corpus, prepared_cache, crfs=(15, 32), progress=False)


def test_cli_prints_a_summary_and_one_line_errors(fixture_corpus, tmp_path, capsys):
    args = ["prepare", str(fixture_corpus), "--out", str(tmp_path / "c"), "--crf", "40", "--limit", "1", "--no-progress"]
    assert cli_main(args) == 0
    out, err = capsys.readouterr()
    assert "1 clips prepared" in out and "clips/s" in out
    assert cli_main(["prepare", str(tmp_path / "missing"), "--out", str(tmp_path / "c2")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a directory" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["prepare", str(empty), "--out", str(tmp_path / "c3"), "--no-progress"]) == 1
    assert "no RAVDESS audio+video clips" in capsys.readouterr().err


def test_variable_frame_rate_source_and_a_broken_csv(tmp_path):
    import av
    from conftest import render_frame

    path = tmp_path / "corpus" / "Actor_03" / "01-01-02-02-01-02-03.mp4"
    path.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate(np.cumsum([0, 33, 20, 50, 33, 40, 25, 33, 60, 20, 33, 33])):  # ms, irregular
            frame = av.VideoFrame.from_ndarray(render_frame(i, 160, 96, rng)[0], format="rgb24")
            frame.pts, frame.time_base = int(pts), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    path.with_suffix(".csv").write_text("frame, face_id\n1, 0\n")  # no landmark or AU columns

    report = prepare_corpus(tmp_path / "corpus", tmp_path / "cache", crfs=(40,), progress=False, log=lambda line: None)
    assert report.prepared == 1 and not report.failed
    clip = ClipIndex(tmp_path / "cache").clips[0]
    assert clip.num_frames == 12 and 28.5 < clip.fps < 29.5 and clip.kbps[40] > 0  # the timestamps' mean rate
    assert not clip.has_au and not clip.has_audio
    meta = json.loads((clip.path / "meta.json").read_text())
    assert any("OpenFace CSV ignored" in note for note in meta["notes"])


def test_whole_frame_crop_keeps_the_frame_and_the_landmark_boxes(fixture_corpus, tmp_path):
    from conftest import CSV_CLIP_KEY

    from mmsd.data.openface import read_csv

    out = tmp_path / "whole"
    prepare_corpus(fixture_corpus, out, crfs=(40,), crop="whole", limit=2, progress=False, log=lambda line: None)
    index = ClipIndex(out)
    assert json.loads((out / "cache.json").read_text())["crop"] == "whole"
    meta = json.loads((index.root / CSV_CLIP_KEY / "meta.json").read_text())
    assert meta["crop_source"] == "whole" and meta["crop_box"] == [0, 0, 160, 96]  # the fixture's 5:3 frame
    points = np.asarray(read_csv(fixture_corpus / f"{CSV_CLIP_KEY}.csv").landmarks[0])
    face = index.reader(CSV_CLIP_KEY).arrays["face_box"][0]
    expected = (np.concatenate([points.min(0), points.max(0) + 1 / 3]) + 0.5) * 3 - 0.5  # 160 -> 480 px
    assert np.abs(face - expected).max() <= 1
    with pytest.raises(MmsdError, match="other settings"):  # a head-crop run cannot extend a whole-frame cache
        prepare_corpus(fixture_corpus, out, crfs=(40,), limit=2, progress=False, log=lambda line: None)


def test_a_variable_frame_rate_clip_gets_the_sound_at_each_frame_s_time(tmp_path):
    from conftest import render_frame

    from mmsd.media.audio import mfcc_for_frames
    from mmsd.media.timing import FrameTiming

    source = tmp_path / "corpus" / "Actor_01" / "01-01-03-02-01-01-01.mp4"
    source.parent.mkdir(parents=True)
    timing = FrameTiming.from_pts([0, 1, 2, 3, 6, 7, 8, 11], Fraction(1, 30))  # 30 fps with two 100 ms gaps
    rng = np.random.default_rng(0)
    with codec.VideoWriter(source, width=160, height=96, timing=timing, crf=10, preset="ultrafast",
                           audio_rate=16000) as writer:
        for t in range(8):
            writer.write(render_frame(t, 160, 96, rng)[0])
        writer.write_audio((0.3 * rng.standard_normal(16000 * 12 // 30)).astype(np.float32))
    prepare_corpus(source.parents[1], tmp_path / "cache", crfs=(40,), workers=1, progress=False, log=lambda line: None)
    mfcc = ClipIndex(tmp_path / "cache").reader(next(iter(ClipIndex(tmp_path / "cache")))).arrays["mfcc"]
    np.testing.assert_array_equal(mfcc, mfcc_for_frames(codec.read_audio(source), 8, codec.frame_timing(source)))
