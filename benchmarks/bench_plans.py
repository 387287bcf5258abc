#!/usr/bin/env python
"""Query plans of the hot queries at scale, on PostgreSQL: the image list (filters, paging), queue/next and the
export selection, with N images (default 100,000) seeded in a fresh database.

The SQL is not written here: the script runs the real code paths (GET /api/v1/images..., POST /api/v1/queue/next,
backend.datasets.snapshot.pin_images/iter_documents) through the app, records every SELECT they send, and runs
EXPLAIN (ANALYZE, BUFFERS) on each with the same parameters (inside a transaction that is rolled back).

    python benchmarks/bench_plans.py --pg-server postgresql://postgres@127.0.0.1:5432/postgres [--images 100000]

Prints each statement's plan and a summary table (execution time, sequential scans of large tables).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STATUSES = [("new", 0.55), ("in_progress", 0.10), ("submitted", 0.10), ("accepted", 0.20), ("rejected", 0.05)]
STYLES = ["watercolor", "japanese", "tribal", "trash_polka", "fineline", "traditional"]


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed(app, n: int, seed_value: int) -> dict:
    """Bulk-load n images with annotations, revisions, regions, tags and scores through COPY."""
    from backend.web.auth import create_token, create_user
    from backend.db.extensions import db

    rnd = random.Random(seed_value)
    with app.app_context():
        admin = create_user("admin", "password-admin-123", "admin")
        tokens = {"admin": create_token(admin)}
        for i in range(20):
            user = create_user(f"annotator{i}", "password-123456", "annotator")
            tokens[f"annotator{i}"] = create_token(user)
        raw = db.engine.raw_connection()
    now = datetime.now(timezone.utc)
    empty_doc = json.dumps({"regions": [], "tags": {"styles": [], "flags": []}})
    images, tags, annotations, revisions, regions, scores = [], [], [], [], [], []
    weights = [w for _, w in STATUSES]
    for image_id in range(1, n + 1):
        status = rnd.choices([s for s, _ in STATUSES], weights)[0]
        created = now - timedelta(seconds=rnd.randrange(90 * 86400))
        annotated = status != "new"
        styles = rnd.sample(STYLES, rnd.choice([0, 1, 1, 2])) if annotated else []
        flags = ["not_tattoo"] if rnd.random() < 0.03 else []
        images.append((image_id, uuid.uuid4().hex + uuid.uuid4().hex, 1024, 768, "jpeg", 150_000, f"img{image_id}.jpg",
                       "import", status, json.dumps(flags), json.dumps(styles), f"{rnd.getrandbits(64):016x}",
                       False, created, created))
        tags.extend((image_id, "style", s) for s in styles)
        tags.extend((image_id, "flag", f) for f in flags)
        if not annotated:
            annotations.append((image_id, 0, empty_doc, created))
            if not flags:
                scores.append((image_id, "uncertainty", rnd.random(), "{}", created))
            continue
        version = rnd.randint(1, 5)
        region_rows = []
        for r in range(2):
            x, y = rnd.randrange(0, 800), rnd.randrange(0, 600)
            geometry = {"type": "Polygon", "coordinates": [[[x, y], [x + 100, y], [x + 100, y + 80], [x, y + 80], [x, y]]]}
            region_rows.append({"id": f"r{r}", "geometry": geometry, "style": styles[0] if styles else None,
                                "motifs": [], "source": "human"})
            regions.append((f"r{r}", image_id, json.dumps(geometry), styles[0] if styles else None, "[]", "human",
                            8000.0, json.dumps([x, y, x + 100, y + 80])))
        document = json.dumps({"regions": region_rows, "tags": {"styles": styles, "flags": flags}})
        annotations.append((image_id, version, document, created))
        for v in range(1, version + 1):
            revisions.append((image_id, v, document, 60_000, created))
        if status == "in_progress" and not flags:
            scores.append((image_id, "uncertainty", rnd.random(), "{}", created))
    try:
        cur = raw.cursor()
        _copy(cur, "images", ["id", "sha256", "width", "height", "format", "size_bytes", "original_filename", "source",
                              "status", "flags", "styles", "phash", "needs_second_annotator", "created_at", "updated_at"],
              images)
        _copy(cur, "image_tags", ["image_id", "kind", "key"], tags)
        _copy(cur, "annotations", ["image_id", "version", "document", "updated_at"], annotations)
        _copy(cur, "annotation_revisions", ["image_id", "version", "document", "time_spent_ms", "created_at"], revisions)
        _copy(cur, "regions", ["id", "image_id", "geometry", "style", "motifs", "source", "area", "bbox"], regions)
        _copy(cur, "image_scores", ["image_id", "strategy", "score", "parts", "updated_at"], scores)
        cur.execute("SELECT setval(pg_get_serial_sequence('images', 'id'), %s)", (n,))
        raw.commit()
    finally:
        raw.close()
    from sqlalchemy import create_engine

    with app.app_context():
        maintenance = create_engine(db.engine.url, isolation_level="AUTOCOMMIT")
    with maintenance.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    maintenance.dispose()
    return {"tokens": tokens, "rows": {"images": len(images), "image_tags": len(tags), "annotations": len(annotations),
                                       "annotation_revisions": len(revisions), "regions": len(regions),
                                       "image_scores": len(scores)}}


class Capture:
    """Records the statements the app sends while `label` is set."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.label = None
        self.statements: list[tuple[str, str, object]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.label and not executemany and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.statements.append((self.label, statement, parameters))


def explain(engine, statement: str, parameters) -> tuple[str, float]:
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
        finally:
            trans.rollback()
    plan = "\n".join(r[0] for r in rows)
    match = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return plan, float(match.group(1)) if match else float("nan")


BIG_TABLES = ("images", "image_tags", "annotations", "annotation_revisions", "regions", "image_scores")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL URL whose user may CREATE DATABASE (a fresh one is made, then dropped)")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database (its name is printed)")
    parser.add_argument("--plans", action="store_true", help="print every full plan, not only the summary")
    args = parser.parse_args()

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from backend import create_app
    from backend.config import normalize_database_url
    from backend.db.migrate import init_db
    from backend.db.extensions import db

    base = make_url(normalize_database_url(args.pg_server))
    name = f"plans_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        app = create_app({"TESTING": True, "WORKSPACE": tempfile.mkdtemp(prefix="inklabel-plans-"),
                          "SECRET_KEY": "plans-secret-key-not-for-production", "SQLALCHEMY_DATABASE_URI": url,
                          "JOBS_EAGER": True})
        init_db(app)
        t0 = time.monotonic()
        seeded = seed(app, args.images, args.seed)
        print(f"seeded {seeded['rows']} in {time.monotonic() - t0:.1f}s (database {name})\n")
        with app.app_context():
            engine = db.engine
        capture = Capture(engine)
        client = app.test_client()
        admin_h = {"Authorization": f"Bearer {seeded['tokens']['admin']}"}
        calls = [
            ("list: no filter, page 1", "admin", "/api/v1/images?per_page=50"),
            ("list: status=new, page 1", "admin", "/api/v1/images?status=new&per_page=50"),
            ("list: status=accepted, page 200", "admin", "/api/v1/images?status=accepted&page=200&per_page=50"),
            ("list: style=tribal", "admin", "/api/v1/images?style=tribal&per_page=50"),
            ("list: flag=not_tattoo", "admin", "/api/v1/images?flag=not_tattoo&per_page=50"),
            ("list: deep page 1500", "admin", "/api/v1/images?page=1500&per_page=50"),
            ("queue/next uncertainty", "annotator1", "/api/v1/queue/next?strategy=uncertainty"),
            ("queue/next oldest", "annotator2", "/api/v1/queue/next?strategy=oldest"),
            ("queue/next random", "annotator3", "/api/v1/queue/next?strategy=random"),
        ]
        for label, who, path in calls:
            capture.label = label
            headers = admin_h if who == "admin" else {"Authorization": f"Bearer {seeded['tokens'][who]}"}
            call = client.post if path.startswith("/api/v1/queue/next") else client.get  # leasing is a POST
            resp = call(path, headers=headers)
            if resp.status_code != 200:
                print(f"warning: {label}: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
        capture.label = "export selection (accepted)"
        with app.app_context():
            from backend.datasets.snapshot import iter_documents, pin_images

            pinned = pin_images(["accepted"])
            for _ in zip(range(600), iter_documents(pinned)):
                pass
        capture.label = None

        seen: set[tuple[str, str]] = set()
        summary = []
        for label, statement, parameters in capture.statements:
            key = (label, statement)
            if key in seen or re.search(r"\bFROM (users|api_tokens|auth_sessions)\b", statement) and "images" not in statement:
                continue
            seen.add(key)
            plan, ms = explain(engine, statement, parameters)
            seq = sorted({t for t in BIG_TABLES if re.search(rf"Seq Scan on {t}\b", plan)})
            summary.append((label, ms, seq, " ".join(statement.split())[:110]))
            if args.plans:
                print(f"=== {label}: {ms:.2f} ms\n{statement}\n{parameters}\n{plan}\n")
        print(f"| query | execution ms | seq scans of big tables | statement |")
        print("|---|---:|---|---|")
        for label, ms, seq, stmt in summary:
            print(f"| {label} | {ms:.2f} | {', '.join(seq) or '-'} | `{stmt}` |")
        with app.app_context():
            db.engine.dispose()
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
