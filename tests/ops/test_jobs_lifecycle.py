"""Job lifecycle without a broker: atomic claim, heartbeat, cancellation, reaping of dead workers' jobs, chunking,
and the 503 when a configured broker is down. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

from prometheus_client import REGISTRY

from backend.db.extensions import db
from backend.jobs.executor import reap_stale_jobs, submit_chunked, submit_job
from backend.jobs.runner import run_job
from backend.db.models import Job, utcnow

from .conftest import free_port, wait_for


def _job(app, job_id) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def _insert(app, **fields) -> str:
    with app.app_context():
        job = Job(**fields)
        db.session.add(job)
        db.session.commit()
        return job.id


def _metric(name, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_eager_job_runs_and_records(make_app):
    app = make_app()
    with app.app_context():
        job_id = submit_job("ops_sleep", {"seconds": 0.02, "steps": 2}).id
    job = _job(app, job_id)
    assert job.status == "succeeded" and job.attempts == 1
    assert job.progress == job.total == 2
    assert job.worker and job.finished_at is not None and job.result["steps"] == 2


def test_failed_job_records_error_and_metrics(make_app):
    app = make_app()
    before = _metric("inklabel_job_failures_total", kind="ops_sleep")
    with app.app_context():
        job_id = submit_job("ops_sleep", {"seconds": 0.01, "steps": 1, "fail": True}).id
    job = _job(app, job_id)
    assert job.status == "failed" and "asked to fail" in job.error
    assert _metric("inklabel_job_failures_total", kind="ops_sleep") == before + 1
    assert _metric("inklabel_job_duration_seconds_count", kind="ops_sleep", status="failed") >= 1


def test_a_job_runs_once_however_often_it_is_delivered(make_app, tmp_path):
    app = make_app()
    marker = tmp_path / "starts.txt"
    job_id = _insert(app, kind="ops_sleep", params={"seconds": 0.2, "steps": 2, "marker": str(marker)})
    threads = [threading.Thread(target=run_job, args=(app, job_id)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_job(app, job_id)  # a late duplicate message
    assert len(marker.read_text().splitlines()) == 1
    job = _job(app, job_id)
    assert job.status == "succeeded" and job.attempts == 1


def test_cancelled_queued_job_never_starts(make_app, tmp_path):
    app = make_app()
    marker = tmp_path / "starts.txt"
    job_id = _insert(app, kind="ops_sleep", params={"marker": str(marker)}, cancel_requested=True)
    run_job(app, job_id)
    assert _job(app, job_id).status == "cancelled"
    assert not marker.exists()


def test_running_job_stops_on_cancel_seen_by_heartbeat(make_app):
    app = make_app(JOB_HEARTBEAT_SECONDS=0.05)
    job_id = _insert(app, kind="ops_quiet", params={"seconds": 20})
    worker = threading.Thread(target=run_job, args=(app, job_id))
    worker.start()
    wait_for(lambda: _job(app, job_id).status == "running", 5, what="job start")
    with app.app_context():
        db.session.get(Job, job_id).cancel_requested = True
        db.session.commit()
    started = time.monotonic()
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    job = _job(app, job_id)
    assert job.status == "cancelled" and job.error == "cancelled by request"


def test_heartbeat_keeps_a_quiet_job_fresh(make_app):
    app = make_app(JOB_HEARTBEAT_SECONDS=0.05)
    job_id = _insert(app, kind="ops_quiet", params={"seconds": 0.6})
    worker = threading.Thread(target=run_job, args=(app, job_id))
    worker.start()
    first = wait_for(lambda: _job(app, job_id).heartbeat_at, 5, what="first heartbeat")
    time.sleep(0.3)
    assert _job(app, job_id).heartbeat_at > first
    # A reaper with a short stale limit leaves the live job alone.
    assert reap_stale_jobs(app, stale_seconds=0.25)["retried"] == []
    worker.join(10)
    assert _job(app, job_id).status == "succeeded"


def test_reaper_retries_fails_or_cancels_dead_workers_jobs(make_app, tmp_path):
    app = make_app()
    old = utcnow() - timedelta(hours=1)
    dead = {"status": "running", "worker": "gone:1/abc", "heartbeat_at": old, "started_at": old}
    retry = _insert(app, kind="ops_sleep", params={"seconds": 0.01, "steps": 1}, attempts=1, **dead)
    exhausted = _insert(app, kind="ops_sleep", params={}, attempts=2, **dead)
    once = _insert(app, kind="ops_once", params={"marker": str(tmp_path / "once")}, attempts=1, **dead)
    cancelled = _insert(app, kind="ops_sleep", params={}, attempts=1, cancel_requested=True, **dead)
    alive = _insert(app, kind="ops_sleep", params={}, attempts=1, status="running", worker="here:2/def",
                    heartbeat_at=utcnow(), started_at=old)

    out = reap_stale_jobs(app, stale_seconds=60)
    assert out["retried"] == [retry]
    assert sorted(out["failed"]) == sorted([exhausted, once])
    assert out["cancelled"] == [cancelled]

    retried = _job(app, retry)  # JOBS_EAGER: dispatched again and run at once
    assert retried.status == "succeeded" and retried.attempts == 2 and retried.worker != "gone:1/abc"
    failed = _job(app, exhausted)
    assert failed.status == "failed" and "gone:1/abc stopped" in failed.error and "2 attempt" in failed.error
    assert _job(app, once).status == "failed" and not (tmp_path / "once").exists()
    assert _job(app, cancelled).status == "cancelled"
    still = _job(app, alive)
    assert still.status == "running" and still.worker == "here:2/def"
    assert reap_stale_jobs(app, stale_seconds=60) == {"retried": [], "failed": [], "cancelled": [], "requeued": []}


def test_a_reaped_job_does_not_overwrite_its_new_owner(make_app):
    app = make_app(JOB_HEARTBEAT_SECONDS=0.05)
    job_id = _insert(app, kind="ops_quiet", params={"seconds": 20})
    worker = threading.Thread(target=run_job, args=(app, job_id))
    worker.start()
    wait_for(lambda: _job(app, job_id).status == "running", 5, what="job start")
    with app.app_context():  # what a reaper + another worker do while this one is stalled
        job = db.session.get(Job, job_id)
        job.worker = "elsewhere:9/xyz"
        db.session.commit()
    worker.join(10)
    assert not worker.is_alive()
    job = _job(app, job_id)
    assert job.status == "running" and job.worker == "elsewhere:9/xyz" and job.finished_at is None


def test_submit_chunked_splits_a_batch_across_jobs(make_app):
    app = make_app()
    with app.app_context():
        jobs = submit_chunked("ops_items", list(range(1, 26)), chunk_size=10, params={"scale": 2})
        assert [len(j.params["image_ids"]) for j in jobs] == [10, 10, 5]
        assert all(j.status == "succeeded" for j in jobs)
        assert sum(j.result["sum"] for j in jobs) == 2 * sum(range(1, 26))


def test_local_executor_runs_jobs_in_the_background(make_app):
    app = make_app(JOBS_EAGER=False)
    with app.app_context():
        job_id = submit_job("ops_sleep", {"seconds": 0.05, "steps": 2}).id
    wait_for(lambda: _job(app, job_id).status == "succeeded", 10, what="local executor")
    assert app.extensions.get("inklabel_reaper") is not None


def _app_with_job_route(make_app, monkeypatch, **overrides):
    from flask import Blueprint

    from backend.web.api.endpoint import endpoint
    from backend.web.policy import ROUTES, Rule

    app = make_app(**overrides)
    bp = Blueprint("ops_test", __name__, url_prefix="/api/v1")
    monkeypatch.setitem(ROUTES, "ops_test.start", Rule("annotator", "none"))  # a route's role is its rule

    @bp.post("/ops-test/jobs")
    @endpoint("test-only: start a job", status=202)
    def start():
        from flask import g

        return {"job_id": submit_job("ops_sleep", {"seconds": 0.01, "steps": 1}, user_id=g.user.id).id}

    app.register_blueprint(bp)
    return app


def test_broker_down_answers_503_and_annotation_side_keeps_working(make_app, monkeypatch):
    from ..support.app import ApiClient, make_user

    app = _app_with_job_route(make_app, monkeypatch, JOBS_EAGER=False, BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    user, token = make_user(app, "ann", "annotator")
    client = ApiClient(app, user, token)
    started = time.monotonic()
    resp = client.post("/api/v1/ops-test/jobs")
    assert time.monotonic() - started < 10
    assert resp.status_code == 503
    error = resp.get_json()["error"]
    assert error["code"] == "broker_unavailable" and error["details"]["retryable"] is True
    with app.app_context():
        jobs = db.session.scalars(db.select(Job)).all()
        assert len(jobs) == 1 and jobs[0].status == "failed" and "broker was unreachable" in jobs[0].error
    assert client.get("/api/v1/auth/me").status_code == 200
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["checks"]["database"]["ok"] is True and body["checks"]["broker"]["ok"] is False


def test_cli_jobs_list_cancel_reap_ready_and_worker_without_broker(make_app):
    app = make_app()
    runner = app.test_cli_runner()
    old = utcnow() - timedelta(hours=1)
    stale = _insert(app, kind="ops_sleep", params={"seconds": 0.01, "steps": 1}, attempts=1, status="running",
                    worker="gone:7/aaa", heartbeat_at=old, started_at=old)
    queued = _insert(app, kind="ops_sleep", params={})

    listed = runner.invoke(args=["jobs-list", "--status", "running"])
    assert listed.exit_code == 0 and stale in listed.output and queued not in listed.output

    assert runner.invoke(args=["jobs-cancel", queued]).output.strip().endswith("cancelled")
    assert _job(app, queued).status == "cancelled"
    again = runner.invoke(args=["jobs-cancel", queued])
    assert again.exit_code != 0 and "already ended" in again.output

    reaped = runner.invoke(args=["jobs-reap", "--stale-seconds", "60"])
    assert reaped.exit_code == 0 and f"retried: {stale}" in reaped.output
    assert _job(app, stale).status == "succeeded"

    ready = runner.invoke(args=["ready"])
    assert ready.exit_code == 0 and '"status": "ready"' in ready.output

    worker = runner.invoke(args=["worker"])
    assert worker.exit_code != 0 and "INKLABEL_BROKER_URL is not set" in worker.output
