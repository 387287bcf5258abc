"""Running jobs: the registry of job kinds, the JobContext a job function sees, and `run_job`, which claims a queued
Job row, runs its kind's function with a heartbeat and records the outcome. The local executor and the Celery
workers (backend/jobs/executor.py, backend/jobs/celery_app.py) both end up here."""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import timezone
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

# Called with (kind, status, seconds or None when the reaper ended the job) whenever a job ends; the web layer's
# metrics register here (backend/web/observability.py), so running jobs needs nothing above this package.
_finished_listeners: list[Callable[[str, str, float | None], None]] = []


def on_job_finished(listener: Callable[[str, str, float | None], None]) -> None:
    if listener not in _finished_listeners:
        _finished_listeners.append(listener)


def job_finished(kind: str, status: str, seconds: float | None) -> None:
    for listener in _finished_listeners:
        listener(kind, status, seconds)


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
        job_finished(kind, status, (values["finished_at"] - started).total_seconds())
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
