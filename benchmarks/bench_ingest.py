#!/usr/bin/env python
"""Ingest and image-list figures.

1. ingest: `ingest_bytes` over the real tattoo photos (../shared/data/real-tattoos/images), images/s; then the
   same bytes again (all duplicates).
2. derivatives: time to make the display (2048) and thumb (256) JPEG of a large photo from its original.
3. list: GET /api/v1/images page latency (p50/p95 of repeated requests through the Flask test client, so no
   network) with N images seeded as metadata (plus 3 regions per 10 images and styles/flags on a share of them),
   for each filter the API has, at the sizes given by --sizes.

    python benchmarks/bench_ingest.py                      # SQLite, 10k and 100k images
    python benchmarks/bench_ingest.py --database postgresql://postgres@127.0.0.1:5432/bench
"""
from __future__ import annotations

import argparse
import hashlib
import io
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image as PILImage  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from backend import create_app  # noqa: E402
from backend.config import normalize_database_url  # noqa: E402
from backend.db.extensions import db  # noqa: E402
from backend.db.models import Annotation, Base, Image, Region  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real-tattoos" / "images"
STYLES = ["watercolor", "japanese", "tribal", "trash_polka", "fineline", "traditional", "blackwork", "dotwork"]
FLAGS = ["not_tattoo", "bad_example", "store_front", "artist_portrait"]
STATUSES = ["new"] * 6 + ["in_progress", "submitted", "accepted", "rejected"]


def make_app(workspace: Path, database: str | None):
    config = {
        "TESTING": True,
        "WORKSPACE": str(workspace),
        "SECRET_KEY": "benchmark-secret-key-0123456789",
        "SCHEMA_CREATE_ALL": True,
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database) if database else f"sqlite:///{workspace / 'inklabel.db'}",
    }
    app = create_app(config)
    with app.app_context():
        if database:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        Base.metadata.create_all(db.engine)
    return app


def token_for(app) -> str:
    from backend.web.auth import create_token, create_user

    with app.app_context():
        user = create_user(f"bench{random.randrange(10**9)}", "benchmark-password", "annotator")
        return create_token(user)


def bench_ingest(app) -> dict:
    from backend.core.ingest import ingest_bytes

    files = sorted(REAL.glob("*.jpg"))
    if not files:
        return {}
    blobs = [p.read_bytes() for p in files]
    with app.app_context():
        started = time.perf_counter()
        new = sum(not ingest_bytes(data, "x.jpg", source="import").duplicate for data in blobs)
        first = time.perf_counter() - started
        started = time.perf_counter()
        for data in blobs:
            ingest_bytes(data, "x.jpg")
        again = time.perf_counter() - started
    mb = sum(map(len, blobs)) / 1e6
    return {"files": len(blobs), "new": new, "MB": round(mb, 1), "ingest_img_s": round(len(blobs) / first, 1),
            "duplicate_img_s": round(len(blobs) / again, 1)}


def bench_derivatives(workspace: Path) -> dict:
    from backend.media.storage import BlobStore

    img = PILImage.effect_noise((4032, 3024), 50).convert("RGB")  # a 12 MP phone photo's size
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    data = out.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    store = BlobStore(workspace / "deriv")
    store.put_original(sha, data, "jpeg")
    figures = {}
    for size in ("display", "thumb"):
        started = time.perf_counter()
        store.derivative_path(sha, "jpeg", size)
        figures[f"{size}_ms"] = round((time.perf_counter() - started) * 1000, 1)
        started = time.perf_counter()
        store.derivative_path(sha, "jpeg", size)
        figures[f"{size}_cached_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return figures


def seed(app, n: int, start: int) -> None:
    """Add images start+1..n as metadata only (no blobs), with annotations, regions and tags."""
    from backend.core.tags import rebuild_image_tags

    rng = random.Random(start)
    now = datetime.now(timezone.utc)
    with app.app_context():
        batch = 5000
        for lo in range(start, n, batch):
            images, annotations, regions = [], [], []
            for i in range(lo + 1, min(n, lo + batch) + 1):
                styles = rng.sample(STYLES, rng.choice([0, 0, 1, 1, 2]))
                flags = rng.sample(FLAGS, 1) if rng.random() < 0.1 else []
                images.append({
                    "id": i, "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "width": 1080, "height": 1350,
                    "format": "jpeg", "size_bytes": 200_000, "original_filename": f"img{i}.jpg",
                    "source": "synthetic" if i % 5 == 0 else "import", "status": rng.choice(STATUSES),
                    "flags": flags, "styles": styles, "phash": "0" * 16, "created_at": now, "updated_at": now,
                })
                annotations.append({"image_id": i, "version": 1, "document": {"regions": [], "tags": {}}, "updated_at": now})
                for k in range(3 if i % 10 < 3 else 0):
                    regions.append({"id": f"r{i}-{k}", "image_id": i, "style": styles[0] if styles else None,
                                    "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]},
                                    "motifs": [], "source": "human", "area": 50.0, "bbox": [0, 0, 10, 10]})
            db.session.execute(insert(Image), images)
            db.session.execute(insert(Annotation), annotations)
            if regions:
                db.session.execute(insert(Region), regions)
            db.session.commit()
        rebuild_image_tags(db.session)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        else:
            db.session.execute(text("ANALYZE"))
            db.session.commit()


def time_queries(app, token: str, n: int, repeats: int) -> list[tuple[str, float, float, int]]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    last_page = max(1, (n + 49) // 50)
    queries = [
        "/api/v1/images?per_page=50",
        f"/api/v1/images?page={last_page // 2}&per_page=50",
        f"/api/v1/images?page={last_page}&per_page=50",
        "/api/v1/images?status=submitted",
        "/api/v1/images?source=synthetic",
        "/api/v1/images?style=tribal",
        "/api/v1/images?flag=store_front",
        "/api/v1/images?style=tribal&flag=not_tattoo&status=new",
        "/api/v1/images?style=tribal&page=100",
    ]
    rows = []
    for url in queries:
        for _ in range(3):
            client.get(url, headers=headers)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            resp = client.get(url, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert resp.status_code == 200, resp.get_json()
        times.sort()
        total = resp.get_json()["total"]
        rows.append((url.replace("/api/v1/images", "") or "(none)", statistics.median(times),
                     times[int(0.95 * (len(times) - 1))], total))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="a PostgreSQL URL (its public schema is dropped!); default SQLite")
    parser.add_argument("--sizes", default="10000,100000", help="image counts to time the list at")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        app = make_app(workspace, args.database)
        backend_name = "postgresql" if args.database else "sqlite"
        print(f"database: {backend_name}")
        if not args.skip_ingest:
            print("ingest (real tattoo JPEGs):", bench_ingest(app))
            print("derivatives of a 4032x3024 JPEG:", bench_derivatives(Path(tmp)))
            app = make_app(Path(tmp) / "ws2", args.database)  # list timings on an empty database
        token = token_for(app)
        seeded = 0
        for n in [int(s) for s in args.sizes.split(",")]:
            started = time.perf_counter()
            seed(app, n, seeded)
            seeded = n
            print(f"\nlist at {n:,} images (seeded in {time.perf_counter() - started:.1f} s), ms:")
            print(f"  {'query':<45} {'p50':>7} {'p95':>7} {'total':>8}")
            for query, p50, p95, total in time_queries(app, token, n, args.repeats):
                print(f"  {query:<45} {p50:7.1f} {p95:7.1f} {total:8,}")
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
