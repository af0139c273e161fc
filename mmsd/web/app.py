"""The Starlette app of `mmsd serve`: one plain page, its own scripts and styles, and a small JSON API.

    GET  /                        the page (static/index.html; static/app.js and style.css beside it)
    GET  /api/config              models (name, what it is for), emotion states, defaults, size limit
    POST /api/jobs?name=&kind=&crf=&emotion=&model=
                                  the body is the video file itself: 202 {"id": ...}, or 400/413
                                  {"error": "one line"}; the options are `pipeline.Options`
    GET  /api/jobs/{id}           {"state", "stage", "done", "total", "ahead", "message", "result"}
    DELETE /api/jobs/{id}         cancel it, if it is queued or running (204)
    GET  /files/{id}/{name}       a result file; ?download=1 serves it as an attachment

What reaches what: a job is found by its id, a random token (`jobs.JobQueue`), and a file only by
a name its result lists, which `pipeline.FILES` made; no request names a path. The Host header
must name this machine unless the server listens beyond it (a web page elsewhere cannot reach
the server through DNS rebinding), and the Content-Security-Policy lets the page load nothing
from anywhere but the app: it works offline.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmsd import emotions
from mmsd.web.jobs import JobQueue
from mmsd.web.pipeline import AUTO, DEFAULT_CRF, KINDS, Options, UploadError, too_large

STATIC = Path(__file__).parent / "static"
JOB_ID = re.compile(r"[0-9a-f]{32}")
HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; object-src 'none'; "
     b"base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True)
class ModelChoice:
    """A model the page offers: its name and what it is for (`mmsd models`)."""

    name: str
    purpose: str


def create_app(queue: JobQueue, *, models: Sequence[ModelChoice], default_model: str,
               allowed_hosts: Sequence[str] = ("*",)) -> Starlette:
    """The app over `queue`, offering `models`; requests whose Host is not in `allowed_hosts` get 400."""
    max_bytes = queue.max_bytes

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def config(request: Request) -> Response:
        return JSONResponse({
            "models": [dataclasses.asdict(model) for model in models],
            "default_model": default_model,
            "emotions": [AUTO, *emotions.NAMES],
            "kinds": list(KINDS),
            "default_crf": DEFAULT_CRF,
            "max_bytes": max_bytes,
        })

    async def create_job(request: Request) -> Response:
        query = request.query_params
        try:
            options = Options(kind=query.get("kind", AUTO), crf=float(query.get("crf", DEFAULT_CRF)),
                              emotion=query.get("emotion", AUTO), model=query.get("model", default_model))
            length = int(request.headers.get("content-length", 0))
        except (UploadError, ValueError) as exc:
            return await _refuse(request, 400, str(exc))
        limit = max_bytes if max_bytes is not None else math.inf
        if length > limit:
            return await _refuse(request, 413, too_large(length, max_bytes))
        job = queue.create(_file_name(query.get("name", "")), options)
        received = 0
        try:
            with open(job.upload, "wb") as file:
                async for chunk in request.stream():  # read to the end: the answer comes after the body
                    received += len(chunk)
                    if received <= limit:
                        file.write(chunk)
        except ClientDisconnect:
            queue.discard(job, "the upload was interrupted")
            return Response(status_code=400)
        if received > limit:
            queue.discard(job, too_large(received, max_bytes))
            return _error(413, too_large(received, max_bytes))
        queue.start(job)
        return JSONResponse({"id": job.id}, status_code=202)

    async def job_status(request: Request) -> Response:
        job_id = request.path_params["job"]
        status = queue.status(job_id) if JOB_ID.fullmatch(job_id) else None
        if status is None:
            return _error(404, "no such job (the server may have been restarted)")
        body = dataclasses.asdict(status)
        if status.result is not None:
            body["result"]["urls"] = {role: f"/files/{job_id}/{name}" for role, name in status.result.files.items()}
            body["result"]["download_name"] = _download_name(queue.get(job_id).name, status.result.model, ".mp4")
        return JSONResponse(_finite(body), headers={"cache-control": "no-store"})

    async def cancel_job(request: Request) -> Response:
        job_id = request.path_params["job"]
        if JOB_ID.fullmatch(job_id):
            queue.cancel(job_id)
        return Response(status_code=204)

    async def result_file(request: Request) -> Response:
        job_id, name = request.path_params["job"], request.path_params["name"]
        job = queue.get(job_id) if JOB_ID.fullmatch(job_id) else None
        result = job.result if job is not None else None
        if result is None or name not in result.files.values() or not (job.folder / name).is_file():
            return _error(404, "no such file")
        if request.query_params.get("download"):
            role = next(role for role, made in result.files.items() if made == name)
            tag = {"restored": result.model}.get(role, role)
            return FileResponse(job.folder / name, filename=_download_name(job.name, tag, Path(name).suffix))
        return FileResponse(job.folder / name)

    routes = [
        Route("/", index),
        Route("/api/config", config),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/jobs/{job}", job_status, methods=["GET"]),
        Route("/api/jobs/{job}", cancel_job, methods=["DELETE"]),
        Route("/files/{job}/{name}", result_file),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)), Middleware(_SecurityHeaders)]
    return Starlette(routes=routes, middleware=middleware)


class _SecurityHeaders:
    """Adds `HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(request: Request, status: int, message: str) -> JSONResponse:
    """An error answer to an upload that is not read: a client that sends its body anyway (without
    `Expect: 100-continue`) gets it after the body, else it would see its connection reset."""
    if request.headers.get("expect", "").lower() != "100-continue":
        async for _ in request.stream():
            pass
    return _error(status, message)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"cache-control": "no-store"})


def _file_name(name: str) -> str:
    """The browser's file name, for showing: its last part, printable, at most 100 characters."""
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:100] or "the upload"


def _download_name(name: str, tag: str, suffix: str) -> str:
    """'talk-mmsd-fast.mp4' for 'talk.mov', tag 'mmsd-fast', suffix '.mp4': ASCII letters, digits, '.', '_', '-'."""
    stem = Path(name).stem[:60] or "video"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{stem}-{tag}").strip("._-") + suffix


def _finite(value):
    """`value` (from JSON-able dicts and lists) with inf and NaN as None, which JSON has no word for."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
