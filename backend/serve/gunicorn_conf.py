"""gunicorn settings for `manage.py serve --prod` and the Docker image (override with GUNICORN_* variables).

    gunicorn -c python:backend.serve.gunicorn_conf -b 0.0.0.0:8000 backend.serve.wsgi:app

- Workers x threads: gunicorn's own gthread worker (GUNICORN_WORKER_CLASS picks another). Default: 2 x CPU cores
  + 2 processes, at most 8 (6 on 2 cores), x GUNICORN_THREADS threads each (default 4). The API's requests
  are short and CPU-bound (an annotation save is ~2-3 ms of Python), so on a quiet server one thread a process
  served the most saves (benchmarks/results/api.md: 6 x 1 264 against 6 x 2 212 saves/s in 2026-11). But with one
  thread, every connection a process keeps alive waits while it serves a long request (an 80-MP upload held honest
  saves for seconds, up to 51 s, in benchmarks/bench_attack.py); with threads, Pillow, GEOS and numpy release the
  GIL and the other requests of the process go on; with 2 threads a process still stalled once for 26 s (both
  busy), with 4 no short request waited over 1.7 s. Without an attack, 4 threads cost 4 % of the saves on a
  quiet machine and up to a third at load 12 (benchmarks/README.md, issue 17: both benchmarks, interleaved).
  `sync` (no keep-alive: a connection per request) cost more CPU per request than gthread (/healthz, 8 keep-alive
  clients: 1.5-2.0 against 1.3-1.4 ms). Keep a few processes more than cores so a request waiting on the database
  or the disk leaves the CPU to another. Memory: with preload the processes share the app's code; model weights
  are loaded per process (in the background at start, see warmup).
- preload (GUNICORN_PRELOAD=1, the default): the app is imported once in the master and forked, which saves
  memory and start time; `post_fork` then drops the database connections the child inherited so no two processes
  ever share one, and the Prometheus per-process files live in PROMETHEUS_MULTIPROC_DIR so /metrics adds up all
  workers.
- Reload: `kill -HUP <master>` starts new workers and stops the old ones gracefully (each finishes its requests
  within graceful_timeout). With preload the code is not re-imported by HUP: to deploy new code restart the
  service (or `kill -USR2` the master, then `-TERM` the old one once the new one answers /readyz).
- Limits: request line, header count and header size here; request bodies are limited by the app
  (INKLABEL_MAX_REQUEST_BYTES → 413 before parsing) and should also be limited by the proxy in front.
- A worker that stops answering for `timeout` seconds is killed and replaced; the request it was writing is rolled
  back by the database (an annotation save is one transaction), so documents are never half-written.
- Hard per-request limit, whatever the worker class: `post_worker_init` starts backend/serve/request_limits.py's
  watchdog, `pre_request`/`post_request` mark each request; a request past INKLABEL_REQUEST_CPU_SECONDS (10) of
  CPU or INKLABEL_REQUEST_MAX_RSS_MB (1024) of added memory (or INKLABEL_REQUEST_WALL_SECONDS, off by default)
  ends with its worker (SIGKILL) and the arbiter starts another. gthread's `timeout` cannot do this: its
  heartbeat goes on while a request runs.
"""
import os
import shutil
import tempfile

_env = os.environ.get


def _flag(name: str, default: str) -> bool:
    return _env(name, default).strip().lower() in ("1", "true", "yes", "on")


