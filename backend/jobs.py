"""Background jobs: a registry of job kinds, a Job row per run with progress, and an executor.

The local executor (threads in the web process) is the embedded default; with INKLABEL_BROKER_URL set the same
job functions run on Celery workers. A job function receives a JobContext and its params and returns a JSON-able
result dict:

    @register_job("export", queue="cpu")
    def run_export(ctx: JobContext, export_id: str) -> dict:
        for i, item in enumerate(items):
            ctx.progress(i, len(items), "writing masks")   # raises JobCancelled when a cancel was asked
        return {"export_id": export_id}
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import import_module
from typing import Callable

from .extensions import db
from .models import Job, utcnow

log = logging.getLogger(__name__)

TASK_MODULES = ("backend.tasks.exports", "backend.tasks.training", "backend.tasks.prefill", "backend.tasks.scores")


@dataclass
class JobKind:
    kind: str
    func: Callable
    queue: str = "cpu"


JOB_KINDS: dict[str, JobKind] = {}


def register_job(kind: str, queue: str = "cpu") -> Callable:
    def decorate(func: Callable) -> Callable:
        JOB_KINDS[kind] = JobKind(kind, func, queue)
        return func

    return decorate


def load_job_kinds() -> None:
    for name in TASK_MODULES:
        try:
            import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise


class JobCancelled(Exception):
    pass


class JobContext:
    """What a running job sees: its id and params, progress reporting and cancellation."""

    def __init__(self, job_id: str, app):
        self.job_id = job_id
        self.app = app
        self._last_write = 0.0

    def progress(self, done: int, total: int | None = None, message: str = "", force: bool = False) -> None:
        import time

        now = time.monotonic()
        if not force and now - self._last_write < 0.5 and (total is None or done < total):
            return
        self._last_write = now
        job = db.session.get(Job, self.job_id)
        db.session.refresh(job)
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


def dispatch(app, job: Job) -> None:
    if app.config.get("JOBS_EAGER"):
        run_job(app, job.id)
    elif app.config.get("BROKER_URL"):
        from .celery_app import enqueue

        enqueue(app, job)
    else:
        executor(app).submit(run_job, app, job.id)


_executor_lock = threading.Lock()


def executor(app) -> ThreadPoolExecutor:
    with _executor_lock:
        pool = app.extensions.get("inklabel_executor")
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=app.config["JOB_WORKERS"], thread_name_prefix="inklabel-job")
            app.extensions["inklabel_executor"] = pool
        return pool


def run_job(app, job_id: str) -> None:
    """Run one job to its end, recording status, result or error. Safe to call in any thread or worker."""
    load_job_kinds()
    with app.app_context():
        job = db.session.get(Job, job_id)
        if job is None or job.status not in ("queued", "running"):
            return
        if job.cancel_requested:
            job.status, job.finished_at = "cancelled", utcnow()
            db.session.commit()
            return
        job.status, job.started_at, job.heartbeat_at = "running", utcnow(), utcnow()
        job.worker = f"{socket.gethostname()}:{os.getpid()}"
        db.session.commit()
        kind, params = JOB_KINDS[job.kind], dict(job.params or {})
        ctx = JobContext(job_id, app)
        try:
            result = kind.func(ctx, **params)
        except JobCancelled:
            db.session.rollback()
            _finish(job_id, "cancelled", error="cancelled by request")
        except Exception as err:  # the job failed; the row says why
            db.session.rollback()
            log.exception("job %s (%s) failed", job_id, job.kind)
            _finish(job_id, "failed", error=f"{type(err).__name__}: {err}", trace=traceback.format_exc())
        else:
            _finish(job_id, "succeeded", result=result or {})
        finally:
            db.session.remove()


def _finish(job_id: str, status: str, result: dict | None = None, error: str | None = None, trace: str = "") -> None:
    job = db.session.get(Job, job_id)
    job.status, job.finished_at = status, utcnow()
    job.result, job.error = result, error
    if status == "succeeded" and job.total is not None:
        job.progress = job.total
    db.session.commit()
    if trace:
        log.debug(trace)


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
