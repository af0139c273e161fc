"""Atomic file writes: nothing half-written ever sits at a target path.

A writer gets a temporary path in the target's folder (so the final rename is atomic
on one file system), and the file is renamed onto the target only when it is complete;
on any error, Ctrl-C included, the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmsd.errors import MmsdError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def temp_beside(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A new empty file '.NAME.XXXX<suffix>' in the folder of `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: str | os.PathLike) -> None:
    """Move a finished temporary file onto `path`, with the permissions a plain open() would give
    (mkstemp makes it 0600, and the mode survives the rename)."""
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit it becomes `path`, on error it is removed."""
    tmp = temp_beside(path, suffix)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_output_path(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Reject an output that would overwrite the input, is a folder, or lies in a missing folder."""
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        raise MmsdError(f"{dst}: is a directory; give an output file name")
    if not dst.parent.is_dir():
        raise MmsdError(f"{dst}: folder {dst.parent} does not exist")
    if dst.resolve() == src.resolve() or (dst.exists() and src.exists() and os.path.samefile(src, dst)):
        raise MmsdError(f"{dst}: the output would overwrite the input")
