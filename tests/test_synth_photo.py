"""The photo style of the synthetic renderer (`mmsd synth --style photo`, issue 13)."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from mmsd.cli import main as cli_main
from mmsd.data import stills
from mmsd.data.synth import draw, face, generate, photo, shape
from mmsd.data.synth.expression import AU_INDEX

SPEAKING_SMILE = {"AU06": 2.0, "AU12": 4.0, "AU25": 3.0, "AU26": 3.0}


def _aus(values: dict[str, float]) -> np.ndarray:
    aus = np.zeros(17, np.float32)
    for name, v in values.items():
        aus[AU_INDEX[name]] = v
    return aus


def _frame(cls: type[face.FaceRenderer], width: int, height: int, actor: int = 1, pose: shape.Pose = shape.Pose(),
           grain_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    look = shape.make_identity(actor, np.random.default_rng(actor))
    aus = _aus(SPEAKING_SMILE)
    renderer = cls(look, width=width, height=height, rng=np.random.default_rng([actor, 1]))
    return renderer.render(shape.deform(look.shape, aus), aus, pose, grain_index=grain_index)


def test_cartoon_default_is_unchanged():
    """The default style draws the original corpus bit for bit (frames hashed before the photo style existed;
    a new OpenCV or NumPy may change float rounding: then check a cartoon corpus is unchanged and update)."""
    assert generate.SynthConfig(out=".").style == "cartoon"
    img, pts = _frame(face.FaceRenderer, 160, 96, pose=shape.Pose(roll=2.0, gain=1.02, tilt=0.03), grain_index=1)
    assert hashlib.sha256(img.tobytes()).hexdigest()[:16] == "0cd0a9f2adf3a9d8"
    assert hashlib.sha256(pts.tobytes()).hexdigest()[:16] == "066cd7e3f249af73"


def test_photo_style_is_deterministic_and_draws_the_same_landmarks():
    a, pts_a = _frame(photo.PhotoFaceRenderer, 320, 192, actor=2)
    b, pts_b = _frame(photo.PhotoFaceRenderer, 320, 192, actor=2)
    _, pts_cartoon = _frame(face.FaceRenderer, 320, 192, actor=2)
    assert np.array_equal(a, b)
    assert np.array_equal(pts_a, pts_cartoon)  # the CSV's landmarks are exact for both styles
    other, _ = _frame(photo.PhotoFaceRenderer, 320, 192, actor=3)
    assert np.abs(a.astype(int) - other).mean() > 10  # actors differ (backdrop, hair, camera)


def _ink(img: np.ndarray, pts: np.ndarray) -> dict[str, float]:
    """How inked the features are: thin dark lines (a 3x3 black top-hat, what a closing removes) along
    the eyelids and in the mouth, where the cartoon draws strokes (lash line, lower lid, teeth gaps)."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    hat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, np.ones((3, 3), np.uint8))
    hat = cv2.dilate(hat, np.ones((3, 3), np.uint8)).astype(np.float32)  # the line may lie beside the contour
    lids = np.round(np.vstack([draw.catmull(pts[36:42], True, 8), draw.catmull(pts[42:48], True, 8)])).astype(int)
    (x0, y0), (x1, y1) = np.floor(pts[48:68].min(0) - 5).astype(int), np.ceil(pts[48:68].max(0) + 5).astype(int)
    return {"lids": float(hat[lids[:, 1], lids[:, 0]].mean()), "mouth": float(hat[y0:y1, x0:x1].max())}


@pytest.mark.parametrize("actor", [1, 2, 3])
def test_photo_style_has_no_ink_outlines(actor):
    cartoon = _ink(*_frame(face.FaceRenderer, 480, 288, actor=actor))
    photo_ = _ink(*_frame(photo.PhotoFaceRenderer, 480, 288, actor=actor))
    for part in cartoon:
        assert photo_[part] < 0.6 * cartoon[part], (part, photo_, cartoon)


def test_photo_textures_come_from_person_free_photos():
    natural = {p.name for p in stills.NATURAL}
    portraits = {p.name for p in stills.PORTRAITS}
    used = set(photo.BACKDROPS) | set(photo.HAIR_TEXTURES)
    assert used <= natural and not used & portraits


def test_pink_noise_has_a_one_over_f_spectrum():
    n = photo.pink_noise(np.random.default_rng(0), (128, 128), 1.0)
    assert abs(float(n.mean())) < 1e-4 and abs(float(n.std()) - 1) < 1e-4
    power = np.abs(np.fft.rfft2(n)) ** 2
    f = np.hypot(np.fft.fftfreq(128)[:, None], np.fft.rfftfreq(128)[None, :])
    low, high = power[(f > 0.02) & (f < 0.04)].mean(), power[(f > 0.2) & (f < 0.4)].mean()
    assert 40 < low / high < 400  # 1/f^2 power: a factor 100 over a decade


def test_synth_style_photo_writes_the_same_csv(tmp_path, capsys):
    """`mmsd synth --style photo`: the clip's CSV (AUs, landmarks) is the cartoon clip's, the pixels differ."""
    args = ["synth", "--actors", "1", "--states", "happy-strong", "--statements", "1", "--size", "160x96",
            "--quiet", "--workers", "1"]
    assert cli_main([*args, "--out", str(tmp_path / "cartoon")]) == 0
    assert cli_main([*args, "--out", str(tmp_path / "photo"), "--style", "photo"]) == 0
    (cartoon,) = (tmp_path / "cartoon").glob("Actor_01/*.csv")
    (photo_csv,) = (tmp_path / "photo").glob("Actor_01/*.csv")
    assert cartoon.read_bytes() == photo_csv.read_bytes()
    assert cartoon.with_suffix(".mp4").read_bytes() != photo_csv.with_suffix(".mp4").read_bytes()
    capsys.readouterr()
    assert cli_main([*args, "--out", str(tmp_path / "x"), "--style", "oil"]) == 1
    assert "--style must be one of cartoon, photo" in capsys.readouterr().err


def test_photo_config_renders_with_the_photo_renderer():
    cfg = generate.SynthConfig(out=".", actors=(4,), width=160, height=96, style="photo")
    _, _, renderer = generate._parts(cfg, 4)
    assert isinstance(renderer, photo.PhotoFaceRenderer)
    assert generate._parts(generate.SynthConfig(out=".", width=160, height=96), 4)[2].style == "cartoon"
