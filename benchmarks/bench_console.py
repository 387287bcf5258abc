"""The ML console's lists at scale: latency of the routes its pages read, with 10,000 images, 1,000 jobs and
200 exports (the issue's "long lists stay fluid"), on SQLite (default) or PostgreSQL.

    python benchmarks/bench_console.py                       # 10k images, 1k jobs, 200 exports, SQLite
    python benchmarks/bench_console.py --images 100000       # bigger
    python benchmarks/bench_console.py --database-url postgresql://postgres@127.0.0.1:5432/test_h20

Every image has a region and a cached prediction (concentration uniform in 0–1), 3 % are flagged. Each route is
called --calls times through the Flask app in-process (auth, validation, query, JSON; no network): first and last
pages of the paged lists, the dashboard's overview, the gallery under the threshold. Pages are server-side, so a
page costs the same at any list length except OFFSET's walk to deep pages (reported separately).

WARNING: with --database-url, every table in that database is dropped and recreated.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text  # noqa: E402

from backend import create_app  # noqa: E402
from backend.web.auth import _sha256  # noqa: E402
from backend.db.extensions import db  # noqa: E402
from backend.db.models import ApiToken, Base, Export, Image, ImageTag, Job, Prediction, Region, User, utcnow  # noqa: E402

CHUNK = 5000
STYLES = ["japanese", "tribal", "fineline", "watercolor", "traditional", "trash_polka"]


def seed(n_images: int, n_jobs: int, n_exports: int, rng: random.Random) -> str:
    now = utcnow()
    user = User(username="bench", password_hash="!", role="admin")
    db.session.add(user)
    db.session.flush()
    raw = f"ink_bench_{rng.random()}"
    db.session.add(ApiToken(user_id=user.id, token_hash=_sha256(raw), prefix=raw[:10]))
    images, regions, tags, preds = [], [], [], []
    for i in range(1, n_images + 1):
        style = rng.choice(STYLES)
        flagged = rng.random() < 0.03
        images.append({"id": i, "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "width": 1024, "height": 768,
                       "format": "jpeg", "size_bytes": 100_000, "original_filename": f"{i}.jpg", "source": "bench",
                       "status": rng.choice(["new", "new", "accepted", "submitted"]),
                       "flags": ["not_tattoo"] if flagged else [], "styles": [style], "needs_second_annotator": False,
                       "created_at": now, "updated_at": now})
        tags.append({"image_id": i, "kind": "style", "key": style})
        if flagged:
            tags.append({"image_id": i, "kind": "flag", "key": "not_tattoo"})
        regions.append({"id": f"r{i}", "image_id": i, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 0]]]},
                        "style": style, "motifs": [], "source": "human", "area": 40.5, "bbox": [0, 0, 9, 9]})
        preds.append({"image_id": i, "regions": [], "style_probs": {}, "concentration": rng.random(), "uncertainty": {},
                      "created_at": now})
    jobs = [{"id": hashlib.md5(f"j{k}".encode()).hexdigest(), "kind": rng.choice(["export", "prefill", "train", "scores"]),
             "status": rng.choice(["succeeded", "succeeded", "failed", "cancelled"]), "params": {}, "progress": 100,
             "total": 100, "message": "", "created_by": user.id if k % 2 else None, "created_at": now, "attempts": 1,
             "cancel_requested": False} for k in range(n_jobs)]
    exports = [{"id": hashlib.md5(f"e{k}".encode()).hexdigest(), "status": "succeeded", "options": {"formats": ["coco"]},
                "manifest": {"counts": {"images": {"train": 800, "val": 100, "test": 100}, "regions": {"train": 2000}},
                             "archive_sha256": "0" * 64}, "size_bytes": 10_000_000, "created_by": user.id,
                "created_at": now} for k in range(n_exports)]
    for table, rows in ((Image, images), (ImageTag, tags), (Region, regions), (Prediction, preds), (Job, jobs),
                        (Export, exports)):
        for start in range(0, len(rows), CHUNK):
            db.session.execute(insert(table), rows[start:start + CHUNK])
    db.session.commit()
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--exports", type=int, default=200)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--database-url", help="PostgreSQL URL (its tables are dropped!); default: SQLite in a temp dir")
    args = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="bench-console-"))
    url = args.database_url or f"sqlite:///{workspace / 'inklabel.db'}"
    app = create_app({"WORKSPACE": str(workspace), "SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                      "SECRET_KEY": "bench-secret-key-not-for-production"})
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        token = seed(args.images, args.jobs, args.exports, random.Random(0))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    last_gallery = -(-args.images // 60)
    routes = [
        ("dashboard overview", "/api/v1/dataset/overview"),
        ("gallery page 1 (lowest first)", "/api/v1/dataset/concentration?per_page=60"),
        ("gallery under 25 %, page 1", "/api/v1/dataset/concentration?below=0.25&per_page=60"),
        ("gallery flagged first", "/api/v1/dataset/concentration?order=flag&per_page=60"),
        (f"gallery last page ({last_gallery})", f"/api/v1/dataset/concentration?per_page=60&page={last_gallery}"),
        ("jobs page 1", "/api/v1/jobs?per_page=50"),
        (f"jobs last page ({-(-args.jobs // 50)})", f"/api/v1/jobs?per_page=50&page={-(-args.jobs // 50)}"),
        ("exports page 1", "/api/v1/exports?per_page=20"),
        (f"exports last page ({-(-args.exports // 20)})", f"/api/v1/exports?per_page=20&page={-(-args.exports // 20)}"),
        ("models page 1", "/api/v1/models?per_page=25"),
        ("users page 1", "/api/v1/users?per_page=50"),
    ]
    print(f"database: {url.split(':')[0]}, images: {args.images:,}, jobs: {args.jobs:,}, exports: {args.exports}, "
          f"calls each: {args.calls}")
    print(f"{'route':<34} {'p50 ms':>8} {'max ms':>8} {'bytes':>8}")
    for label, path in routes:
        client.get(path, headers=headers)  # warm
        times, size = [], 0
        for _ in range(args.calls):
            start = time.perf_counter()
            resp = client.get(path, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            if resp.status_code != 200:
                raise SystemExit(f"{path} answered {resp.status_code}: {resp.get_data(as_text=True)[:300]}")
            size = len(resp.data)
        print(f"{label:<34} {statistics.median(times):8.2f} {max(times):8.2f} {size:8d}")


if __name__ == "__main__":
    main()
