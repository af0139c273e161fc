from __future__ import annotations

import numpy as np
import pytest

from mmsd.data.openface import AU_INTENSITY, AU_PRESENCE, OpenFaceTrack, read_csv, write_csv
from mmsd.errors import MmsdError


def openface_columns() -> list[str]:
    """Every column OpenFace 2.2 FeatureExtraction writes by default, in its order."""
    cols = ["frame", "face_id", "timestamp", "confidence", "success"]
    cols += ["gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z", "gaze_angle_x", "gaze_angle_y"]
    cols += [f"eye_lmk_{axis}_{i}" for axis in "xyXYZ" for i in range(56)]
    cols += ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    cols += [f"{axis}_{i}" for axis in "xy" for i in range(68)]
    cols += [f"{axis}_{i}" for axis in "XYZ" for i in range(68)]
    cols += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [f"p_{i}" for i in range(34)]
    cols += [f"{au}_r" for au in AU_INTENSITY] + [f"{au}_c" for au in AU_PRESENCE]
    return cols


def full_openface_csv(path, sep: str) -> dict[str, list[float]]:
    """Write 3 rows (frames 1, 1, 2; the second is face 1) of a full OpenFace CSV by hand."""
    cols = openface_columns()
    rows = []
    for frame, face in ((1, 0), (1, 1), (2, 0)):
        values = {name: -7.0 for name in cols}  # junk in every column the reader must skip
        values.update(frame=frame, face_id=face, timestamp=(frame - 1) * 0.033, confidence=0.98, success=1)
        for i in range(68):
            values[f"x_{i}"] = 100 + i + 1000 * face + 0.5 * frame
            values[f"y_{i}"] = 200 + i + 1000 * face
        for j, au in enumerate(AU_INTENSITY):
            values[f"{au}_r"] = round(0.1 * j + frame, 2)
        for j, au in enumerate(AU_PRESENCE):
            values[f"{au}_c"] = float(j % 2)
        rows.append(values)
    lines = [sep.join(cols)] + [sep.join(f"{row[c]:g}" for c in cols) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return rows


def make_track(num: int = 4, presence: bool = True) -> OpenFaceTrack:
    rng = np.random.default_rng(1)
    return OpenFaceTrack(
        frame=np.arange(1, num + 1),
        timestamp=np.arange(num) / 25.0,
        confidence=np.full(num, 0.95),
        success=np.array([True, True, False, True][:num]),
        landmarks=rng.uniform(0, 480, (num, 68, 2)).astype(np.float32),
        au_intensity=rng.uniform(0, 5, (num, 17)).astype(np.float32),
        au_presence=rng.integers(0, 2, (num, 18)).astype(np.float32) if presence else None,
    )


def test_presence_columns_follow_openface():
    assert len(AU_INTENSITY) == 17 and len(AU_PRESENCE) == 18
    assert AU_PRESENCE == tuple(sorted(AU_PRESENCE))  # OpenFace sorts AU names before writing


def test_write_read_round_trip(tmp_path):
    track = make_track()
    path = tmp_path / "clip.csv"
    write_csv(path, track)
    header = path.read_text().splitlines()[0]
    assert header.startswith("frame, face_id, timestamp, confidence, success, x_0, x_1")
    assert ", x_67, y_0, " in header and ", y_67, AU01_r, " in header
    assert header.endswith("AU26_c, AU28_c, AU45_c")

    back = read_csv(path)
    assert back.frame.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(back.timestamp, track.timestamp, atol=5e-4)
    np.testing.assert_allclose(back.confidence, track.confidence, atol=5e-3)
    assert back.success.tolist() == track.success.tolist()
    assert back.landmarks.shape == (4, 68, 2) and back.landmarks.dtype == np.float32
    np.testing.assert_allclose(back.landmarks, track.landmarks, atol=0.051)  # OpenFace keeps 0.1 px
    np.testing.assert_allclose(back.au_intensity, track.au_intensity, atol=0.0051)
    np.testing.assert_array_equal(back.au_presence, track.au_presence)


def test_round_trip_without_presence(tmp_path):
    path = tmp_path / "clip.csv"
    write_csv(path, make_track(presence=False))
    assert "_c" not in path.read_text().splitlines()[0]
    assert read_csv(path).au_presence is None


@pytest.mark.parametrize("sep", [", ", ","])
def test_reads_full_openface_file(tmp_path, sep):
    path = tmp_path / "openface.csv"
    rows = full_openface_csv(path, sep)
    track = read_csv(path)
    assert track.frame.tolist() == [1, 2]  # face 1 dropped
    np.testing.assert_allclose(track.timestamp, [0.0, 0.033])
    assert track.success.all()
    assert track.landmarks[1, 5].tolist() == [rows[2]["x_5"], rows[2]["y_5"]]
    assert track.landmarks[0, 67].tolist() == [rows[0]["x_67"], rows[0]["y_67"]]
    np.testing.assert_allclose(track.au_intensity[1], [rows[2][f"{au}_r"] for au in AU_INTENSITY], atol=1e-6)
    assert track.au_presence[0].tolist() == [float(j % 2) for j in range(18)]


def test_header_only_file_gives_empty_track(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(", ".join(openface_columns()) + "\n")
    track = read_csv(path)
    assert track.landmarks.shape == (0, 68, 2) and track.au_intensity.shape == (0, 17)


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "no_au12.csv"
    write_csv(path, make_track())
    lines = path.read_text().splitlines()
    drop = lines[0].split(", ").index("AU12_r")
    path.write_text("\n".join(", ".join(v for i, v in enumerate(line.split(", ")) if i != drop) for line in lines))
    with pytest.raises(MmsdError, match=r"no_au12\.csv: OpenFace CSV has no column 'AU12_r'"):
        read_csv(path)


def test_bad_files(tmp_path):
    with pytest.raises(MmsdError, match="no such OpenFace CSV"):
        read_csv(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(MmsdError, match="empty file"):
        read_csv(empty)
    short = tmp_path / "short.csv"
    write_csv(short, make_track())
    short.write_text(short.read_text() + "5, 0, 0.2\n")
    with pytest.raises(MmsdError, match="malformed OpenFace CSV row"):
        read_csv(short)


def test_writer_checks_shapes(tmp_path):
    track = make_track()
    track.landmarks = track.landmarks[:, :5]
    with pytest.raises(ValueError, match=r"OpenFaceTrack.landmarks: expected shape \(4, 68, 2\)"):
        write_csv(tmp_path / "x.csv", track)
