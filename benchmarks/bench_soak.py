#!/usr/bin/env python
"""Soak: N simulated annotators against gunicorn (`manage.py serve --prod`) on SQLite or PostgreSQL.

Each annotator leases an image (POST /queue/next), opens it (metadata, display image, annotation), saves a growing
document about once a second for 4-10 edits, sometimes asks for a pre-fill (when that route exists), then submits
the image (35 %) or releases it. At the end the server is stopped and every image's stored annotation is compared
with the last save the annotator saw acknowledged: a "lost save" is any difference.

    python benchmarks/bench_soak.py --database sqlite --minutes 10
    python benchmarks/bench_soak.py --database postgresql --minutes 10 \\
        --pg-server postgresql://postgres@127.0.0.1:5432/postgres

Errors are answers other than the expected ones (5xx, no answer, an unexpected 4xx such as a 409 on an image the
annotator holds a lease on). Prints a Markdown summary; --json writes the raw figures.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.stack import Http, Stack, growing_document, percentile  # noqa: E402


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[tuple[str, int, str]] = []
        self.refused: dict[str, int] = defaultdict(int)
        self.acked: dict[int, tuple[int, dict]] = {}

    def add(self, op: str, reply, ok=(200,), expected=()) -> bool:
        with self.lock:
            self.latency[op].append(reply.seconds)
            if reply.status in ok:
                return True
            if reply.status in expected:
                self.refused[f"{op} {reply.status} {reply.code}"] += 1
                return False
            detail = reply.error or (json.dumps(reply.body)[:200] if isinstance(reply.body, dict) else "")
            self.errors.append((op, reply.status, detail))
            return False

    def ack(self, image_id: int, version: int, document: dict) -> None:
        with self.lock:
            self.acked[image_id] = (version, {"regions": document["regions"], "tags": document["tags"]})


def annotator(name: str, stack: Stack, token: str, deadline: float, rec: Recorder, prefill: float, seed: int) -> None:
    rnd = random.Random(seed)
    client = Http(stack.url, token, timeout=60)
    time.sleep(rnd.uniform(0, 1.0))  # do not all start in the same millisecond
    while time.monotonic() < deadline:
        nxt = client.post("/api/v1/queue/next?strategy=oldest")
        if not rec.add("queue_next", nxt, expected=(404,)):
            time.sleep(1.0)
            continue
        image_id = nxt.body["image_id"]
        meta = client.get(f"/api/v1/images/{image_id}")
        if not rec.add("open", meta):
            continue
        rec.add("file", client.get(f"/api/v1/images/{image_id}/file?size=display"))
        path = f"/api/v1/images/{image_id}/annotation"
        current = client.get(path)
        if not rec.add("load", current):
            continue
        version, width, height = current.body["version"], meta.body["width"], meta.body["height"]
        step = 0
        for _ in range(rnd.randint(4, 10)):
            time.sleep(rnd.uniform(0.7, 1.3))
            if time.monotonic() >= deadline:
                break
            step += 1
            doc = growing_document(width, height, step, f"{name}-{uuid.uuid4().hex[:8]}")
            reply = client.put(path, {"base_version": version, **doc, "time_spent_ms": 1000})
            if rec.add("save", reply):
                version = reply.body["version"]
                rec.ack(image_id, version, reply.body)
            else:  # find out what the server holds before going on
                again = client.get(path)
                if again.status == 200:
                    version = again.body["version"]
                    rec.ack(image_id, version, again.body)
        if prefill and rnd.random() < prefill:
            rec.add("prefill", client.post(f"/api/v1/images/{image_id}/prefill", {}), expected=(404, 409, 422, 503))
        if step and rnd.random() < 0.35:
            rec.add("submit", client.post(f"/api/v1/images/{image_id}/submit"))
        else:
            rec.add("release", client.post("/api/v1/queue/release", {"image_id": image_id}))
    client.close()


def fresh_postgres(server_url: str) -> tuple[str, callable]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from backend.config import normalize_database_url

    base = make_url(normalize_database_url(server_url))
    name = f"soak_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="inklabel-soak-"))
    drop = None
    database_url = None
    if args.database == "postgresql":
        database_url, drop = fresh_postgres(args.pg_server)
    stack = Stack(workdir / "workspace", database_url, workers=args.workers, threads=args.threads,
                  env={"GUNICORN_LOGLEVEL": "warning"})
    rec = Recorder()
    try:
        stack.init()
        stack.start()
        tokens = stack.users(args.annotators)
        images = args.images or max(100, int(60 * args.minutes) + 40)
        t0 = time.monotonic()
        stack.upload_images(tokens[0], images, seed=args.seed)
        upload_s = time.monotonic() - t0
        spec = Http(stack.url).get("/api/v1/openapi.json").body
        has_prefill = "/api/v1/images/{image_id}/prefill" in spec.get("paths", {})
        prefill = args.prefill_share if has_prefill else 0.0
        deadline = time.monotonic() + args.minutes * 60
        threads = [threading.Thread(target=annotator, args=(f"a{i}", stack, tokens[i], deadline, rec, prefill,
                                                            args.seed * 1000 + i), daemon=True)
                   for i in range(args.annotators)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.minutes * 60 + 180)
        elapsed = time.monotonic() - started
    finally:
        stack.stop()
    stored = stack.stored_documents()
    lost = []
    for image_id, (version, doc) in rec.acked.items():
        entry = stored.get(image_id, {})
        held = entry.get("document") or {}
        if entry.get("version") != version or {"regions": held.get("regions"), "tags": held.get("tags")} != doc:
            lost.append(image_id)
    if drop is not None:
        drop()
    if not rec.errors and not lost:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    all_latency = [s for values in rec.latency.values() for s in values]
    ops = {op: {"count": len(v), "p50_ms": round(percentile(v, 50) * 1000, 1), "p90_ms": round(percentile(v, 90) * 1000, 1),
                "p99_ms": round(percentile(v, 99) * 1000, 1), "max_ms": round(max(v) * 1000, 1)}
           for op, v in sorted(rec.latency.items())}
    return {
        "database": args.database, "minutes": args.minutes, "annotators": args.annotators, "images": images,
        "gunicorn": f"{args.workers} workers x {args.threads} threads", "elapsed_s": round(elapsed, 1),
        "upload_s": round(upload_s, 1), "requests": len(all_latency), "saves": len(rec.latency.get("save", [])),
        "saves_per_s": round(len(rec.latency.get("save", [])) / elapsed, 2), "errors": len(rec.errors),
        "error_samples": rec.errors[:10], "refused": dict(rec.refused), "images_saved": len(rec.acked),
        "lost_saves": len(lost), "lost_image_ids": lost[:20], "prefill_route": has_prefill,
        "prefill_share": prefill,
        "p50_ms": round(percentile(all_latency, 50) * 1000, 1), "p99_ms": round(percentile(all_latency, 99) * 1000, 1),
        "ops": ops,
    }


def markdown(result: dict) -> str:
    lines = [
        f"### soak: {result['database']}, {result['annotators']} annotators, {result['minutes']} min, "
        f"gunicorn {result['gunicorn']}",
        "",
        f"- requests {result['requests']}, saves {result['saves']} ({result['saves_per_s']}/s), images saved "
        f"{result['images_saved']} of {result['images']}",
        f"- **errors {result['errors']}**, **lost saves {result['lost_saves']}**; expected refusals: "
        f"{result['refused'] or 'none'}; pre-fill route present: {result['prefill_route']}, asked after "
        f"{result['prefill_share']:.0%} of images",
        f"- all requests: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms",
        "",
        "| operation | count | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for op, s in result["ops"].items():
        lines.append(f"| {op} | {s['count']} | {s['p50_ms']} | {s['p90_ms']} | {s['p99_ms']} | {s['max_ms']} |")
    if result["error_samples"]:
        lines += ["", "error samples: " + json.dumps(result["error_samples"])[:1500]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL URL whose user may CREATE DATABASE (a fresh one is made and dropped)")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the annotators work (default 10)")
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--images", type=int, default=0, help="images uploaded first (default: 60 per minute + 40)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--prefill-share", type=float, default=0.1,
                        help="share of opened images for which the annotator asks for a pre-fill (0: never)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the raw result here")
    args = parser.parse_args()
    result = run(args)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 and result["lost_saves"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
