"""Jobs on a real Celery worker process (`manage.py worker`) over a real Redis: both queues, progress,
cancellation, and a worker killed with SIGKILL in the middle of a job (the job is retried by the next worker).

Needs Redis at TEST_REDIS_URL (default redis://127.0.0.1:6379/14; the database number is flushed); skipped
without it. The database is SQLite in the test's workspace (the claim/heartbeat/reaper logic itself is tested on
both databases in test_jobs_lifecycle.py).
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from backend.db.extensions import db
from backend.jobs.executor import submit_job
from backend.db.models import Job, User

from ..support.app import ApiClient, build_app, make_user
from .conftest import manage, redis_or_skip, wait_for, worker_env

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def stack(tmp_path, processes):
    broker = redis_or_skip()
    workspace = tmp_path / "workspace"
    env = worker_env(workspace, broker)
    subprocess.run(manage("init"), env=env, check=True, capture_output=True, timeout=60)
    app = build_app(tmp_path, "sqlite", JOBS_EAGER=False, BROKER_URL=broker)
    log_path = tmp_path / "worker.log"

    def start_worker():
        proc = processes(manage("worker", "--queues", "gpu,cpu", "--concurrency", "2"), env=env, log_path=log_path)
        wait_for(lambda: b" ready." in log_path.read_bytes() or proc.poll() is not None, 30, what="worker ready")
        assert proc.poll() is None, log_path.read_text()
        return proc

    app.start_worker = start_worker
    app.worker_log = log_path
    yield app
    with app.app_context():
        db.engine.dispose()


def _job(app, job_id) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def _submit(app, kind, params) -> str:
    with app.app_context():
        return submit_job(kind, params).id


def test_worker_runs_jobs_from_both_queues_and_honours_cancel(stack):
    worker = stack.start_worker()
    cpu = _submit(stack, "ops_sleep", {"seconds": 0.3, "steps": 3})
    gpu = _submit(stack, "ops_gpu_echo", {"value": 42})
    wait_for(lambda: _job(stack, cpu).status == "succeeded" and _job(stack, gpu).status == "succeeded", 20,
             what="jobs on the worker")
    done = _job(stack, cpu)
    assert done.result["pid"] == worker.pid and done.progress == done.total == 3
    assert done.worker.split("/")[0].endswith(f":{worker.pid}")
    assert _job(stack, gpu).result == {"value": 42, "pid": worker.pid}

    # Cancel through the API while the worker runs the job.
    user, token = make_user(stack, "owner", "annotator")
    with stack.app_context():
        owner = db.session.scalar(db.select(User.id).where(User.username == "owner"))
        long_id = submit_job("ops_quiet", {"seconds": 60}, user_id=owner).id
    wait_for(lambda: _job(stack, long_id).status == "running", 20, what="long job start")
    resp = ApiClient(stack, user, token).post(f"/api/v1/jobs/{long_id}/cancel")
    assert resp.status_code == 202
    wait_for(lambda: _job(stack, long_id).status == "cancelled", 10, what="cancellation")


def test_job_of_a_killed_worker_is_retried_by_the_next(stack, tmp_path):
    marker = tmp_path / "starts.txt"
    first = stack.start_worker()
    job_id = _submit(stack, "ops_sleep", {"seconds": 2.0, "steps": 20, "marker": str(marker)})
    wait_for(lambda: _job(stack, job_id).progress >= 2, 20, what="job progress on the first worker")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(5)
    assert _job(stack, job_id).status == "running"  # what the dead worker left behind

    second = stack.start_worker()
    wait_for(lambda: _job(stack, job_id).status in ("succeeded", "failed"), 30, what="retry on the second worker")
    job = _job(stack, job_id)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2 and job.result["pid"] == second.pid
    assert [int(line) for line in marker.read_text().split()] == [first.pid, second.pid]
