"""Issue 18 item 3: decode memory is bounded per pixel (no int64 path, no full copies) and checked before decoding;
large decodes take one of a few slots shared by every process."""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

from backend.media import imaging
from backend.media.decode_slots import DecodeBusy, DecodeSlots

ROOT = Path(__file__).resolve().parents[2]


def flat_png(width: int, height: int, bit_depth: int, color_type: int, bytes_per_pixel: int) -> bytes:
    """A PNG of zeros written row by row: a few hundred KB on disk, width x height pixels when decoded."""
    row = b"\x00" * (1 + width * bytes_per_pixel)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


PEAK_SCRIPT = """
import resource, sys
from backend.media.imaging import decode_image
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decoded = decode_image(data, 100_000_000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024 / (decoded.width * decoded.height))
"""


@pytest.mark.parametrize("kind,args", [("16-bit grey", (16, 0, 2)), ("RGBA", (8, 6, 4))])
def test_decode_peak_memory_per_pixel(tmp_path, kind, args):
    """The issue's bombs at a quarter of their size: 16-bit grey took ~21 bytes a pixel (int64), RGBA ~23."""
    path = tmp_path / "bomb.png"
    path.write_bytes(flat_png(5000, 5000, *args))
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    per_pixel = float(out.stdout.split()[-1])
    assert per_pixel <= imaging.DECODE_BYTES_PER_PIXEL["RGBA"] + 1, f"{kind}: {per_pixel:.1f} bytes per pixel"


def test_decode_memory_is_checked_before_decoding(monkeypatch):
    monkeypatch.setattr(imaging, "MAX_DECODE_BYTES", 64 * 2**20)
    with pytest.raises(imaging.ImageRejected) as err:
        imaging.decode_image(flat_png(4000, 4000, 8, 6, 4), 100_000_000)  # 16 MP RGBA: ~128 MB to decode
    assert err.value.status == 413 and err.value.code == "too_much_memory" and "64 MB" in err.value.message
    assert imaging.decode_image(flat_png(2000, 2000, 8, 2, 3), 100_000_000).width == 2000  # RGB: 3 bytes a pixel


def test_sixteen_bit_is_scaled_not_clipped():
    from PIL import Image
    import numpy as np

    img = Image.frombytes("I;16", (3, 1), np.array([0, 256, 65535], dtype="<u2").tobytes())
    assert list(imaging._to_rgb(img).getchannel(0).getdata()) == [0, 1, 255]


def test_large_decodes_wait_for_a_slot_across_processes(tmp_path):
    first, second = DecodeSlots(count=1, min_pixels=10), DecodeSlots(count=1, min_pixels=10, wait_seconds=0.3)
    first.configure(tmp_path, 1)
    second.configure(tmp_path, 1)  # another process's view of the same folder (its own descriptors)
    with second.slot(5):
        pass  # small decodes never wait
    with first.slot(100):
        started = time.monotonic()
        with pytest.raises(DecodeBusy):
            with second.slot(100):
                pass
        assert time.monotonic() - started >= 0.3
    with second.slot(100):  # free again
        pass


def _peak_inside(slots: DecodeSlots) -> int:
    inside, peak = [0], [0]
    lock = threading.Lock()

    def decode():
        with slots.slot(10):
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=decode) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return peak[0]


def test_threads_of_one_process_share_the_slots():
    assert _peak_inside(DecodeSlots(count=2, min_pixels=1, per_process=2)) == 2


def test_one_process_holds_one_large_decode_at_a_time(tmp_path):
    slots = DecodeSlots(count=3, min_pixels=1)
    slots.configure(tmp_path, 3)
    assert _peak_inside(slots) == 1
    other = DecodeSlots(count=3, min_pixels=1, wait_seconds=0.1)  # another process: the free slots are its
    other.configure(tmp_path, 3)
    with slots.slot(10), other.slot(10):
        pass


def test_a_forked_child_starts_without_its_parents_slots(tmp_path):
    """An export's render process is forked while the parent's threads may hold a slot, or the slots' lock: the
    child must still get a free slot (it held 1 of 1 allowed, or waited for a lock no thread of its would free)."""
    slots = DecodeSlots(count=2, min_pixels=1, wait_seconds=0.5)
    slots.configure(tmp_path, 2)
    with slots.slot(10), slots._local:  # as if another thread were inside the lock at the fork
        pid = os.fork()
        if pid == 0:
            signal.alarm(5)  # a deadlock ends the child instead of the test run
            try:
                with slots.slot(10):
                    os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
