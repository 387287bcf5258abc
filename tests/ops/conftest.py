"""Operations tests: job kinds of tests/ops/jobkinds.py, helpers for real Redis and subprocesses."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from . import jobkinds  # noqa: F401  (registers the test job kinds in this process)

ROOT = Path(__file__).resolve().parents[2]
TASK_MODULE = "tests.ops.jobkinds"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.05, what="condition"):
    """`what`: a description, or a callable giving one at the time of failure (e.g. with the state it saw)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")


def stop_process(proc: subprocess.Popen, timeout: float = 5) -> None:
    """End a subprocess we started (its whole process group), politely first."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


@pytest.fixture
def processes():
    """Start subprocesses in their own process group; all are stopped at the end of the test, whatever happens."""
    started: list[subprocess.Popen] = []

    def start(args, env=None, log_path=None, **kw):
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, **kw)
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        stop_process(proc)


def redis_url_for_tests() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def redis_or_skip(url: str | None = None) -> str:
    import redis

    url = url or redis_url_for_tests()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        client.ping()
        client.flushdb()
        client.close()
    except Exception as err:
        pytest.skip(f"Redis at {url} is not reachable ({err}); start one or set TEST_REDIS_URL")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def make_app(request, tmp_path):
    """Build apps on SQLite and on PostgreSQL with config overrides: make_app(JOBS_EAGER=False, ...)."""
    from backend.db.extensions import db

    from ..support.app import build_app

    built = []

    def factory(**overrides):
        app = build_app(tmp_path, request.param, **overrides)
        built.append(app)
        return app

    factory.database = request.param
    yield factory
    for app in built:
        pool = app.extensions.get("inklabel_executor")
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        reaper = app.extensions.get("inklabel_reaper")
        if reaper is not None:
            reaper.set()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def worker_env(workspace: Path, broker_url: str, database_url: str | None = None, **extra) -> dict:
    """Environment of a `manage.py` subprocess sharing the test's workspace, database and broker."""
    env = dict(os.environ)
    for key in ("DATABASE_URL", "INKLABEL_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(key, None)
    env.update({
        "INKLABEL_WORKSPACE": str(workspace),
        "DATABASE_URL": database_url or f"sqlite:///{workspace / 'inklabel.db'}",
        "INKLABEL_BROKER_URL": broker_url,
        "INKLABEL_TASK_MODULES": TASK_MODULE,
        "INKLABEL_SECRET_KEY": "test-secret-key-not-for-production",
        "INKLABEL_JOB_HEARTBEAT_SECONDS": "0.2",
        "INKLABEL_JOB_STALE_SECONDS": "1.5",
        "INKLABEL_JOB_REAP_INTERVAL": "0.3",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(*args) -> list[str]:
    import sys

    return [sys.executable, str(ROOT / "manage.py"), *args]


def start_redis(processes, port: int, log_path: Path):
    """A private redis-server (no persistence) on `port`, or skip when redis-server is not installed."""
    import shutil

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    proc = processes([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                     log_path=log_path)
    client = redis.Redis(port=port, socket_connect_timeout=0.5)

    def up():
        try:
            return client.ping()
        except redis.RedisError:
            return False

    wait_for(up, 10, what="redis-server")
    client.close()
    return proc
