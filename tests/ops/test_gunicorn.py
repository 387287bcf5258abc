"""`manage.py serve --prod`: gunicorn with backend/serve/gunicorn_conf.py serves the app, /metrics adds up all worker
processes (and survives worker replacement), logs are JSON lines with request ids."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..support.stack import Http, Stack

from .conftest import wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]  # gunicorn/worker subprocesses


def _healthz_count(stack: Stack) -> float:
    body = Http(stack.url).get("/metrics").body.decode()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "inklabel_http_requests_total" and sample.labels.get("route") == "/healthz":
                return sample.value
    return 0.0


def test_gunicorn_serves_and_metrics_add_up_across_workers(tmp_path):
    metrics_dir = tmp_path / "metrics"
    # A short graceful timeout: a worker told to stop may otherwise wait up to 30 s on an idle keep-alive connection.
    stack = Stack(tmp_path / "workspace", workers=2, threads=2,
                  env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "GUNICORN_GRACEFUL_TIMEOUT": "5"})
    try:
        stack.init()
        stack.start()
        start = _healthz_count(stack)  # the start-up probes
        for pid in stack.worker_pids():  # backend/serve PROCESS_ENV: large image blocks are returned on free
            assert b"\0MALLOC_MMAP_THRESHOLD_=1048576\0" in b"\0" + Path(f"/proc/{pid}/environ").read_bytes()
        for _ in range(30):
            assert Http(stack.url).get("/healthz").status == 200  # a new connection each: any worker may answer
        assert _healthz_count(stack) == start + 30
        # Replace every worker: the counts of the dead ones stay in the totals.
        old = stack.worker_pids()
        for pid in old:
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: len(stack.worker_pids()) == 2 and not set(stack.worker_pids()) & set(old), 60,
                 what=lambda: f"replacement workers (old {old}, now {stack.worker_pids()})")
        assert Http(stack.url).get("/healthz").status == 200
        assert _healthz_count(stack) == start + 31

        client = Http(stack.url)
        ready = client.get("/readyz")
        assert ready.status == 200 and ready.body["checks"]["database"]["ok"] is True
        denied = client.get("/api/v1/taxonomy", headers={"X-Request-ID": "trace-me-1"})
        assert denied.status == 401 and denied.headers["X-Request-ID"] == "trace-me-1"
    finally:
        stack.stop()
    lines = [json.loads(line) for line in stack.log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "trace-me-1" and line["logger"] == "inklabel.access"]
    assert access and access[0]["status"] == 401 and access[0]["route"] == "/api/v1/taxonomy"
