"""Issue 18 item 4: a per-request limit in production that a runaway request cannot escape (backend/serve/request_limits.py
installed by gunicorn_conf.py for every worker class)."""
from __future__ import annotations

import gc
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from backend.serve.request_limits import Limits, RequestWatchdog
from ..support.stack import Http, Stack

from .conftest import wait_for


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(1000))


def test_watchdog_ends_a_request_over_its_cpu_limit_and_spares_others():
    fired: list[str] = []
    watchdog = RequestWatchdog(Limits(cpu_seconds=0.2, max_rss_mb=0), interval=0.02, on_exceeded=fired.append)
    watchdog.start()
    try:
        def request(what: str, work: float) -> None:
            watchdog.begin(what)
            try:
                if work:
                    _burn(work)
                else:
                    time.sleep(0.6)  # waiting (a slow client) uses no CPU
            finally:
                watchdog.end()

        idle = threading.Thread(target=request, args=("GET /slow-download", 0))
        idle.start()
        idle.join()
        assert fired == []
        runaway = threading.Thread(target=request, args=("PUT /runaway", 0.6))
        runaway.start()
        runaway.join()
        wait_for(lambda: fired, 2, what="the watchdog firing")
        assert fired[0].startswith("PUT /runaway: ") and "CPU" in fired[0]
    finally:
        watchdog.stop()


def _first_reason(watchdog: RequestWatchdog, seconds: float = 2.0):
    """The watchdog's verdict over a few passes, as its loop would see it: the kernel's resident-memory counter
    may lag a fresh allocation for a moment, and another thread of the test process may free memory meanwhile."""
    end = time.monotonic() + seconds
    while (reason := watchdog.check()) is None and time.monotonic() < end:
        time.sleep(0.05)
    return reason


def test_watchdog_limits_added_memory():
    gc.collect()  # garbage of earlier tests freed now, not while this request is in flight
    watchdog = RequestWatchdog(Limits(cpu_seconds=0, max_rss_mb=50), on_exceeded=lambda reason: None)
    watchdog.begin("POST /bomb")
    try:
        block = np.ones(300 * 2**20, dtype=np.uint8)  # touched: resident; 6x the limit, far above any noise
        reason = _first_reason(watchdog)
        assert reason is not None and reason.startswith("POST /bomb: +") and "MB resident" in reason
        del block
    finally:
        watchdog.end()
    assert watchdog.check() is None


def test_memory_limit_is_per_request_in_flight():
    """Two threads of one process decoding at once may add twice the limit between them."""
    watchdog = RequestWatchdog(Limits(cpu_seconds=0, max_rss_mb=80), on_exceeded=lambda reason: None)
    other = threading.Thread(target=lambda: (watchdog.begin("POST /other"), time.sleep(0.5)))
    other.start()
    time.sleep(0.05)
    watchdog.begin("POST /mine")
    try:
        block = np.ones(120 * 2**20, dtype=np.uint8)
        assert watchdog.check() is None  # +120 MB with two requests in flight: within 2 x 80 MB
        del block
    finally:
        watchdog.end()
        other.join()


def test_limits_from_the_environment():
    assert Limits.from_env({}) == Limits(10.0, 1024.0, 0.0)
    assert Limits.from_env({"INKLABEL_REQUEST_CPU_SECONDS": "2.5", "INKLABEL_REQUEST_WALL_SECONDS": "60"}) == \
        Limits(2.5, 1024.0, 60.0)
    with pytest.raises(SystemExit):
        Limits.from_env({"INKLABEL_REQUEST_CPU_SECONDS": "ten"})


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_serve_prod_kills_a_request_over_the_limit_and_goes_on(tmp_path):
    stack = Stack(tmp_path / "workspace", workers=1, threads=1, env={"INKLABEL_REQUEST_CPU_SECONDS": "0.05",
                                                                    "GUNICORN_GRACEFUL_TIMEOUT": "3"})
    try:
        stack.init()
        stack.start()
        [worker] = stack.worker_pids()
        [token] = stack.users(1)
        noise = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
        out = io.BytesIO()
        Image.fromarray(noise).save(out, "PNG", compress_level=1)
        reply = Http(stack.url, token).upload([(out.getvalue(), "big.png")])  # decode + thumbnail: > 0.05 s CPU
        assert reply.status == 0, reply  # the worker ended mid-request: no answer
        wait_for(lambda: stack.worker_pids() and stack.worker_pids() != [worker], 30, what="a new worker")
        wait_for(lambda: Http(stack.url).get("/healthz").status == 200, 30, what="the new worker answering")
        assert "request over its limit" in stack.log_path.read_text()
        assert Http(stack.url, token).get("/api/v1/images").body["total"] == 0  # nothing half-stored
    finally:
        stack.stop()
