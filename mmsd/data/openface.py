"""Read and write OpenFace 2.x ``FeatureExtraction`` CSV files (AU targets and 68 landmarks).

OpenFace (``lib/local/Recorder/src/RecorderCSV.cpp``) writes one row per frame and face,
names and values separated by ", ", in this column order (groups present depend on
its flags):

    frame, face_id, timestamp, confidence, success,
    gaze_0_x .. gaze_angle_y, eye_lmk_x_0 .. eye_lmk_Z_55,     (-gaze)
    pose_Tx, pose_Ty, pose_Tz, pose_Rx, pose_Ry, pose_Rz,       (-pose)
    x_0 .. x_67, y_0 .. y_67,                                    (-2Dfp)
    X_0 .. X_67, Y_0 .. Y_67, Z_0 .. Z_67,                       (-3Dfp)
    p_scale, p_rx, p_ry, p_rz, p_tx, p_ty, p_0 .. p_33,          (-pdmparams)
    AU01_r .. AU45_r (17, sorted), AU01_c .. AU45_c (18, sorted) (-aus)

The reader takes any subset that contains what ``OpenFaceTrack`` carries, with spaced
or unspaced names, and ignores the rest. The writer emits that subset in OpenFace's
order, header style and decimal precision (timestamp 3, confidence 2, landmarks 1,
AU intensity 2, AU presence 1 decimals), so synthetic files look like OpenFace's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmsd.errors import MmsdError

AU_INTENSITY = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)  # fmt: skip
AU_PRESENCE = AU_INTENSITY[:-1] + ("AU28", "AU45")  # OpenFace's 18 _c columns, in OpenFace order
NUM_LANDMARKS = 68

_META = ("frame", "face_id", "timestamp", "confidence", "success")
_LANDMARKS = tuple(f"x_{i}" for i in range(NUM_LANDMARKS)) + tuple(f"y_{i}" for i in range(NUM_LANDMARKS))
_AU_R = tuple(f"{au}_r" for au in AU_INTENSITY)
_AU_C = tuple(f"{au}_c" for au in AU_PRESENCE)


@dataclass
class OpenFaceTrack:
    """One face (face_id 0) tracked through a video: T rows in file order."""

    frame: np.ndarray  # (T,) int, 1-based as OpenFace writes
    timestamp: np.ndarray  # (T,) float seconds
    confidence: np.ndarray  # (T,) float
    success: np.ndarray  # (T,) bool
    landmarks: np.ndarray  # (T, 68, 2) float32 pixel (x, y) in the source video, iBUG order
    au_intensity: np.ndarray  # (T, 17) float32, 0..5
    au_presence: np.ndarray | None  # (T, 18) float32 0/1


def read_csv(path: str | os.PathLike) -> OpenFaceTrack:
    """Read the face_id 0 rows of an OpenFace CSV. MmsdError names a missing file or column.

    The 18 AU presence columns are optional (``au_presence`` is None without them).
    """
    path = Path(path)
    if not path.is_file():
        raise MmsdError(f"{path}: no such OpenFace CSV file")
    with path.open() as handle:
        header = handle.readline()
        if not header.strip():
            raise MmsdError(f"{path}: empty file, expected an OpenFace CSV header")
        names = [name.strip() for name in header.split(",")]
        column = {name: index for index, name in enumerate(names)}

        def indices(wanted: tuple[str, ...]) -> list[int]:
            for name in wanted:
                if name not in column:
                    raise MmsdError(f"{path}: OpenFace CSV has no column '{name}'")
            return [column[name] for name in wanted]

        has_presence = any(name in column for name in _AU_C)
        wanted = _META + _LANDMARKS + _AU_R + (_AU_C if has_presence else ())
        usecols = indices(wanted)
        rows = [line for line in handle if line.strip()]
    table = np.zeros((0, len(wanted)))
    if rows:
        try:
            table = np.loadtxt(rows, delimiter=",", usecols=usecols, ndmin=2, dtype=np.float64)
        except ValueError as err:
            raise MmsdError(f"{path}: malformed OpenFace CSV row ({err})") from None

    table = table[table[:, 1] == 0]  # face_id 0: the speaker; others are background faces
    meta, rest = table[:, : len(_META)], table[:, len(_META) :]
    landmarks, rest = rest[:, : 2 * NUM_LANDMARKS], rest[:, 2 * NUM_LANDMARKS :]
    au_r, au_c = rest[:, : len(_AU_R)], rest[:, len(_AU_R) :]
    return OpenFaceTrack(
        frame=meta[:, 0].astype(np.int64),
        timestamp=meta[:, 2],
        confidence=meta[:, 3],
        success=meta[:, 4] > 0.5,
        # x_0..x_67 then y_0..y_67 -> (T, 68, 2) pairs (x, y)
        landmarks=landmarks.reshape(-1, 2, NUM_LANDMARKS).transpose(0, 2, 1).astype(np.float32),
        au_intensity=au_r.astype(np.float32),
        au_presence=au_c.astype(np.float32) if has_presence else None,
    )


def write_csv(path: str | os.PathLike, track: OpenFaceTrack) -> None:
    """Write ``track`` as face_id 0 in OpenFace 2.x column order, header and precision.

    Without ``au_presence`` the AU*_c columns are left out, as OpenFace does for
    files it has no classifier output for.
    """
    num = len(track.frame)
    expected = {
        "timestamp": (num,), "confidence": (num,), "success": (num,),
        "landmarks": (num, NUM_LANDMARKS, 2), "au_intensity": (num, len(AU_INTENSITY)),
    }  # fmt: skip
    if track.au_presence is not None:
        expected["au_presence"] = (num, len(AU_PRESENCE))
    for name, shape in expected.items():
        if np.shape(getattr(track, name)) != shape:
            raise ValueError(f"OpenFaceTrack.{name}: expected shape {shape}, got {np.shape(getattr(track, name))}")

    names = _META + _LANDMARKS + _AU_R + (_AU_C if track.au_presence is not None else ())
    lines = [", ".join(names)]
    for t in range(num):
        points = np.asarray(track.landmarks[t])
        fields = [
            str(int(track.frame[t])),
            "0",
            f"{track.timestamp[t]:.3f}",
            f"{track.confidence[t]:.2f}",
            "1" if track.success[t] else "0",
        ]
        fields += [f"{v:.1f}" for v in np.concatenate([points[:, 0], points[:, 1]])]
        fields += [f"{v:.2f}" for v in track.au_intensity[t]]
        if track.au_presence is not None:
            fields += [f"{v:.1f}" for v in track.au_presence[t]]
        lines.append(", ".join(fields))
    Path(path).write_text("\n".join(lines) + "\n")
