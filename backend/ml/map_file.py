"""The batch pre-fill's uint8 probability maps on their way to its tracing processes: one file that both sides map
(in /dev/shm when it has room, else the temp folder), `slots` batches of (batch, side, side). The pre-fill copies a
batch's maps from the device straight into a slot (PendingForward.result(prob_out=...)) and a tracing task gets
only where its map is, instead of ~0.25 MB an image pickled through the pool's pipe. numpy only: the tracing
processes import it without torch.
"""
from __future__ import annotations

import mmap
import os
import tempfile

import numpy as np


def shm_free_bytes(path: str = "/dev/shm") -> int:
    """Free bytes in shared memory (a container may keep it small: Docker gives 64 MB); 0 where there is none."""
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


class MapRing:
    """The writing side, in the pre-fill's process. A slot is written again only after the tasks of the batch in
    it are done (the pre-fill keeps fewer batches in flight than there are slots)."""

    def __init__(self, slots: int, batch_size: int, side: int):
        self.slots = slots
        self.shape = (slots, batch_size, side, side)
        nbytes = slots * batch_size * side * side
        directory = "/dev/shm" if shm_free_bytes() >= 2 * nbytes else None
        fd, self.path = tempfile.mkstemp(prefix="inklabel-prefill-maps-", dir=directory)
        try:
            os.ftruncate(fd, nbytes)
            self._mmap = mmap.mmap(fd, nbytes)
        finally:
            os.close(fd)
        self.maps = np.frombuffer(self._mmap, np.uint8).reshape(self.shape)

    def slot(self, batch: int, n: int) -> np.ndarray:
        """Where the `batch`-th batch's `n` maps go."""
        return self.maps[batch % self.slots, :n]

    def close(self) -> None:
        self.maps = None
        try:
            self._mmap.close()
        except BufferError:  # a view of it is still alive: the mapping goes with it
            pass
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


_MAPPED: dict[tuple[str, int], np.ndarray] = {}  # a tracing process's view of the current map file


def mapped_canvas(path: str, shape: tuple[int, ...], slot: int, index: int) -> np.ndarray:
    """The reading side, in a tracing process: one map of a MapRing's file, which is mapped read-only once per
    process and file (by path and inode: a later file may reuse a removed one's name)."""
    key = (path, os.stat(path).st_ino)
    maps = _MAPPED.get(key)
    if maps is None:
        with open(path, "rb") as f:
            view = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        _MAPPED.clear()  # one pre-fill at a time per process: an older file is not read again
        maps = _MAPPED[key] = np.frombuffer(view, np.uint8).reshape(shape)
    return maps[slot, index]