bind = _env("GUNICORN_BIND", "127.0.0.1:8000")  # `-b` on the command line wins
# The CPUs this process may use (a container's or taskset's share, not the host's), and at most 8 processes by
# default: each holds its own database pool and, after a pre-fill, its own copy of the models.
_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
workers = int(_env("GUNICORN_WORKERS", str(min(2 * _cpus + 2, 8))))
threads = int(_env("GUNICORN_THREADS", "4"))
worker_class = _env("GUNICORN_WORKER_CLASS", "gthread")
preload_app = _flag("GUNICORN_PRELOAD", "1")
timeout = int(_env("GUNICORN_TIMEOUT", "120"))  # a worker silent this long is killed and replaced
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", "30"))  # in-flight requests get this long on reload/stop
keepalive = int(_env("GUNICORN_KEEPALIVE", "5"))
max_requests = int(_env("GUNICORN_MAX_REQUESTS", "0"))  # >0 recycles workers after that many requests
max_requests_jitter = int(_env("GUNICORN_MAX_REQUESTS_JITTER", "0"))
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
forwarded_allow_ips = _env("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")  # the proxy's address(es)
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # heartbeat files off slow/overlay disks
accesslog = _env("GUNICORN_ACCESSLOG") or None  # the app writes its own access log lines with request ids
errorlog = "-"
loglevel = _env("GUNICORN_LOGLEVEL", "info")
proc_name = "inklabel"
# gunicorn >= 27 opens a control socket at one fixed path per user; several servers on one host would collide.
control_socket_disable = not _flag("GUNICORN_CONTROL_SOCKET", "0")

os.environ.setdefault("INKLABEL_LOG_FORMAT", "json")

# Must be set before prometheus_client is imported by the app (it picks its storage at import).
_own_metrics_dir = not _env("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="inklabel-metrics-")


def on_starting(server):
    """Start with empty metric files (a previous run's counters must not leak into this one)."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        target = os.path.join(path, name)
        if os.path.isdir(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            os.unlink(target)


def pre_fork(server, worker):
    """Move the preloaded app's objects out of the garbage collector's reach before forking a worker.

    A worker's full collection otherwise walks them all (125,000 objects, 42 ms on an idle core) and, under load,
    that pause was the slowest save of a benchmark run: PUT max 258-356 ms against 45-65 ms frozen, p99 28.6-30.5
    against 27.0-27.8 ms (benchmarks/results/api.md). The objects live as long as the process anyway, and as
    collections no longer write to their headers, more of the memory pages stay shared with the master."""
    import gc

    gc.freeze()


def post_fork(server, worker):
    """Forget the database connections inherited from the master (preload): each worker opens its own."""
    import sys

    module = sys.modules.get("backend.serve.wsgi")
    if module is None:  # not preloaded: the worker imports the app itself, nothing inherited
        return
    from backend.db.extensions import db

    with module.app.app_context():
        db.engine.dispose(close=False)
    module.app.extensions.pop("inklabel_executor", None)  # a thread pool does not survive fork
    module.app.extensions.pop("inklabel_reaper", None)


def post_worker_init(worker):
    """Each worker loads the current models in the background once (not on its first pre-fill request) and runs
    the hard per-request limit (backend/serve/request_limits.py): a watchdog thread per worker process."""
    from backend.serve.request_limits import Limits, RequestWatchdog
    from backend.serve.warmup import start_model_warmup
    from backend.serve.wsgi import app

    worker.inklabel_watchdog = RequestWatchdog(Limits.from_env()).start()
    start_model_warmup(app)


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)
    watchdog = getattr(worker, "inklabel_watchdog", None)
    if watchdog is not None:
        watchdog.begin(f"{req.method} {req.path}")


def post_request(worker, req, environ, resp):
    watchdog = getattr(worker, "inklabel_watchdog", None)
    if watchdog is not None:
        watchdog.end()


def child_exit(server, worker):
    """Let /metrics stop counting a dead worker's live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_int(worker):
    """Ctrl+C (SIGINT) and SIGQUIT mean quick shutdown: the worker leaves now, without joining its request threads
    or running exit hooks (its open transactions roll back in the database). Leaving through sys.exit, as gunicorn
    does after this hook, once left a worker running on a loaded CI machine after a double Ctrl+C until the arbiter
    gave up waiting (graceful_timeout) and killed it. A graceful stop (SIGTERM, HUP) does not come here."""
    import sys

    worker.log.info("worker %s: quick shutdown", worker.pid)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def worker_abort(worker):
    worker.log.warning("worker %s timed out and is being replaced; its open transactions roll back", worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
