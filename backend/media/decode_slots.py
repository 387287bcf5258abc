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
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Iterator, Optional


class DecodeBusy(Exception):
    """No slot freed up in time."""


class DecodeSlots:
    def __init__(self, count: int = 2, min_pixels: int = 16_000_000, wait_seconds: float = 10.0,
                 per_process: int = 1):
        self.count, self.min_pixels, self.wait_seconds = count, min_pixels, wait_seconds
        self.per_process = per_process
        self.directory: Optional[Path] = None
        self._local = threading.Lock()
        self._held: set[int] = set()  # slots held by threads of this process (flock does not tell them apart)
        self._fds: dict[int, int] = {}
        # A forked child (an export's render process) starts with none of its parent's slots: the parent's lock
        # may be held by another thread at the fork, and the slots its threads hold are not the child's.
        def forget_parent(ref=weakref.ref(self)) -> None:
            slots = ref()
            if slots is not None:
                slots._forget_parent()

        os.register_at_fork(after_in_child=forget_parent)

    def _forget_parent(self) -> None:
        self._local = threading.Lock()
        self._fds, self._held = {}, set()  # never unlock the inherited descriptors: that would free the parent's slots

    def configure(self, directory: str | os.PathLike | None, count: int, min_pixels: int | None = None) -> None:
        with self._local:
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
