"""At most N large image decodes at once across all processes of a server (gunicorn workers, job threads).

A large decode holds up to imaging.MAX_DECODE_BYTES (512 MB by default); six workers decoding at once would hold
six times that. Each
decode of more than ``min_pixels`` takes a slot: an exclusive `flock` on one of N files in a folder of the
workspace (so the slots are shared by every process on the host; a process that dies releases its locks), or,
before `configure` names a folder, a semaphore of this process. A decode waits for a slot up to ``wait_seconds``
(10: a waiting request holds its worker thread, and the connections kept alive on it wait too) and is then
refused (429, "busy": retry later).

A process also holds at most ``per_process`` slots (1): with several threads per process a second large decode
waits even when another process's slot is free, so no one process holds two decodes' memory at once (a worker
peaked at 1,132 MB with several in flight; the request limit is 1 GB, benchmarks/README.md, issue 18).

`run` decodes on a thread of the process whose CPU priority is ``nice`` steps lower (INKLABEL_DECODE_NICE, 10; 0
decodes in the request's own thread): when the cores are busy, the short requests of the process's other threads
(and of other processes) go first, and the large decode takes what is left. An unprivileged thread can lower its
priority but never raise it again, hence a thread of its own. Its CPU is not on the request thread's clock that
backend/serve/request_limits.py watches (the decode's memory is on the process's, which it also watches): the
pixel and decode-memory caps bound it instead.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

T = TypeVar("T")


class DecodeBusy(Exception):
    """No slot freed up in time."""


class DecodeSlots:
    def __init__(self, count: int = 2, min_pixels: int = 16_000_000, wait_seconds: float = 10.0,
                 per_process: int = 1, nice: int = 0):
        self.count, self.min_pixels, self.wait_seconds = count, min_pixels, wait_seconds
        self.per_process, self.nice = per_process, nice
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_pid = 0
        self.directory: Optional[Path] = None
        self._local = threading.Lock()
        self._held: set[int] = set()  # slots held by threads of this process (flock does not tell them apart)
        self._fds: dict[int, int] = {}
        self._pid = os.getpid()

    def configure(self, directory: str | os.PathLike | None, count: int, min_pixels: int | None = None,
                  nice: int | None = None) -> None:
        with self._local:
            if nice is not None and nice != self.nice:
                if self._pool is not None and self._pool_pid == os.getpid():
                    self._pool.shutdown(wait=False)
                self.nice, self._pool = max(0, int(nice)), None
            for fd in self._fds.values():
                os.close(fd)
            self._fds, self._held = {}, set()
            self.count = max(1, int(count))
            if min_pixels is not None:
                self.min_pixels = int(min_pixels)
            self.directory = Path(directory) if directory else None
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)

    def _fd(self, index: int) -> int:
        if self._pid != os.getpid():  # forked: the parent's descriptors share its locks
            self._fds, self._held, self._pid = {}, set(), os.getpid()
        fd = self._fds.get(index)
        if fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"decode-slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            self._fds[index] = fd
        return fd

    def _try_take(self) -> Optional[int]:
        with self._local:
            if len(self._held) >= self.per_process:
                return None
            for index in range(self.count):
                if index in self._held:
                    continue
                if self.directory is not None:
                    try:
                        fcntl.flock(self._fd(index), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                self._held.add(index)
                return index
        return None

    def _give_back(self, index: int) -> None:
        with self._local:
            if self.directory is not None and index in self._fds:
                fcntl.flock(self._fds[index], fcntl.LOCK_UN)
            self._held.discard(index)

    @contextlib.contextmanager
    def slot(self, pixels: int) -> Iterator[None]:
        if pixels < self.min_pixels:
            yield
            return
        deadline = time.monotonic() + self.wait_seconds
        index = self._try_take()
        while index is None:
            if time.monotonic() > deadline:
                raise DecodeBusy(f"{self.count} large images are being decoded already")
            time.sleep(0.02)
            index = self._try_take()
        try:
            yield
        finally:
            self._give_back(index)

    def run(self, pixels: int, decode: Callable[[], T]) -> T:
        """decode() under a slot; a large one on this process's lower-priority decode thread (see the module)."""
        with self.slot(pixels):
            if pixels < self.min_pixels or self.nice <= 0:
                return decode()
            return self._decode_threads().submit(decode).result()

    def _decode_threads(self) -> ThreadPoolExecutor:
        with self._local:
            if self._pool is None or self._pool_pid != os.getpid():  # none yet, or the parent's (forked)
                self._pool = ThreadPoolExecutor(self.per_process, "inklabel-decode", initializer=_lower_priority,
                                                initargs=(self.nice,))
                self._pool_pid = os.getpid()
            return self._pool


def _lower_priority(steps: int) -> None:
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + steps))
    except (AttributeError, OSError):  # not Linux: the thread runs at the process's priority
        pass
