"""The Restorer's threads: a read-ahead decoder, an in-order encoder, frame workers, and torch's thread count.

On this 2-core CPU a batch-1 forward of the small networks leaves the second core mostly idle, and PyAV
releases the GIL while FFmpeg decodes and encodes: so decoding runs ahead of the network, encoding behind
it, and frames are restored by workers of one torch thread each (docs/speed.md).
"""

from __future__ import annotations

import concurrent.futures
import queue
import resource
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

import torch
from torch import nn

from mmsd.errors import MmsdError

T = TypeVar("T")


def run_on_one_thread(module: nn.Module) -> None:
    """Make `module` (in place) run its forward on one CPU thread, whatever torch's thread count.

    For MMSD-Net's audio encoder, a BiLSTM over 2N+1 frames x 4 MFCC vectors: its steps are
    too small to share, and with OMP_WAIT_POLICY=PASSIVE (set by the `mmsd` command) every
    step wakes the sleeping OpenMP workers: 10.6 ms per window at 2 threads, 0.6 ms on one
    (idle CPU; docs/speed.md). The convolutions keep all threads."""
    forward = module.forward

    def forward_on_one_thread(*args, **kwargs):
        threads = torch.get_num_threads()
        if threads == 1 or torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return forward(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return forward(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    module.forward = forward_on_one_thread


OVERLAP_FRAMES = 4  # frames decoded ahead of, and encoded behind, the network


def read_ahead(items: Iterator[T], *, depth: int) -> Generator[T, None, None]:
    """Yield `items`, produced up to `depth` ahead by a thread of their own; the producer's exception
    is raised here, in order. Closing the generator stops the thread (at its next item)."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the consumer
            put((_END, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="mmsd-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


_END = object()


class InOrder:
    """Calls run in submission order on one worker thread, at most `depth` behind the caller
    (depth 0: at once, on the caller's thread). A call's exception is raised by a later
    `call` or by `finish`."""

    def __init__(self, *, depth: int) -> None:
        self.depth = depth
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mmsd-encode") if depth else None
        self._pending: deque[concurrent.futures.Future] = deque()

    def call(self, function: Callable, *args) -> None:
        if self._pool is None:
            function(*args)
            return
        self._pending.append(self._pool.submit(function, *args))
        while len(self._pending) > self.depth:
            self._pending.popleft().result()

    def finish(self) -> None:
        """Wait for every call; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()
        self.cancel()

    def cancel(self) -> None:
        """Drop the calls not started; wait for the running one."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class Workers:
    """Jobs run on `count` threads of their own, each with an equal share of torch's threads (at least
    one); results come back in submission order. One worker: each job runs at once, on the caller's
    thread and all of torch's threads. A job's exception is raised where its result is yielded."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._threads = torch.get_num_threads()
        self._pool = None
        if count > 1:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                count, thread_name_prefix="mmsd-restore", initializer=torch.set_num_threads,
                initargs=(max(1, self._threads // count),))
        self._pending: deque[concurrent.futures.Future] = deque()

    def submit(self, job: Callable[..., T], *args) -> Iterator[T]:
        """Start job(*args); yield the results of the oldest jobs while `count` are in flight."""
        if self._pool is None:
            yield job(*args)
            return
        self._pending.append(self._pool.submit(job, *args))
        while len(self._pending) >= self.count:
            yield self._pending.popleft().result()

    def drain(self) -> Iterator[T]:
        """Yield the results of every job still in flight, in order."""
        while self._pending:
            yield self._pending.popleft().result()

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        """Drop the jobs not started and wait for the running ones (a consumer that stopped early, an error)."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(self._threads)  # the workers' setting is also the default of new threads


def set_threads(threads: int | None) -> None:
    """torch's CPU threads (and so ONNX Runtime's, `mmsd.restore.onnx_engine`) for a command's --threads;
    None keeps them."""
    if threads is None:
        return
    if threads < 1:
        raise MmsdError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB: VmHWM on Linux (getrusage's maximum
    carries over the peak of a large parent that forked and exec'd this process), else getrusage
    (Linux reports KB, macOS bytes)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
