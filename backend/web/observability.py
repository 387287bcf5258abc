"""Operations view of a running inklabel: request ids and structured logs, Prometheus metrics, /readyz.

`init_observability(app)` (called by create_app) adds:
- a request id per request (the caller's `X-Request-ID` when it is sane, else a new one), echoed in the response
  and present in every log record as `request_id`; logs are JSON lines with INKLABEL_LOG_FORMAT=json (the
  default under gunicorn), else text; one access-log line per request on the `inklabel.access` logger;
- `GET /metrics` (Prometheus text format): request latency histograms per route, requests by status, annotation
  saves by result, job durations and outcomes, and, read at scrape time, jobs queued/running per kind, broker queue
  depth, images per status and the models loaded in this process. Under gunicorn the per-process metrics of all
  workers are merged (PROMETHEUS_MULTIPROC_DIR, set by backend/serve/gunicorn_conf.py). Set INKLABEL_METRICS_TOKEN to
  require `Authorization: Bearer <token>` on it;
- `GET /readyz`: 200 when the database (and the broker, when configured) answer, else 503; says which models are
  current and whether this process has loaded them (`/healthz` only says the process is up);
- database connection failures (server restarting, pool exhausted, SQLite busy past its timeout) answer 503
  `database_unavailable` with Retry-After instead of a 500: the request did nothing and can be sent again.

The ML code reports loaded weights with `mark_model_loaded(kind, version_id, device)`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from functools import lru_cache
from pathlib import Path

from flask import Response, current_app, g, has_request_context, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from backend.jobs.runner import on_job_finished

log = logging.getLogger(__name__)
access_log = logging.getLogger("inklabel.access")

disable_created_metrics()  # no *_created series: they double the output and nobody graphs them

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
SAVE_RULE = "/api/v1/images/<int:image_id>/annotation"
QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}

REQUEST_LATENCY = Histogram(
    "inklabel_http_request_duration_seconds",
    "Time to answer an HTTP request, per route (the URL rule, not the raw path)",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
REQUESTS = Counter("inklabel_http_requests", "HTTP requests answered, per route and status", ["method", "route", "status"])
SAVES = Counter(
    "inklabel_annotation_saves",
    "Annotation saves (PUT /api/v1/images/<id>/annotation) by result: saved, conflict (stale base_version), "
    "invalid (4xx), error (5xx)",
    ["result"],
)
JOB_DURATION = Histogram(
    "inklabel_job_duration_seconds",
    "Run time of background jobs that ended in this process, per kind and outcome",
    ["kind", "status"],
    buckets=(0.1, 1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600),
)
JOBS_FINISHED = Counter("inklabel_jobs_finished", "Background jobs ended in this process, per kind and outcome", ["kind", "status"])
JOB_FAILURES = Counter("inklabel_job_failures", "Background jobs that failed (errors and dead workers), per kind", ["kind"])

_models_loaded: dict[str, dict] = {}
_models_lock = threading.Lock()
_logging_installed = False


# --- metrics recorded by other modules ---------------------------------------------------------------------------

def record_job(kind: str, status: str, seconds: float | None) -> None:
    """Called when a job ends (seconds None: ended by the reaper, run time unknown): a backend.jobs.runner listener."""
    JOBS_FINISHED.labels(kind, status).inc()
    if status == "failed":
        JOB_FAILURES.labels(kind).inc()
    if seconds is not None:
        JOB_DURATION.labels(kind, status).observe(max(0.0, seconds))


def mark_model_loaded(kind: str, version_id: int | None, device: str = "cpu") -> None:
    """The ML code calls this when it has loaded the weights of a model version in this process."""
    with _models_lock:
        _models_loaded[kind] = {"version_id": version_id, "device": device, "loaded_at": time.time()}


def loaded_models() -> dict[str, dict]:
    with _models_lock:
        return {kind: dict(state) for kind, state in _models_loaded.items()}


# --- logging ------------------------------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and the structured extras."""

    EXTRAS = ("method", "path", "route", "status", "duration_ms", "user_id", "remote_addr", "job_id", "kind")

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "pid": record.process,
        }
        for key in self.EXTRAS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def _install_logging() -> None:
    """Give every log record a `request_id` (the current request's, else "-") and format the console handlers."""
    global _logging_installed
    if _logging_installed:
        return
    _logging_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return record

    logging.setLogRecordFactory(factory)
    as_json = os.environ.get("INKLABEL_LOG_FORMAT", "text").lower() == "json"
    formatter = JsonFormatter() if as_json else logging.Formatter(TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:  # the console handler, not test capture handlers
            handler.setFormatter(formatter)


# --- per-request hooks --------------------------------------------------------------------------------------------

def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"  # unknown paths must not create new series


def _before_request() -> None:
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = sent if _SANE_REQUEST_ID.match(sent) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _user_id() -> int | None:
    caller = g.get("caller")
    return caller.id if caller is not None else None


@lru_cache(maxsize=4096)  # routes x methods x statuses: bounded; labels() itself validates and locks on every call
def _request_metrics(method: str, route: str, status: int):
    return REQUEST_LATENCY.labels(method, route), REQUESTS.labels(method, route, str(status))


def _after_request(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:
        return response
    elapsed = time.perf_counter() - started
    route, method, status = _route(), request.method, response.status_code
    latency, count = _request_metrics(method, route, status)
    latency.observe(elapsed)
    count.inc()
    if route == SAVE_RULE and method == "PUT":
        SAVES.labels("saved" if status < 300 else "conflict" if status == 409 else "invalid" if status < 500 else "error").inc()
    response.headers[REQUEST_ID_HEADER] = g.request_id
    level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
    if not access_log.isEnabledFor(level):
        return response
    access_log.log(
        level, "%s %s %s %.1fms", method, request.path, status, elapsed * 1000,
        extra={"method": method, "path": request.path, "route": route, "status": status,
               "duration_ms": round(elapsed * 1000, 2), "user_id": _user_id(),
               "remote_addr": request.remote_addr},
    )
    return response


def _database_unavailable(err: Exception):
    """A lost or refused database connection: nothing was done, the client may retry (503 + Retry-After)."""
    from backend.web.errors import error_response
    from backend.db.extensions import db

    try:
        db.session.rollback()
    except Exception:  # the connection is gone: the pool replaces it on the next checkout
        pass
    log.warning("database unavailable: %s", str(err).splitlines()[0] if str(err) else type(err).__name__)
    response = error_response(503, "database_unavailable",
                              "The database is unreachable or busy right now; nothing was changed. Retry shortly.",
                              {"retryable": True})
    response.headers["Retry-After"] = "2"
    return response


_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


def _is_connection_error(err: sa_exc.DBAPIError) -> bool:
    """Connection lost/refused, server shutting down, lock or statement timeouts, serialization failures: the
    transaction did not happen and a retry can succeed. (SQLite's OperationalError also covers real bugs such as
    a missing table; only its lock and file errors count.)"""
    if err.connection_invalidated or isinstance(err, sa_exc.InterfaceError):
        return True
    if not isinstance(err, sa_exc.OperationalError):
        return False
    if type(err.orig).__module__.startswith("sqlite3"):
        message = str(err.orig).lower()
        return any(word in message for word in _SQLITE_TRANSIENT)
    return True


# --- /metrics ------------------------------------------------------------------------------------------------------

class StateCollector:
    """Gauges read at scrape time from the database and the broker (the same numbers from any web process)."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        from backend.db.extensions import db
        from backend.db.models import Image, Job

        up = GaugeMetricFamily("inklabel_database_up", "1 when the database answered this scrape")
        jobs = GaugeMetricFamily("inklabel_jobs", "Jobs per status and kind in the database (queue depth: queued)",
                                 labels=["status", "kind"])
        images = GaugeMetricFamily("inklabel_images", "Images per workflow status", labels=["status"])
        try:
            with self.app.app_context():
                for status, kind, count in db.session.execute(
                    select(Job.status, Job.kind, func.count()).group_by(Job.status, Job.kind)
                ):
                    jobs.add_metric([status, kind], count)
                for status, count in db.session.execute(select(Image.status, func.count()).group_by(Image.status)):
                    images.add_metric([status], count)
            up.add_metric([], 1)
        except Exception as err:
            log.warning("metrics: database query failed: %s", err)
            up.add_metric([], 0)
        yield from (up, jobs, images)

        broker_url = self.app.config.get("BROKER_URL")
        if broker_url:
            from backend.jobs.celery_app import queue_lengths

            broker_up = GaugeMetricFamily("inklabel_broker_up", "1 when the job broker answered this scrape")
            depth = GaugeMetricFamily("inklabel_queue_depth", "Messages waiting in the broker, per queue", labels=["queue"])
            try:
                for queue, length in queue_lengths(broker_url).items():
                    depth.add_metric([queue], length)
                broker_up.add_metric([], 1)
            except Exception as err:
                log.warning("metrics: broker unreachable: %s", err)
                broker_up.add_metric([], 0)
            yield from (broker_up, depth)

        loaded = GaugeMetricFamily("inklabel_model_loaded", "Model version loaded in this process (0: none)", labels=["kind"])
        for kind, state in loaded_models().items():
            loaded.add_metric([kind], state.get("version_id") or 0)
        yield loaded


def _process_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_view():
    token = os.environ.get("INKLABEL_METRICS_TOKEN") or current_app.config.get("METRICS_TOKEN")
    if token:
        import hmac

        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            from backend.web.errors import error_response

            return error_response(401, "unauthorized", "Send Authorization: Bearer <INKLABEL_METRICS_TOKEN>.")
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector(current_app._get_current_object()))
    body = _process_metrics() + generate_latest(state)
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0], headers={"Cache-Control": "no-store"})


# --- /readyz -------------------------------------------------------------------------------------------------------

def check_database(app) -> dict:
    """SELECT 1 on a raw pooled connection (no ORM transaction, so SQLite takes no write lock)."""
    from backend.db.extensions import db

    started = time.perf_counter()
    try:
        with app.app_context():
            conn = db.engine.raw_connection()
            try:
                cursor = conn.cursor()
                cursor.execute("SELECT 1")
                cursor.fetchall()
                cursor.close()
            finally:
                conn.close()
            dialect = db.engine.dialect.name
    except Exception as err:
        return {"ok": False, "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]}
    return {"ok": True, "dialect": dialect, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def check_broker(app) -> dict:
    url = app.config.get("BROKER_URL")
    if not url or app.config.get("JOBS_EAGER"):
        return {"ok": True, "configured": False, "executor": "eager" if app.config.get("JOBS_EAGER") else "local"}
    from backend.jobs.celery_app import ping_broker, queue_lengths

    try:
        ping_broker(url)
        queues = queue_lengths(url)
    except Exception as err:
        return {"ok": False, "configured": True, "error": f"{type(err).__name__}: {err}"[:300]}
    return {"ok": True, "configured": True, "executor": "celery", "queues": queues}


def check_models(app) -> dict:
    """Current model versions, whether their weights file is in the workspace, whether this process loaded them."""
    from backend.db.extensions import db
    from backend.db.models import MODEL_KINDS, ModelVersion

    loaded = loaded_models()
    out: dict[str, dict] = {}
    try:
        with app.app_context():
            rows = db.session.scalars(select(ModelVersion).where(ModelVersion.is_current.is_(True))).all()
            current = {row.kind: row for row in rows}
    except Exception as err:
        return {"error": f"{type(err).__name__}"}
    models_dir = Path(app.config["WORKSPACE"]) / "models"
    for kind in MODEL_KINDS:
        row = current.get(kind)
        state = loaded.get(kind)
        out[kind] = {
            "current_version": row.id if row else None,
            "weights_present": bool(row and row.weights_path and (models_dir / row.weights_path).is_file()),
            "loaded_version": state["version_id"] if state else None,
            "device": state["device"] if state else None,
        }
    return out


def readiness(app) -> tuple[dict, bool]:
    database = check_database(app)
    broker = check_broker(app)
    models = check_models(app) if database["ok"] else {}
    ready = database["ok"] and broker["ok"]
    return {"status": "ready" if ready else "unavailable", "checks": {"database": database, "broker": broker,
                                                                       "models": models}}, ready


def readyz_view():
    body, ready = readiness(current_app._get_current_object())
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


# --- wiring --------------------------------------------------------------------------------------------------------

def init_observability(app) -> None:
    _install_logging()
    on_job_finished(record_job)
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz_view, methods=["GET"])

    @app.errorhandler(sa_exc.DBAPIError)
    def _dbapi_error(err: sa_exc.DBAPIError):
        if _is_connection_error(err):
            return _database_unavailable(err)
        log.exception("database error")
        from backend.web.errors import error_response

        return error_response(500, "internal_error", "Something went wrong on the server; it was logged.")

    @app.errorhandler(sa_exc.TimeoutError)
    def _pool_timeout(err: sa_exc.TimeoutError):  # every pooled connection busy for pool_timeout seconds
        return _database_unavailable(err)
