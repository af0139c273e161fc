"""The server's work queue: uploads are restored one at a time, in the order they came.

Each job has a folder of its own in the server's temporary folder, named by the job's id, a
random token made here; what a job's folder holds is made by `handle_upload` under names of
its own. A failed job's folder is removed (with its upload), and beyond `keep` finished jobs the
oldest one's is too. `close()` stops the work at its next frame and removes the whole folder.
Two uploads at once are queued, never run side by side: each restoration already uses every core.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mmsd.web.pipeline import Options, Result, UploadError, handle_upload, public_message

UPLOAD = "upload"  # the upload's name in its job's folder
KEEP = 20  # finished jobs whose results are kept
JOIN_SECONDS = 30  # how long `close` waits for the work to reach its next frame


class Cancelled(Exception):
    """The server is stopping, or the job was cancelled: raised into the work from its progress callback."""


@dataclass
class Job:
    """One upload and what became of it; changed only under the queue's lock."""

    id: str
    name: str  # the file name the browser gave: shown, and in the download's name, never a path
    options: Options
    folder: Path
    state: str = "receiving"  # receiving -> queued -> running -> done | failed; done -> expired
    stage: str = ""
    done: int = 0
    total: int | None = None
    message: str = ""  # why it failed or expired
    result: Result | None = None
    cancelled: bool = False

    @property
    def upload(self) -> Path:
        return self.folder / UPLOAD


@dataclass(frozen=True)
class Status:
    """A job as the page polls it."""

    state: str
    stage: str
    done: int
    total: int | None
    ahead: int  # jobs to finish before this one starts
    message: str
    result: Result | None


class JobQueue:
    """Jobs in `root` (made by the caller, removed by `close`), run in order on one thread by `run`
    (`handle_upload`'s signature; tests give another)."""

    def __init__(self, root: Path, *, max_bytes: int | None = None, keep: int = KEEP,
                 run: Callable[..., Result] = handle_upload) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._keep = keep
        self._run = run
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._finished: deque[Job] = deque()
        self._lock = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="mmsd-serve-jobs", daemon=True)
        self._thread.start()

    def create(self, name: str, options: Options) -> Job:
        """A new job with an empty folder, for its upload to be written to `job.upload`."""
        job_id = secrets.token_hex(16)
        job = Job(job_id, name, options, self.root / job_id)
        job.folder.mkdir()
        with self._lock:
            self._jobs[job_id] = job
        return job

    def start(self, job: Job) -> None:
        """Queue a job whose upload is complete."""
        with self._lock:
            job.state = "queued"
            self._waiting.append(job)
            self._lock.notify_all()

    def discard(self, job: Job, message: str) -> None:
        """Fail a job whose upload did not arrive whole; its folder goes."""
        shutil.rmtree(job.folder, ignore_errors=True)
        with self._lock:
            job.state, job.message = "failed", message

    def cancel(self, job_id: str) -> None:
        """Drop a queued job, or stop a running one at its next frame (the page does so when the user drops
        another file); its folder goes. Finished jobs are left as they are."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in ("queued", "running"):
                return
            job.cancelled = True
            if job.state == "queued":
                self._waiting.remove(job)
                job.state, job.message = "failed", "cancelled"
                shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def status(self, job_id: str) -> Status | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            ahead = 0
            if job.state == "queued":
                ahead = list(self._waiting).index(job) + (self._running is not None)
            return Status(job.state, job.stage, job.done, job.total, ahead, job.message, job.result)

    def close(self) -> None:
        """Stop the work (at its next frame) and remove every upload and result."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(timeout=JOIN_SECONDS)
        shutil.rmtree(self.root, ignore_errors=True)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                job = self._running = self._waiting.popleft()
                job.state = "running"
            try:
                result = self._run(job.upload, job.folder, job.options, name=job.name, max_bytes=self.max_bytes,
                                   progress=partial(self._progress, job))
            except Cancelled:
                if self._stopping:
                    return
                shutil.rmtree(job.folder, ignore_errors=True)
                self._finish(job, "failed", message="cancelled")
            except UploadError as exc:
                shutil.rmtree(job.folder, ignore_errors=True)  # `handle_upload` removed it already
                self._finish(job, "failed", message=str(exc))
            except Exception as exc:  # a bug: the traceback on the server's terminal, one line on the page
                traceback.print_exc(file=sys.stderr)
                shutil.rmtree(job.folder, ignore_errors=True)
                self._finish(job, "failed", message="internal error: "
                             + public_message(exc, {job.upload: job.name, job.folder: ""}))
            else:
                job.upload.unlink(missing_ok=True)  # the page shows the results, never the upload itself
                self._finish(job, "done", result=result)

    def _progress(self, job: Job, stage: str, done: int, total: int | None) -> None:
        if self._stopping or job.cancelled:
            raise Cancelled
        with self._lock:
            job.stage, job.done, job.total = stage, done, total

    def _finish(self, job: Job, state: str, *, message: str = "", result: Result | None = None) -> None:
        with self._lock:
            job.state, job.message, job.result = state, message, result
            self._running = None
            if state != "done":
                return
            self._finished.append(job)
            while len(self._finished) > self._keep:
                old = self._finished.popleft()
                shutil.rmtree(old.folder, ignore_errors=True)
                old.state, old.result = "expired", None
                old.message = f"this result was removed: the server keeps the last {self._keep}"
