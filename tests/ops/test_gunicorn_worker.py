"""backend/serve/gunicorn_worker.py under real gunicorn (`manage.py serve --prod`): one thread per process answers on its
event loop, keeps connections alive, and a connection that sends nothing holds it only for gthread's data timeout
while the heartbeat keeps the arbiter from replacing the process. (With more threads it is gthread's pool: the
other gunicorn tests run with threads=2.)"""
from __future__ import annotations

import socket
import time

import pytest

from ..support.stack import RawClient, Stack

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]  # gunicorn subprocesses


def test_one_thread_worker_keeps_alive_and_outlives_a_silent_connection(tmp_path):
    # A 2 s worker timeout: a silent connection holds the loop for 5 s, so without the heartbeat the arbiter would
    # kill and replace the process meanwhile.
    stack = Stack(tmp_path / "workspace", workers=1, threads=1, env={"GUNICORN_TIMEOUT": "2",
                                                                    "GUNICORN_GRACEFUL_TIMEOUT": "3"})
    try:
        stack.init()
        stack.start()
        assert "Using worker: backend.serve.gunicorn_worker.InlineThreadWorker" in stack.log_path.read_text()
        [worker] = stack.worker_pids()

        first, second = RawClient(stack.port, "unused"), RawClient(stack.port, "unused")
        for _ in range(20):  # two kept-alive connections taking turns on one single-threaded process
            assert first.call("GET", "/healthz")[0] == 200
            assert second.call("GET", "/healthz")[0] == 200
        kept = first.sock

        silent = socket.create_connection(("127.0.0.1", stack.port))  # connects, never sends
        time.sleep(0.2)
        started = time.monotonic()
        status, _ = first.call("GET", "/healthz")  # waits while the loop waits for the silent connection's request
        waited = time.monotonic() - started
        # Answered after at most gthread's 5 s data timeout, although the connection had been idle past its 5 s
        # keep-alive time by then: it had sent its request.
        assert status == 200 and waited < 8, waited
        for _ in range(5):
            assert first.call("GET", "/readyz")[0] == 200
        assert first.sock is kept  # the same connection all along
        assert stack.worker_pids() == [worker]  # not replaced while its loop waited
        silent.close()
    finally:
        stack.stop()
