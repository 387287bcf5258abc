"""CLI commands for operations: worker, jobs-list, jobs-cancel, jobs-reap, ready."""
from __future__ import annotations

import json
import os
import socket
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from backend.db.extensions import db
from backend.db.models import JOB_STATUSES, Job
from backend.commands.core import prepare_workspace


@click.command("worker")
@click.option("--queues", default="gpu,cpu", show_default=True,
              help="comma-separated queues to take jobs from: `gpu` (training, pre-fill) on machines with a GPU, "
                   "`cpu` (exports, score refreshes) anywhere")
@click.option("--concurrency", type=click.IntRange(1, 256), default=None,
              help="jobs this worker runs at once [default: 1 when it takes the gpu queue, else the number of CPUs]")
@click.option("--pool", type=click.Choice(["threads", "prefork", "solo"]), default="threads", show_default=True,
              help="threads share one process, so model weights are loaded once and its metrics are complete; "
                   "prefork isolates jobs in child processes")
@click.option("--name", "nodename", default=None, help="Celery node name [default: inklabel-<queues>-<pid>@<host>]")
@click.option("--loglevel", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="serve this worker's Prometheus metrics (job durations and failures) on this port")
@with_appcontext
def worker_command(queues, concurrency, pool, nodename, loglevel, metrics_port):
    """Run background jobs from the broker (a Celery worker).

    Needs INKLABEL_BROKER_URL (e.g. redis://127.0.0.1:6379/0) and the same DATABASE_URL and workspace as the web
    app: the worker reads a job's row, runs the job kind's code and writes progress and results back there. It
    also reaps jobs that dead workers left running (no heartbeat for INKLABEL_JOB_STALE_SECONDS, default 120):
    they are retried while their kind allows, else marked failed. Stop it with Ctrl-C or SIGTERM: running jobs
    finish first (a second signal stops at once; the reaper then retries them).

    \b
    GPU machine:  python manage.py worker --queues gpu --concurrency 1
    Any machine:  python manage.py worker --queues cpu
    """
    from backend.jobs.celery_app import QUEUES, get_celery, set_worker_flask_app
    from backend.jobs.executor import start_reaper
    from backend.jobs.runner import JOB_KINDS, load_job_kinds, setting

    prepare_workspace()
    app = current_app._get_current_object()
    broker_url = app.config.get("BROKER_URL")
    if not broker_url:
        raise click.ClickException(
            "INKLABEL_BROKER_URL is not set. Workers take jobs from a broker, e.g. "
            "INKLABEL_BROKER_URL=redis://127.0.0.1:6379/0; without one the web process runs jobs itself.")
    names = [q.strip() for q in queues.split(",") if q.strip()]
    if not names:
        raise click.BadParameter("name at least one queue", param_hint="--queues")
    unknown = sorted(set(names) - set(QUEUES))
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}; the queues are {', '.join(QUEUES)}",
                                 param_hint="--queues")
    if concurrency is None:
        concurrency = 1 if "gpu" in names else (os.cpu_count() or 1)
    load_job_kinds()
    kinds = sorted(k.kind for k in JOB_KINDS.values() if k.queue in names)
    click.echo(f"inklabel worker: queues {','.join(names)}, {pool} pool x {concurrency}; "
               f"job kinds: {', '.join(kinds) or '(none registered yet)'}", err=True)

    set_worker_flask_app(app)
    start_reaper(app, requeue_queued_after=setting(app, "JOB_REQUEUE_AFTER", 900.0))
    if metrics_port:
        from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # prefork children write per-process files: add them up
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        start_http_server(metrics_port, registry=registry)
    nodename = nodename or f"inklabel-{'-'.join(names)}-{os.getpid()}@{socket.gethostname()}"
    get_celery(broker_url).worker_main([
        "worker", f"--queues={','.join(names)}", f"--concurrency={concurrency}", f"--pool={pool}",
        f"--loglevel={loglevel}", f"--hostname={nodename}", "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ])


@click.command("jobs-list")
@click.option("--status", type=click.Choice(JOB_STATUSES), default=None, help="only jobs in this status")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@with_appcontext
def jobs_list_command(status, limit, as_json):
    """List background jobs, newest first: id, kind, status, progress, worker, last heartbeat."""
    from backend.jobs.executor import job_dict

    prepare_workspace()
    stmt = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if status:
        stmt = stmt.where(Job.status == status)
    for job in db.session.scalars(stmt):
        if as_json:
            click.echo(json.dumps({**job_dict(job), "worker": job.worker, "attempts": job.attempts,
                                   "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None}))
        else:
            total = f"/{job.total}" if job.total is not None else ""
            click.echo(f"{job.id}  {job.kind:<10} {job.status:<9} {job.progress}{total:<8} "
                       f"{job.worker or '-'}  {job.heartbeat_at.isoformat() if job.heartbeat_at else '-'}")


@click.command("jobs-cancel")
@click.argument("job_id")
@with_appcontext
def jobs_cancel_command(job_id):
    """Cancel JOB_ID: a queued job never starts; a running one stops at its next progress report or heartbeat."""
    prepare_workspace()
    job = db.session.get(Job, job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id!r}")
    if job.status not in ("queued", "running"):
        raise click.ClickException(f"job {job_id} has already ended ({job.status})")
    job.cancel_requested = True
    if job.status == "queued":
        job.status = "cancelled"
    db.session.commit()
    click.echo(f"job {job_id}: {'cancelled' if job.status == 'cancelled' else 'cancel requested'}")


@click.command("jobs-reap")
@click.option("--stale-seconds", type=click.FloatRange(min=1), default=None,
              help="a running job whose last heartbeat is older than this belongs to a dead worker "
                   "[default: INKLABEL_JOB_STALE_SECONDS or 120]")
@click.option("--requeue-queued-after", type=click.FloatRange(min=1), default=None,
              help="with a broker, also send again jobs still queued this many seconds after they were last sent "
                   "(their message was lost, e.g. Redis restarted without persistence)")
@click.option("--watch", type=click.FloatRange(min=1), default=None, help="repeat every this many seconds until interrupted")
@with_appcontext
def jobs_reap_command(stale_seconds, requeue_queued_after, watch):
    """Retry or fail the jobs that dead workers left running; workers and the web process also do this on their own.

    A stale job is queued again (and sent to a worker) while its kind allows another attempt, else marked failed;
    one whose cancel was asked is marked cancelled. Safe to run anywhere at any time.
    """
    from backend.jobs.executor import reap_stale_jobs

    prepare_workspace()
    app = current_app._get_current_object()
    while True:
        out = reap_stale_jobs(app, stale_seconds=stale_seconds, requeue_queued_after=requeue_queued_after)
        click.echo(" ".join(f"{key}={len(ids)}" for key, ids in out.items()))
        for key, ids in out.items():
            for job_id in ids:
                click.echo(f"  {key}: {job_id}")
        if watch is None:
            return
        time.sleep(watch)


@click.command("ready")
@with_appcontext
def ready_command():
    """Print readiness (database, broker, models) as JSON; exit status 1 when not ready (container health checks)."""
    from backend.web.observability import readiness

    body, ready = readiness(current_app._get_current_object())
    click.echo(json.dumps(body, indent=2))
    raise SystemExit(0 if ready else 1)


COMMANDS = [worker_command, jobs_list_command, jobs_cancel_command, jobs_reap_command, ready_command]
