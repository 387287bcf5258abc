#!/usr/bin/env python
"""Fault: PostgreSQL restarted (and stopped for a few seconds) under annotation load.

Starts a private PostgreSQL server (initdb in a temporary folder, a free port; run as root it uses the `postgres`
system user), gunicorn (`manage.py serve --prod`) on it, and N annotators saving growing documents as fast as the
server answers. Mid-run the server is restarted (`pg_ctl restart -m fast`), later stopped for --outage seconds and
started again. Expected: during the outages clients get retryable answers (503 database_unavailable with
Retry-After, or no answer when a worker's connection dies under a request), never a 500; afterwards every image
holds exactly the last save its annotator saw acknowledged (an unanswered save is re-read, as a client would).

    python benchmarks/fault_pg_restart.py [--annotators 8] [--seconds 12] [--outage 3]

It never touches the shared PostgreSQL server; it needs initdb/pg_ctl (PostgreSQL server binaries) on PATH or in
/usr/lib/postgresql/*/bin. Exit status 0 when nothing was lost and no non-retryable error was seen.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.stack import Http, Stack, free_port, growing_document, markers_of  # noqa: E402


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise SystemExit(f"{name} not found: install the PostgreSQL server binaries")
    return found


class PrivatePostgres:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="inklabel-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self.log = self.dir / "postgres.log"

    def _run(self, *args, check=True):
        return subprocess.run(self.as_user + list(args), capture_output=True, text=True, check=check, timeout=120)

    def init(self):
        self._run(_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.ctl("start")

    def ctl(self, action: str, *extra):
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
        return self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", action, *extra)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/inklabel"

    def create_database(self):
        from sqlalchemy import create_engine, text

        engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE inklabel"))
        engine.dispose()

    def destroy(self):
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def saver(stack: Stack, token: str, image: dict, stop: threading.Event, log: dict) -> None:
    client = Http(stack.url, token, timeout=30)
    path = f"/api/v1/images/{image['id']}/annotation"
    version, step = 0, 0
    while not stop.is_set():
        step += 1
        doc = growing_document(image["width"], image["height"], step, f"i{image['id']}s{step}")
        reply = client.put(path, {"base_version": version, **doc, "time_spent_ms": 50})
        log["answers"][f"{reply.status} {reply.code}".strip()] += 1
        if reply.status == 200:
            version = reply.body["version"]
            log["acked"] = (version, reply.body)
            continue
        if reply.status == 503 or reply.status == 0:  # retryable: find out what the server holds, then go on
            time.sleep(0.2)
            while not stop.is_set():
                current = client.get(path)
                if current.status == 200:
                    version = current.body["version"]
                    log["acked"] = (version, current.body)
                    break
                log["answers"][f"reread {current.status} {current.code}".strip()] += 1
                time.sleep(0.2)
            continue
        log["bad"].append((reply.status, reply.body if isinstance(reply.body, dict) else str(reply.body)[:200]))
        time.sleep(0.2)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12.0, help="total load time")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds the server stays stopped the second time")
    args = parser.parse_args()

    pg = PrivatePostgres()
    stack = None
    events = []
    try:
        pg.init()
        pg.create_database()
        stack = Stack(Path(tempfile.mkdtemp(prefix="inklabel-pgfault-")) / "workspace", pg.url, workers=2, threads=4)
        stack.init()
        stack.start()
        tokens = stack.users(args.annotators)
        images = stack.upload_images(tokens[0], args.annotators)
        stop = threading.Event()
        logs = [{"answers": Counter(), "acked": None, "bad": []} for _ in images]
        threads = [threading.Thread(target=saver, args=(stack, tokens[i], images[i], stop, logs[i]), daemon=True)
                   for i in range(len(images))]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.seconds / 4)
        t0 = time.monotonic()
        pg.ctl("restart", "-m", "fast")
        events.append(f"restart -m fast took {time.monotonic() - t0:.1f}s at t={t0 - started:.1f}s")
        time.sleep(args.seconds / 4)
        t0 = time.monotonic()
        pg.ctl("stop", "-m", "fast")
        time.sleep(args.outage)
        pg.ctl("start")
        events.append(f"stopped for {time.monotonic() - t0:.1f}s from t={t0 - started:.1f}s")
        time.sleep(args.seconds / 2)
        stop.set()
        for t in threads:
            t.join(60)
        workers_alive = stack.server.poll() is None
        stack.stop()
        stored = stack.stored_documents()
    finally:
        if stack is not None:
            stack.stop()
        pg.destroy()

    answers = sum((log["answers"] for log in logs), Counter())
    lost = []
    for image, log in zip(images, logs):
        entry = stored.get(image["id"], {})
        version, acked = log["acked"] or (0, {"regions": [], "tags": {"styles": [], "flags": []}})
        doc = entry.get("document") or {}
        whole = len(markers_of(doc)) <= 1 and entry.get("revision_document") == doc
        if entry.get("version") != version or doc.get("regions") != acked["regions"] or not whole:
            lost.append(image["id"])
    bad = [b for log in logs for b in log["bad"]]
    result = {"events": events, "answers": dict(answers), "non_retryable": bad[:10], "lost_or_mixed": lost,
              "server_alive": workers_alive, "saves_acknowledged": answers.get("200", 0)}
    print(json.dumps(result, indent=2))
    ok = not lost and not bad and workers_alive and not any(k.startswith("500") for k in answers)
    print("OK: retryable errors only, nothing lost" if ok else f"FAILED (server log: {stack.log_path})")
    if ok:
        shutil.rmtree(stack.workspace.parent, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
