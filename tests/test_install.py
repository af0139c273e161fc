"""The tool as a user installs it: a wheel built from the source, installed by pip into a fresh virtual
environment and run from a folder outside the repository, finds its shipped models by name.

What this checks: the wheel (built as `make dist` builds it, `python -m build`) holds the package, its
configs, every shipped model with its card and the `mmsd` entry point, and nothing else; pip installs it
into a new venv; run from a foreign folder, that venv's `mmsd` imports its own copy (not this checkout)
and decodes a tiny clip with a shipped name. What it does not: the dependencies are not installed again
(a full install takes minutes). The new venv is made without pip, the wheel goes in with `--no-deps`, and
the venv sees this test environment's site-packages through a .pth file, after its own site-packages,
so `mmsd` comes from the wheel and torch, PyAV, ... from here. That pip resolves the declared
dependencies in a fresh venv (`pip install dist/mmsd-*.whl -c constraints.txt`) is checked by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

import mmsd
from mmsd.media.codec import VideoWriter, probe
from mmsd.models import weights

SOURCE = Path(mmsd.__file__).resolve().parent.parent


def _run(command: list, **kwargs) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_wheel_installs_and_decodes_with_a_shipped_name_from_any_folder(tmp_path):
    # the wheel, from a copy of what a build reads (so no build/ or egg-info lands in the checkout)
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(SOURCE / name, source / name)
    shutil.copytree(SOURCE / "mmsd", source / "mmsd", ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp_path / "dist", source])
    (wheel,) = (tmp_path / "dist").glob("mmsd-*.whl")
    shipped = sorted(p.name for p in weights.SHIPPED_DIR.iterdir()
                     if p.suffix in (".safetensors", ".md") or p.name.endswith(".int8.json"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert sorted(n.removeprefix("mmsd/shipped/") for n in names if n.startswith("mmsd/shipped/")) == shipped
    assert "mmsd/configs/mmsd-small.yaml" in names and "mmsd = mmsd.cli:main" in entry_points
    assert all(n.startswith(("mmsd/", "mmsd-0")) for n in names), "only the package and its metadata"
    models_bytes = sum(p.stat().st_size for p in weights.SHIPPED_DIR.glob("*.safetensors"))
    assert wheel.stat().st_size < models_bytes + 2_000_000  # the models and ~1 MB of code at most

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index",
          "--quiet", "--disable-pip-version-check", wheel])
    site = Path(_run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "test-dependencies.pth").write_text("\n".join(sorted(here)) + "\n")

    elsewhere = tmp_path / "videos"  # outside the checkout; the clip is LR 40x24 with sound
    elsewhere.mkdir()
    rng = np.random.default_rng(0)
    with VideoWriter(elsewhere / "low.mp4", width=40, height=24, fps=Fraction(25), crf=18, preset="ultrafast",
                     audio_rate=16000) as writer:
        for _ in range(4):
            writer.write(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
        writer.write_audio(0.1 * np.sin(np.arange(2560, dtype=np.float32) / 8))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", weights.MODELS_ENV)}
    env["OMP_NUM_THREADS"] = "1"
    listing = _run([venv / "bin" / "mmsd", "models", "mmsd"], cwd=elsewhere, env=env)
    assert f"shipped in {site / 'mmsd' / 'shipped'}," in listing and "validation: face PSNR" in listing
    _run([venv / "bin" / "mmsd", "decode", "low.mp4", "-o", "out.mp4", "--model", "mmsd", "-q"],
         cwd=elsewhere, env=env)
    _run([venv / "bin" / "mmsd", "decode", "low.mp4", "-o", "int8.mp4", "--precision", "int8", "-q"],
         cwd=elsewhere, env=env)  # the default model's int8 calibration is installed beside its weights
    restored = probe(elsewhere / "out.mp4")
    assert (restored.width, restored.height, restored.num_frames, restored.has_audio) == (160, 96, 4, True)
