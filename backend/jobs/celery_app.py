"""Jobs on Celery workers: one task, `inklabel.run_job(job_id)`, runs any registered job kind by its Job row id.

The web process only sends the job id to the queue of the job's kind ("gpu" for training and pre-fill, "cpu" for
exports and score refreshes); the worker runs `backend.jobs.runner.run_job` inside its own Flask app, so status,
progress, cancellation and results live in the database exactly as with the local executor. Redis (or any
broker kombu speaks) only carries the ids: no result backend, and nothing is lost if it restarts (the reaper
sends still-queued jobs again).

    INKLABEL_BROKER_URL=redis://127.0.0.1:6379/0 python manage.py worker --queues gpu,cpu
    celery -A backend.serve.celery_worker:celery worker -Q cpu   # the same worker, started by celery's own CLI
"""
from __future__ import annotations

import logging
import threading

from celery import Celery, signals
from kombu import Connection

from backend.core.errors import Unavailable

log = logging.getLogger(__name__)

TASK_NAME = "inklabel.run_job"
QUEUES = ("gpu", "cpu")

_apps: dict[str, Celery] = {}
_apps_lock = threading.Lock()
_flask_app = None  # the worker-side Flask app (one per worker process)
_app_factory = None  # builds it when nobody set it (backend/serve/celery_worker.py passes the web app factory)


class BrokerUnavailable(Unavailable):
    """The job broker did not answer: job-submitting endpoints answer 503 `broker_unavailable` (retryable)."""

    def __init__(self, reason: str):
        super().__init__(
            "broker_unavailable",
            "Background jobs cannot be started right now: the job broker (Redis) is unreachable. "
            "Annotation keeps working; try again in a minute.",
            {"reason": reason[:300], "retryable": True},
        )


def make_celery(broker_url: str) -> Celery:
    """A Celery app for `broker_url` with the one task that runs inklabel jobs."""
    app = Celery("inklabel", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,  # the Job row is the result
        # A message is acknowledged when a worker takes it. Recovery from a worker that dies mid-job is the reaper's
        # (the Job row's heartbeat), not the broker's: late acks would redeliver hours-long jobs after a visibility
        # timeout, and acking on a connection lost during a Redis outage crashes the worker (kombu).
        task_acks_late=False,
        worker_prefetch_multiplier=1,  # jobs are long: one at a time per process, fair across workers
        worker_cancel_long_running_tasks_on_connection_loss=False,  # a Redis outage must not stop running jobs
        task_default_queue="cpu",
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={
            "socket_connect_timeout": 3,
            "socket_timeout": 10,
            "retry_on_timeout": True,
        },
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 1},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )

    @app.task(name=TASK_NAME, ignore_result=True)
    def run_job_task(job_id: str) -> None:
        from backend.jobs.runner import run_job

        run_job(worker_flask_app(), job_id)

    return app


def get_celery(broker_url: str) -> Celery:
    with _apps_lock:
        app = _apps.get(broker_url)
        if app is None:
            app = _apps[broker_url] = make_celery(broker_url)
        return app


def set_worker_flask_app(app) -> None:
    """The Flask app whose database and workspace the tasks of this process use (`manage.py worker` sets it)."""
    global _flask_app
    _flask_app = app


def set_app_factory(factory) -> None:
    """How a worker process builds its Flask app on its first task when `set_worker_flask_app` was not called."""
    global _app_factory
    _app_factory = factory


def worker_flask_app():
    global _flask_app
    if _flask_app is None:
        if _app_factory is None:
            raise RuntimeError("no Flask app for the job: start workers with `python manage.py worker` or "
                               "`celery -A backend.serve.celery_worker:celery worker`")
        _flask_app = _app_factory()
    return _flask_app


@signals.worker_process_init.connect
def _after_fork(**_kwargs) -> None:
    """A prefork child must not reuse the parent's database connections: drop the inherited pool."""
    if _flask_app is not None:
        from backend.db.extensions import db

        with _flask_app.app_context():
            db.engine.dispose(close=False)


def _queue_for(job) -> str:
    from backend.jobs.runner import JOB_KINDS, load_job_kinds

    load_job_kinds()
    kind = JOB_KINDS.get(job.kind)
    return kind.queue if kind is not None else "cpu"


def check_broker(app) -> None:
    """Raise BrokerUnavailable unless the broker at app.config["BROKER_URL"] accepts a connection now."""
    try:
        ping_broker(app.config["BROKER_URL"])
    except Exception as err:
        raise BrokerUnavailable(f"{type(err).__name__}: {err}") from None


def enqueue(app, job) -> None:
    """Send `inklabel.run_job(job.id)` to the queue of the job's kind; BrokerUnavailable if the broker is down."""
    celery = get_celery(app.config["BROKER_URL"])
    try:
        celery.send_task(TASK_NAME, args=[job.id], queue=_queue_for(job))
    except Exception as err:  # kombu/redis raise many types for "cannot reach the broker"
        log.warning("could not send job %s to the broker: %s", job.id, err)
        raise BrokerUnavailable(f"{type(err).__name__}: {err}") from None


def queue_lengths(broker_url: str, queues=QUEUES) -> dict[str, int]:
    """Messages waiting per queue (Redis brokers: the length of each queue's list). Raises when unreachable."""
    if not broker_url.startswith(("redis://", "rediss://")):
        return {}
    import redis

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return {q: int(client.llen(q)) for q in queues}
    finally:
        client.close()


def ping_broker(broker_url: str) -> None:
    """Raise if the broker does not answer within about a second (used by /readyz)."""
    if broker_url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(broker_url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return
    with Connection(broker_url, connect_timeout=1) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
