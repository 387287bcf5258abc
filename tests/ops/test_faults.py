"""Fault tests: a gunicorn worker killed with SIGKILL in the middle of saves, and the job broker (Redis) stopped
and started again under a running worker.

The PostgreSQL restart fault is benchmarks/fault_pg_restart.py (it runs a private PostgreSQL server; not in CI).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backend.db.extensions import db
from backend.jobs.executor import reap_stale_jobs, submit_job
from backend.db.models import Job, utcnow
from ..support.stack import Http, Stack, growing_document, markers_of

from ..support.app import ApiClient, build_app, make_user
from .conftest import free_port, manage, start_redis, wait_for, worker_env

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]  # gunicorn/worker subprocesses


def _saver(stack: Stack, token: str, image: dict, stop: threading.Event, log: dict) -> None:
    """Save a growing document as fast as the server answers; after an unanswered save, re-read the version."""
    client = Http(stack.url, token, timeout=30)
    path = f"/api/v1/images/{image['id']}/annotation"
    version, step = 0, 0
    while not stop.is_set():
        step += 1
        marker = f"i{image['id']}s{step}"
        doc = growing_document(image["width"], image["height"], step, marker)
        log["sent"].append(marker)
        reply = client.put(path, {"base_version": version, **doc, "time_spent_ms": 100})
        if reply.status == 200:
            version = reply.body["version"]
            log["acked"] = (version, marker, reply.body)
        elif reply.status == 0:
            log["unanswered"] += 1
            while not stop.is_set():  # the save may or may not have happened: ask the server
                current = client.get(path)
                if current.status == 200:
                    version = current.body["version"]
                    log["acked"] = (version, next(iter(markers_of(current.body)), None), current.body)
                    break
                time.sleep(0.05)
        else:
            log["errors"].append((reply.status, reply.body))
    client.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_9_of_a_gunicorn_worker_mid_saves_leaves_whole_documents(database, tmp_path, request):
    database_url = request.getfixturevalue("fresh_pg_database") if database == "postgresql" else None
    stack = Stack(tmp_path / "workspace", database_url, workers=2, threads=4)
    try:
        stack.init()
        stack.start()
        tokens = stack.users(6)
        images = stack.upload_images(tokens[0], 6)
        stop = threading.Event()
        logs = [{"sent": [], "acked": None, "unanswered": 0, "errors": []} for _ in images]
        threads = [threading.Thread(target=_saver, args=(stack, tokens[i], images[i], stop, logs[i]), daemon=True)
                   for i in range(len(images))]
        for t in threads:
            t.start()
        wait_for(lambda: all(log["acked"] for log in logs), 30, what="first saves")
        victims = stack.worker_pids()
        assert len(victims) == 2
        # Kill each original worker in turn (whichever holds the clients' connections), mid-saves.
        for n, victim in enumerate(victims, start=1):
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: len(set(stack.worker_pids()) - set(victims)) >= n, 30, what="a replacement worker")
            time.sleep(0.5)  # more saves through the replacement
        stop.set()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
    finally:
        stack.stop()

    assert sum(log["unanswered"] for log in logs) >= 1  # the kill did cut saves short
    assert [log["errors"] for log in logs] == [[]] * len(logs)
    stored = stack.stored_documents()
    for image, log in zip(images, logs):
        entry = stored[image["id"]]
        version, marker, acked_doc = log["acked"]
        # The last acknowledged (or re-read) state is what the database holds: nothing acknowledged was lost.
        assert entry["version"] == version
        assert {"regions": entry["document"]["regions"], "tags": entry["document"]["tags"]} == \
               {"regions": acked_doc["regions"], "tags": acked_doc["tags"]}
        # One whole save: one marker everywhere, the denormalised regions and the revision agree with it.
        assert markers_of(entry["document"]) == {marker} and marker in log["sent"]
        assert entry["region_markers"] == {marker} and entry["region_ids"] == {"r0", "r1"}
        assert entry["revision_document"] == entry["document"]
        assert sorted(entry["revisions"]) == list(range(1, version + 1))
    stack.app  # noqa: B018  (engine disposed by stop() above)


def test_redis_stopped_job_endpoints_503_annotation_works_jobs_resume(tmp_path, processes):
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    redis_proc = start_redis(processes, port, tmp_path / "redis.log")
    workspace = tmp_path / "workspace"
    env = worker_env(workspace, broker)
    subprocess.run(manage("init"), env=env, check=True, capture_output=True, timeout=60)
    app = build_app(tmp_path, "sqlite", JOBS_EAGER=False, BROKER_URL=broker)
    worker_log = tmp_path / "worker.log"
    processes(manage("worker", "--queues", "cpu,gpu", "--concurrency", "2"), env=env, log_path=worker_log)
    wait_for(lambda: b" ready." in worker_log.read_bytes(), 30, what="worker ready")

    admin_user, admin_token = make_user(app, "boss", "admin")
    admin = ApiClient(app, admin_user, admin_token)
    ann_user, ann_token = make_user(app, "ann", "annotator")
    annotator = ApiClient(app, ann_user, ann_token)
    from ..support.stack import make_png

    image = annotator.upload([(make_png(1), "a.png")]).get_json()["images"][0]

    def job_status(job_id):
        with app.app_context():
            return db.session.get(Job, job_id).status

    # Broker up: a job endpoint works end to end.
    resp = admin.post("/api/v1/queue/scores", json={"top_k": 10})
    assert resp.status_code == 202
    first = resp.get_json()["job_id"]
    wait_for(lambda: job_status(first) == "succeeded", 20, what="scores job")
    with app.app_context():
        running = submit_job("ops_sleep", {"seconds": 3.0, "steps": 15}).id
    wait_for(lambda: job_status(running) == "running", 20, what="long job start")

    # Broker down: job endpoints answer 503 broker_unavailable, annotation keeps working, the running job goes on.
    os.killpg(redis_proc.pid, signal.SIGTERM)
    redis_proc.wait(10)
    started = time.monotonic()
    resp = admin.post("/api/v1/queue/scores", json={"top_k": 10})
    assert resp.status_code == 503 and time.monotonic() - started < 10
    assert resp.get_json()["error"]["code"] == "broker_unavailable"
    doc = growing_document(image["width"], image["height"], 1, "while-redis-down")
    saved = annotator.put(f"/api/v1/images/{image['id']}/annotation", json={"base_version": 0, **doc})
    assert saved.status_code == 200 and saved.get_json()["version"] == 1
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["broker"]["ok"] is False
    wait_for(lambda: job_status(running) == "succeeded", 20, what="running job to finish without Redis")

    # Broker back (empty: no persistence): new jobs run again, and a job whose message was lost is sent again.
    start_redis(processes, port, tmp_path / "redis2.log")
    assert app.test_client().get("/readyz").status_code == 200
    with app.app_context():
        lost = Job(kind="ops_gpu_echo", params={"value": "lost"}, status="queued", heartbeat_at=utcnow())
        db.session.add(lost)
        db.session.commit()
        lost_id = lost.id
    resp = admin.post("/api/v1/queue/scores", json={"top_k": 10})
    assert resp.status_code == 202
    again = resp.get_json()["job_id"]
    time.sleep(0.2)
    # (the scores job may be sent twice if the worker has not reconnected yet: the claim makes that harmless)
    assert lost_id in reap_stale_jobs(app, requeue_queued_after=0.1)["requeued"]
    wait_for(lambda: job_status(again) == "succeeded" and job_status(lost_id) == "succeeded", 40,
             what="jobs after Redis came back")
    with app.app_context():
        db.engine.dispose()


_POOL_HOLDER = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from backend.datasets.export import _exit_with_parent
pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=_exit_with_parent,
                           initargs=(os.getpid(),))
print(pool.submit(os.getpid).result(), flush=True)
time.sleep(600)
"""


def test_render_processes_leave_when_the_exporting_process_is_killed():
    """A worker killed past its request limits (SIGKILL) cannot stop its export's render processes: they notice
    that their parent is gone and leave (backend/datasets/export.py _exit_with_parent)."""
    holder = subprocess.Popen([sys.executable, "-c", _POOL_HOLDER], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        render_pid = int(holder.stdout.readline())
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)

        def gone() -> bool:
            try:  # a zombie until something reaps it: dead all the same
                return Path(f"/proc/{render_pid}/stat").read_text().split(") ")[1].startswith("Z")
            except FileNotFoundError:
                return True
        wait_for(gone, 10, what="the render process to leave")
    finally:
        holder.kill()
