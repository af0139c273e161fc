"""`mmsd serve`: the page on this machine; prints its address and runs until Ctrl-C.

It listens on 127.0.0.1 (this machine only) unless ``--host`` says otherwise, and then warns.
Uploads and results live in a temporary folder, removed when the server stops.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn

from mmsd.commands import catalog
from mmsd.models import weights
from mmsd.errors import MmsdError
from mmsd.restore.loading import DEFAULT_MODEL, shipped_models
from mmsd.web.app import ModelChoice, create_app
from mmsd.web.jobs import JobQueue

DEFAULT_MAX_MB = 200
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; e.g. 0.0.0.0 lets "
                             "every machine that reaches this one use the page, with a warning)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    parser.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB,
                        help=f"largest upload in MB (default {DEFAULT_MAX_MB})")


def run(args: argparse.Namespace) -> int:
    if not args.max_mb > 0:
        raise MmsdError(f"--max-mb must be positive, got {args.max_mb}")
    sock = _listen(args.host, args.port)
    local = _is_local(sock.getsockname()[0])
    if not local:
        print(f"mmsd serve: warning: listening on {args.host}: anyone who reaches this machine on port "
              f"{sock.getsockname()[1]} can upload videos and use its CPU", file=sys.stderr)
    root = Path(tempfile.mkdtemp(prefix="mmsd-serve-"))
    queue = JobQueue(root, max_bytes=round(args.max_mb * 1e6))
    # uvicorn stops on SIGINT and SIGTERM, then raises the signal again: as KeyboardInterrupt both times,
    # so that the folder is removed below (SIGTERM's default would end the process on the spot)
    on_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        app = create_app(queue, models=_models(), default_model=DEFAULT_MODEL,
                         allowed_hosts=[*LOCAL_NAMES, args.host] if local else ["*"])
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3)
        server = _Server(config, f"mmsd serve: open {_address(args.host, sock.getsockname()[1])} in a browser "
                                 f"(uploads and results in {root} until Ctrl-C stops the server)")
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        queue.close()
        sock.close()
        signal.signal(signal.SIGTERM, on_term)
    print("mmsd serve: stopped; uploads and results removed", flush=True)
    return 0


class _Server(uvicorn.Server):
    """A uvicorn server that prints `message` once it serves: after its Ctrl-C handlers are in place, so that a
    Ctrl-C right after the address appears stops it as any other (before them, it could hang the start-up)."""

    def __init__(self, config: uvicorn.Config, message: str) -> None:
        super().__init__(config)
        self.message = message

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self.message, flush=True)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, so that a taken port fails here with one line, before the address is printed."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise MmsdError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sock


def _is_local(address: str) -> bool:
    return ipaddress.ip_address(address.split("%")[0]).is_loopback


def _address(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _models() -> list[ModelChoice]:
    """The restoration models by name, each with the first sentence of its card (`mmsd models`)."""
    found = weights.named_models()
    choices = []
    for name in shipped_models():
        try:
            purpose = catalog.describe(name, found.get(name)).purpose
        except (MmsdError, ValueError, OSError):  # a broken file in $MMSD_MODELS: the page says so when it is used
            purpose = "(its file cannot be read)"
        choices.append(ModelChoice(name, purpose))
    return choices
