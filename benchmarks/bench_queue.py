"""queue/next latency at scale: p50/p99 with 100,000 images, on SQLite and (optionally) PostgreSQL.

    python benchmarks/bench_queue.py                         # SQLite in a temporary workspace, 100k images
    python benchmarks/bench_queue.py --database-url postgresql://postgres@127.0.0.1:5432/test_f
    python benchmarks/bench_queue.py --images 10000 --calls 100   # quicker

The pool looks like a live project: 30 % accepted, 5 % submitted, 2 % flagged, the rest new / in progress, every
unlabelled image scored (uncertainty) and the top 1,000 ranked for diversity. Each measured call is a distinct
annotator without a lease asking `POST /api/v1/queue/next` through the Flask app in-process (auth, validation,
claim and commit included; no network), so leases pile up at the top of the ranking as they would with a team.
The goal (issue 6): p99 under 50 ms at 100k images.

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
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text  # noqa: E402

from backend import create_app  # noqa: E402
from backend.web.auth import _sha256  # noqa: E402
from backend.db.extensions import db  # noqa: E402
from backend.db.models import ApiToken, Assignment, Base, Image, ImageScore, ImageTag, ModelVersion, User, utcnow  # noqa: E402

CHUNK = 5000


def seed(n_images: int, n_users: int, rng: random.Random) -> list[str]:
    """Bulk-insert images, scores and users; returns one API token per user."""
    now = utcnow()
    statuses = ["accepted"] * 30 + ["submitted"] * 5 + ["in_progress"] * 10 + ["new"] * 55
    images, scores, tags = [], [], []
    for i in range(1, n_images + 1):
        status = rng.choice(statuses)
        flagged = status in ("new", "in_progress") and rng.random() < 0.02
        images.append({
            "id": i, "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "width": 1024, "height": 768,
            "format": "jpeg", "size_bytes": 100_000, "original_filename": f"{i}.jpg", "source": "bench",
            "status": status, "flags": ["not_tattoo"] if flagged else [], "styles": [],
            "needs_second_annotator": False, "created_at": now - timedelta(seconds=n_images - i), "updated_at": now,
        })
        if flagged:
            tags.append({"image_id": i, "kind": "flag", "key": "not_tattoo"})
        if status in ("new", "in_progress"):
            scores.append({"image_id": i, "strategy": "uncertainty", "score": rng.random(),
                           "parts": {"segmentation": 0.5, "classification": 0.5}, "updated_at": now})
    top = sorted((s for s in scores if s["image_id"] not in {t["image_id"] for t in tags}),
                 key=lambda s: -s["score"])[:1000]
    rng.shuffle(top)
    scores += [{"image_id": s["image_id"], "strategy": "diversity", "score": 1 - k / 1000,
                "parts": {"rank": k + 1}, "updated_at": now} for k, s in enumerate(top)]
    # Who did the labelled images (one primary assignment each) and 5 % finished agreement copies, as a project
    # that has labelled this many images would have.
    assignments = []
    for im in images:
        if im["status"] in ("accepted", "submitted", "in_progress"):
            assignments.append({"image_id": im["id"], "user_id": 1, "kind": "primary", "created_at": now,
                                "time_spent_ms": 0})
            if im["status"] == "accepted" and rng.random() < 0.05:
                assignments.append({"image_id": im["id"], "user_id": 2, "kind": "agreement", "created_at": now,
                                    "completed_at": now, "time_spent_ms": 0})
    for table, rows in ((Image, images), (ImageTag, tags), (ImageScore, scores)):
        for start in range(0, len(rows), CHUNK):
            db.session.execute(insert(table), rows[start:start + CHUNK])
    db.session.add(ModelVersion(kind="segmenter", name="bench", weights_path="x", is_current=True))
    tokens = []
    pending_assignments = assignments
    for u in range(n_users):
        user = User(username=f"bench{u}", password_hash="!", role="annotator")
        db.session.add(user)
        db.session.flush()
        raw = f"ink_bench_{u}_{rng.random()}"
        db.session.add(ApiToken(user_id=user.id, token_hash=_sha256(raw), prefix=raw[:10]))
        tokens.append(raw)
    db.session.flush()
    for start in range(0, len(pending_assignments), CHUNK):
        db.session.execute(insert(Assignment), pending_assignments[start:start + CHUNK])
    db.session.commit()
    with db.engine.begin() as conn:  # fresh planner statistics, as a live database would have
        conn.execute(text("ANALYZE"))
    return tokens


def measure(client, tokens: list[str], strategy: str) -> list[float]:
    times = []
    for token in tokens:
        start = time.perf_counter()
        resp = client.post(f"/api/v1/queue/next?strategy={strategy}", headers={"Authorization": f"Bearer {token}"})
        times.append((time.perf_counter() - start) * 1000)
        if resp.status_code != 200:
            raise SystemExit(f"queue/next answered {resp.status_code}: {resp.get_data(as_text=True)[:300]}")
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200, help="measured calls per strategy (distinct annotators)")
    parser.add_argument("--database-url", help="PostgreSQL URL (its tables are dropped!); default: SQLite in a temp dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    url = args.database_url or f"sqlite:///{workspace / 'inklabel.db'}"
    app = create_app({"WORKSPACE": str(workspace), "SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                      "SECRET_KEY": "bench-secret-key-not-for-production", "AGREEMENT_SHARE": 0.05})
    strategies = ("uncertainty", "diversity", "oldest", "random")
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        t0 = time.perf_counter()
        tokens = seed(args.images, args.calls * len(strategies) + 10, random.Random(args.seed))
        seeded_s = time.perf_counter() - t0
    client = app.test_client()
    # Warm-up: connection pool, caches (these callers then hold leases, as a team would).
    measure(client, tokens[:10], "uncertainty")
    print(f"database: {url.split(':')[0]}, images: {args.images:,}, "
          f"seeded in {seeded_s:.1f} s, calls per strategy: {args.calls}")
    print(f"{'strategy':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    rest = tokens[10:]
    for k, strategy in enumerate(strategies):
        batch = rest[k * args.calls:(k + 1) * args.calls]
        times = measure(client, batch, strategy)
        print(f"{strategy:<12} {statistics.median(times):8.2f} {pct(times, 99):8.2f} {max(times):8.2f}")


if __name__ == "__main__":
    main()
