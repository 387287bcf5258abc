"""Background jobs: submitting them (a Job row per run with progress), handing them to an executor, and the reaper.
Job kinds register and run through backend/jobs/runner.py.

The local executor (threads in the web process) is the embedded default; with INKLABEL_BROKER_URL set the same
job functions run on Celery workers (backend/jobs/celery_app.py). A job starts only by an atomic claim (queued →
running), beats a heartbeat while it runs, and a reaper retries or fails the jobs of workers that died. A job function receives a JobContext and its params and returns a JSON-able
result dict:

    @register_job("export", queue="cpu")
    def run_export(ctx: JobContext, export_id: str) -> dict:
        for i, item in enumerate(items):
            ctx.progress(i, len(items), "writing masks")   # raises JobCancelled when a cancel was asked
        return {"export_id": export_id}

Keep transactions short inside a job (commit as you go; progress() commits): on SQLite an open transaction holds
the database's write lock.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select, update

from backend.db.extensions import db
from backend.db.models import Job, utcnow
from backend.jobs.runner import JOB_KINDS, job_finished, load_job_kinds, run_job, setting

log = logging.getLogger(__name__)


def submit_job(kind: str, params: dict, user_id: int | None = None, app=None) -> Job:
    from flask import current_app

    load_job_kinds()
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    app = app or current_app._get_current_object()
    job = Job(kind=kind, params=params, created_by=user_id, status="queued")
    db.session.add(job)
    db.session.commit()
    dispatch(app, job)
    return job


def ensure_broker(app=None) -> None:
    """Raise BrokerUnavailable (503 `broker_unavailable`) when jobs go to a broker (INKLABEL_BROKER_URL) that does not answer.

    Endpoints that write rows which only make sense with a job (an Export row, say) call this first; `submit_job`
    checks on its own when it enqueues. Without a broker (local executor) this does nothing.
    """
    from flask import current_app

    app = app or current_app._get_current_object()
    if app.config.get("BROKER_URL") and not app.config.get("JOBS_EAGER"):
        from backend.jobs.celery_app import check_broker

        check_broker(app)


def dispatch(app, job: Job, fail_on_broker_error: bool = True) -> None:
    """Hand a queued job to the executor: inline (JOBS_EAGER), Celery (BROKER_URL) or the local thread pool.

    When the broker is unreachable this raises BrokerUnavailable (503 `broker_unavailable`); the job is
    marked failed ("not started") unless `fail_on_broker_error` is false, as for the reaper's retries, which stay
    queued and are sent again on a later pass.
    """
    job_id = job.id
    # End the caller's transaction first: on SQLite every transaction holds the write lock (BEGIN IMMEDIATE), and
    # the job runs in another session (inline with JOBS_EAGER, or in a thread that would wait for this one).
    db.session.commit()
    if app.config.get("JOBS_EAGER"):
        run_job(app, job_id)
        db.session.expire(job)
    elif app.config.get("BROKER_URL"):
        from backend.jobs.celery_app import BrokerUnavailable, enqueue

        try:
            enqueue(app, job)
        except BrokerUnavailable:
            if fail_on_broker_error:
                db.session.rollback()
                db.session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == "queued")
                    .values(status="failed", finished_at=utcnow(),
                            error="not started: the job broker was unreachable; submit the job again")
                    .execution_options(synchronize_session=False)
                )
                db.session.commit()
            raise
    else:
        executor(app).submit(run_job, app, job_id)
        if not app.extensions.get("inklabel_reaper"):
            app.extensions["inklabel_reaper"] = start_reaper(app)


_executor_lock = threading.Lock()


def executor(app) -> ThreadPoolExecutor:
    with _executor_lock:
        pool = app.extensions.get("inklabel_executor")
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=app.config["JOB_WORKERS"], thread_name_prefix="inklabel-job")
            app.extensions["inklabel_executor"] = pool
        return pool


def in_command_without_broker(app=None) -> bool:
    """True in a CLI command (not a request) whose jobs have no broker: the local executor's threads would die with
    the process when the command returns, so follow-up jobs there are run with `run_job_inline` instead."""
    import click
    from flask import current_app, has_request_context

    app = app or current_app
    return (click.get_current_context(silent=True) is not None and not has_request_context()
            and not app.config.get("BROKER_URL"))


def run_job_inline(kind: str, params: dict, app=None) -> str:
    """Create a Job row and run it here and now, to its end (the caller's transaction is committed first: on SQLite
    it would block the job's writes). Returns the job's id; its row holds the outcome."""
    from flask import current_app, has_app_context

    app = app or current_app._get_current_object()
    with contextlib.nullcontext() if has_app_context() else app.app_context():
        job = Job(kind=kind, params=params, status="queued")
        db.session.add(job)
        db.session.flush()
        job_id = job.id  # read before the commit: after it, reading would open a transaction (SQLite: a lock)
        db.session.commit()
    run_job(app, job_id)
    return job_id


def reap_stale_jobs(app, stale_seconds: float | None = None, requeue_queued_after: float | None = None) -> dict:
    """Find jobs left `running` by a worker that died (no heartbeat for `stale_seconds`, default
    JOB_STALE_SECONDS = 120) and retry them (queued again and dispatched) while their kind allows more attempts,
    else mark them failed; a stale job whose cancel was asked is marked cancelled.

    With a broker, `requeue_queued_after` seconds also sends again the jobs still `queued` after that long since
    they were last sent (their message may have been lost with a Redis restart); duplicates are harmless because
    a job starts only by an atomic claim. Returns the job ids per outcome.
    """
    load_job_kinds()
    stale_seconds = stale_seconds if stale_seconds is not None else setting(app, "JOB_STALE_SECONDS", 120.0)
    out: dict[str, list[str]] = {"retried": [], "failed": [], "cancelled": [], "requeued": []}
    with app.app_context():
        cutoff = utcnow() - timedelta(seconds=stale_seconds)
        last_sign = func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at)
        stale = db.session.execute(
            select(Job.id, Job.kind, Job.worker, Job.attempts, Job.cancel_requested, Job.heartbeat_at)
            .where(Job.status == "running", last_sign < cutoff)
        ).all()
        for row in stale:
            kind, now = JOB_KINDS.get(row.kind), utcnow()
            seen = row.heartbeat_at.isoformat() if row.heartbeat_at else "never"
            attempts = row.attempts or 0
            if row.cancel_requested:
                outcome, values = "cancelled", {"status": "cancelled", "finished_at": now, "error": "cancelled by request"}
            elif kind is not None and attempts < kind.max_attempts:
                outcome, values = "retried", {
                    "status": "queued", "worker": None, "heartbeat_at": now,
                    "message": f"worker {row.worker} stopped (last heartbeat {seen}); retry {attempts + 1} of {kind.max_attempts}",
                }
            else:
                outcome, values = "failed", {
                    "status": "failed", "finished_at": now,
                    "error": f"worker {row.worker} stopped (last heartbeat {seen}) after {attempts} attempt(s)",
                }
            owner = Job.worker.is_(None) if row.worker is None else Job.worker == row.worker
            changed = db.session.execute(
                update(Job).where(Job.id == row.id, Job.status == "running", owner).values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
            db.session.commit()
            if changed:
                out[outcome].append(row.id)
                log.warning("reaped job %s (%s) of worker %s: %s", row.id, row.kind, row.worker, outcome)
                if outcome == "failed":
                    job_finished(row.kind, "failed", None)
        if requeue_queued_after is not None and app.config.get("BROKER_URL"):
            qcut = utcnow() - timedelta(seconds=requeue_queued_after)
            for job_id in db.session.scalars(
                select(Job.id).where(Job.status == "queued", func.coalesce(Job.heartbeat_at, Job.created_at) < qcut)
            ).all():
                db.session.execute(update(Job).where(Job.id == job_id, Job.status == "queued").values(heartbeat_at=utcnow())
                                   .execution_options(synchronize_session=False))
                db.session.commit()
                out["requeued"].append(job_id)
        for job_id in out["retried"] + out["requeued"]:
            job = db.session.get(Job, job_id)
            try:
                dispatch(app, job, fail_on_broker_error=False)
            except Exception as err:  # broker away: the job stays queued and is sent again on a later pass
                log.warning("could not dispatch job %s again: %s", job_id, err)
    return out


def start_reaper(app, interval: float | None = None, requeue_queued_after: float | None = None) -> threading.Event:
    """Run `reap_stale_jobs` every `interval` seconds (JOB_REAP_INTERVAL, default 60) in a daemon thread.

    The local executor starts one with its first job, Celery workers (`manage.py worker`) start one each; reaping
    is a conditional UPDATE, so several reapers never retry one job twice. Set the returned event to stop it.
    """
    interval = interval if interval is not None else setting(app, "JOB_REAP_INTERVAL", 60.0)
    stop = threading.Event()

    def loop():
        while not stop.wait(interval):
            try:
                reap_stale_jobs(app, requeue_queued_after=requeue_queued_after)
            except Exception as err:  # database away: try again next round
                log.warning("job reaper pass failed: %s", err)

    threading.Thread(target=loop, daemon=True, name="inklabel-job-reaper").start()
    return stop


def submit_chunked(kind: str, items: list, chunk_size: int, params: dict | None = None, item_key: str = "image_ids",
                   user_id: int | None = None, app=None) -> list[Job]:
    """Split a large batch (a pre-fill of 100k images, say) into jobs of `chunk_size` items so that many workers
    share it: each job gets `params` plus `{item_key: chunk}`. All rows are written in one transaction, then
    dispatched; returns the jobs in order (their ids are what a caller keeps to show overall progress)."""
    from flask import current_app

    load_job_kinds()
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    app = app or current_app._get_current_object()
    ensure_broker(app)
    items = list(items)
    jobs = [
        Job(kind=kind, params={**(params or {}), item_key: items[i:i + chunk_size]}, created_by=user_id, status="queued")
        for i in range(0, len(items), chunk_size)
    ]
    db.session.add_all(jobs)
    db.session.commit()
    ids = [job.id for job in jobs]
    for n, job_id in enumerate(ids):
        try:
            dispatch(app, db.session.get(Job, job_id))
        except Exception:  # the broker went away mid-batch: the chunks not sent are marked failed too
            db.session.rollback()
            db.session.execute(
                update(Job).where(Job.id.in_(ids[n + 1:]), Job.status == "queued")
                .values(status="failed", finished_at=utcnow(), error="not started: the job broker was unreachable")
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            raise
    return [db.session.get(Job, job_id) for job_id in ids]


def job_dict(job: Job) -> dict:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "total": job.total,
        "message": job.message,
        "error": job.error,
        "result": job.result,
        "params": job.params,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
