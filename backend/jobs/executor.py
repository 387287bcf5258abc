"""Background jobs: a registry of job kinds, a Job row per run with progress, and an executor.

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
import os
import secrets
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta, timezone
from importlib import import_module
from typing import Callable

from sqlalchemy import func, select, update

from backend.db.extensions import db
from backend.db.models import Job, utcnow

log = logging.getLogger(__name__)

TASK_MODULES = ("backend.jobs.exports", "backend.jobs.training", "backend.jobs.prefill", "backend.jobs.scores")
# Extra modules that register job kinds (comma-separated), e.g. plugins or the test-only kinds of tests/ops.
EXTRA_TASK_MODULES_ENV = "INKLABEL_TASK_MODULES"


@dataclass
class JobKind:
    kind: str
    func: Callable
    queue: str = "cpu"
    max_attempts: int = 2  # starts in all when workers die under the job; 1: never retried, marked failed


JOB_KINDS: dict[str, JobKind] = {}


def register_job(kind: str, queue: str = "cpu", max_attempts: int = 2) -> Callable:
    """Register a job kind. `queue` is the Celery queue ("gpu" or "cpu"); a job whose worker died (no heartbeat)
    is started again while it has had fewer than `max_attempts` starts, so a retried job must be idempotent
    (or register with max_attempts=1 to have it marked failed instead)."""

    def decorate(func: Callable) -> Callable:
        JOB_KINDS[kind] = JobKind(kind, func, queue, max(1, int(max_attempts)))
        return func

    return decorate


def load_job_kinds() -> None:
    extra = tuple(m.strip() for m in os.environ.get(EXTRA_TASK_MODULES_ENV, "").split(",") if m.strip())
    for name in TASK_MODULES + extra:
        try:
            import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise


class JobCancelled(Exception):
    pass


class JobLost(JobCancelled):
    """The job was taken from this worker (reaped as stale, maybe started elsewhere): stop without writing."""


def setting(app, name: str, default):
    """A job setting from app.config, else the environment variable INKLABEL_<name>, else the default."""
    value = app.config.get(name)
    if value in (None, ""):
        value = os.environ.get("INKLABEL_" + name)
    return type(default)(value) if value not in (None, "") else default


class JobContext:
    """What a running job sees: its id and params, progress reporting and cancellation.

    A heartbeat thread keeps the job row's heartbeat_at fresh while the job runs and notices a cancel request;
    long loops that report no progress can call `ctx.check_cancelled()` (or read `ctx.cancelled`) to stop early.
    """

    def __init__(self, job_id: str, app, worker: str | None = None):
        self.job_id = job_id
        self.app = app
        self.worker = worker
        self._last_write = 0.0
        self.cancel_event = threading.Event()
        self.lost_event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set() or self.lost_event.is_set()

    def check_cancelled(self) -> None:
        if self.lost_event.is_set():
            raise JobLost()
        if self.cancel_event.is_set():
            raise JobCancelled()

    def progress(self, done: int, total: int | None = None, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        self.check_cancelled()
        if not force and now - self._last_write < 0.5 and (total is None or done < total):
            return
        self._last_write = now
        job = db.session.get(Job, self.job_id)
        db.session.refresh(job)
        if self.worker is not None and (job.status != "running" or job.worker != self.worker):
            db.session.rollback()
            self.lost_event.set()
            raise JobLost()
        job.progress = int(done)
        if total is not None:
            job.total = int(total)
        if message:
            job.message = message[:512]
        job.heartbeat_at = utcnow()
        cancel = job.cancel_requested
        db.session.commit()
        if cancel:
            raise JobCancelled()


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


def run_job(app, job_id: str) -> None:
    """Run one job to its end, recording status, result or error. Safe to call in any thread or worker, and safe
    to call twice: a job starts only by an atomic claim (queued → running), so a duplicate message is a no-op."""
    load_job_kinds()
    with app.app_context():
        worker = f"{socket.gethostname()}:{os.getpid()}/{secrets.token_hex(3)}"
        if not _claim(job_id, worker):
            return
        job = db.session.get(Job, job_id)
        kind_name, params = job.kind, dict(job.params or {})
        db.session.commit()  # hold no transaction while the job runs (on SQLite it would block every writer)
        kind = JOB_KINDS.get(kind_name)
        if kind is None:
            _finish(job_id, worker, kind_name, "failed", error=f"unknown job kind {kind_name!r} on worker {worker}")
            return
        ctx = JobContext(job_id, app, worker)
        heartbeat = _Heartbeat(app, ctx, setting(app, "JOB_HEARTBEAT_SECONDS", 10.0))
        heartbeat.start()
        try:
            result = kind.func(ctx, **params)
        except JobLost:
            db.session.rollback()
            log.warning("job %s (%s) was taken from %s (reaped as stale); its outcome is dropped", job_id, kind_name, worker)
        except JobCancelled:
            db.session.rollback()
            _finish(job_id, worker, kind_name, "cancelled", error="cancelled by request")
        except Exception as err:  # the job failed; the row says why
            db.session.rollback()
            log.exception("job %s (%s) failed", job_id, kind_name)
            _finish(job_id, worker, kind_name, "failed", error=f"{type(err).__name__}: {err}", trace=traceback.format_exc())
        else:
            _finish(job_id, worker, kind_name, "succeeded", result=result or {})
        finally:
            heartbeat.stop()
            db.session.remove()


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


def _claim(job_id: str, worker: str) -> bool:
    now = utcnow()
    claimed = db.session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued", Job.cancel_requested.is_not(True))
        .values(status="running", started_at=now, heartbeat_at=now, worker=worker, finished_at=None, error=None,
                attempts=func.coalesce(Job.attempts, 0) + 1)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not claimed:  # a queued job whose cancel was asked before any worker took it ends here
        db.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued", Job.cancel_requested.is_(True))
            .values(status="cancelled", finished_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return claimed


def _finish(job_id: str, worker: str, kind: str, status: str, result: dict | None = None, error: str | None = None,
            trace: str = "") -> None:
    """Record the outcome, only if this worker still owns the job (the reaper may have given it to another)."""
    from backend.web.observability import record_job

    job = db.session.get(Job, job_id)
    if job is None or job.status != "running" or job.worker != worker:
        db.session.rollback()
        log.warning("job %s is no longer held by %s; outcome %s dropped", job_id, worker, status)
        return
    started = job.started_at
    values = {"status": status, "finished_at": utcnow(), "result": result, "error": error}
    if status == "succeeded" and job.total is not None:
        values["progress"] = job.total
    db.session.execute(
        update(Job).where(Job.id == job_id, Job.status == "running", Job.worker == worker).values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if started is not None:
        started = started if started.tzinfo else started.replace(tzinfo=timezone.utc)
        record_job(kind, status, (values["finished_at"] - started).total_seconds())
    if trace:
        log.debug(trace)


class _Heartbeat(threading.Thread):
    """Keeps heartbeat_at fresh while a job runs (how the reaper tells live jobs from dead workers' jobs) and
    passes a cancel request, or the loss of the job to the reaper, to the JobContext."""

    def __init__(self, app, ctx: JobContext, interval: float):
        super().__init__(daemon=True, name=f"inklabel-heartbeat-{ctx.job_id[:8]}")
        self.app, self.ctx, self.interval = app, ctx, max(0.05, float(interval))
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                with self.app.app_context():
                    beat = db.session.execute(
                        update(Job)
                        .where(Job.id == self.ctx.job_id, Job.status == "running", Job.worker == self.ctx.worker)
                        .values(heartbeat_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
                    cancel = db.session.scalar(select(Job.cancel_requested).where(Job.id == self.ctx.job_id))
                    db.session.commit()
            except Exception as err:  # the database is away for a moment: beat again next time
                log.warning("heartbeat of job %s failed: %s", self.ctx.job_id, err)
                continue
            if beat.rowcount == 0:
                self.ctx.lost_event.set()
                return
            if cancel:
                self.ctx.cancel_event.set()


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
                    from backend.web.observability import record_job

                    record_job(row.kind, "failed", None)
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
