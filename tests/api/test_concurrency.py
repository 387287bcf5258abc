"""Concurrent saves: on one version exactly one wins (SQLite and PostgreSQL); parallel writers on SQLite never see
"database is locked". Each thread has its own test client, so its own app context and database session."""
from __future__ import annotations

import threading
import time

from sqlalchemy import func, select, text

from backend.db.extensions import db
from backend.db.models import AnnotationRevision, Region

from ..support.app import ApiClient, build_app, make_user
from ..support.images import make_image
from .test_annotations import region, square, stored


def _run_together(workers):
    """Start every callable at the same moment (a barrier) and return their results in order."""
    barrier = threading.Barrier(len(workers))
    results: list = [None] * len(workers)

    def run(i, work):
        barrier.wait()
        try:
            results[i] = work()
        except BaseException as err:  # surfaced by the assertions below
            results[i] = err

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _put(client: ApiClient, image_id: int, regions, base_version: int):
    def work():
        resp = client.put(f"/api/v1/images/{image_id}/annotation",
                          json={"base_version": base_version, "regions": regions,
                                "tags": {"styles": [], "flags": []}})
        return resp.status_code, resp.get_json()
    return work


def test_same_version_exactly_one_wins(app, make_client):
    # Reviewers write regardless of leases: a pure compare-and-set race (annotators: see the test below).
    clients = [make_client("reviewer") for _ in range(6)]
    for round_no in range(3):
        image_id = make_image(app)
        works = [_put(c, image_id, [region(square(0, 0, 10 + i, 10), id=f"c{i}")], 0) for i, c in enumerate(clients)]
        results = _run_together(works)
        statuses = sorted(r[0] for r in results)
        assert statuses == [200] + [409] * (len(clients) - 1), results
        [winner] = [r[1] for r in results if r[0] == 200]
        for status, body in results:
            if status == 409:
                assert body["error"]["details"]["current"] == winner
        state = stored(app, image_id)
        assert state["version"] == 1
        assert [v for v, _, _ in state["revisions"]] == [1]
        assert [r["id"] for r in state["regions"]] == [winner["regions"][0]["id"]]
        assert state["document"]["regions"] == winner["regions"]


def test_annotators_racing_for_a_free_image_one_wins_and_holds_it(app, make_client):
    clients = [make_client("annotator") for _ in range(4)]
    image_id = make_image(app)
    works = [_put(c, image_id, [region(square(0, 0, 10 + i, 10), id=f"c{i}")], 0) for i, c in enumerate(clients)]
    results = _run_together(works)
    assert sorted(r[0] for r in results) == [200, 409, 409, 409], results
    assert {r[1]["error"]["code"] for r in results if r[0] == 409} <= {"leased", "stale_version"}
    assert stored(app, image_id)["version"] == 1


def test_sequential_rebase_after_conflict(app, make_client):
    """The loser of a race reloads, rebases on the current version and saves: both edits end up in history."""
    a, b = make_client("reviewer"), make_client("reviewer")
    image_id = make_image(app)
    results = _run_together([_put(a, image_id, [region(square(0, 0, 10, 10), id="a")], 0),
                             _put(b, image_id, [region(square(20, 0, 30, 10), id="b")], 0)])
    loser = [r for r in results if r[0] == 409][0][1]
    current = loser["error"]["details"]["current"]
    retry = _put(a, image_id, current["regions"] + [region(square(40, 0, 50, 10), id="z")], current["version"])()
    assert retry[0] == 200 and retry[1]["version"] == 2
    state = stored(app, image_id)
    assert state["version"] == 2 and [v for v, _, _ in state["revisions"]] == [1, 2]
    assert len(state["regions"]) == 2


def test_twenty_parallel_writers_on_sqlite(sqlite_app):
    """20 threads saving 20 different images at once: all succeed (no "database is locked")."""
    user, token = make_user(sqlite_app, "writer", "annotator")
    image_ids = [make_image(sqlite_app) for _ in range(20)]
    clients = [ApiClient(sqlite_app, user, token) for _ in image_ids]
    works = []
    for client, image_id in zip(clients, image_ids):
        regions = [region(square(i, i, i + 20, i + 15), id=f"r{i}") for i in range(3)]
        works.append(_put(client, image_id, regions, 0))
    for rounds in range(2):
        results = _run_together(works)
        assert [r[0] for r in results] == [200] * 20, [r for r in results if r[0] != 200][:3]
        works = [_put(c, i, [region(square(0, 0, 5, 5), id="x")], 1) for c, i in zip(clients, image_ids)]
    with sqlite_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AnnotationRevision)) == 40
        assert db.session.scalar(select(func.count()).select_from(Region)) == 20
    assert all(stored(sqlite_app, i)["version"] == 2 for i in image_ids)


def test_parallel_writers_on_postgresql_and_sqlite(app, make_client):
    """Different images in parallel on either database: all succeed and each gets its own version 1."""
    client = make_client("annotator")
    image_ids = [make_image(app) for _ in range(10)]
    clients = [ApiClient(app, client.user, client.token) for _ in image_ids]
    results = _run_together([_put(c, i, [region(square(0, 0, 10, 10), id="r")], 0)
                             for c, i in zip(clients, image_ids)])
    assert [r[0] for r in results] == [200] * 10, results
    assert all(stored(app, i)["version"] == 1 for i in image_ids)


def test_compare_and_set_catches_a_commit_between_check_and_write_on_postgresql(tmp_path):
    """The version pre-check is only a shortcut: the conditional UPDATE decides. On PostgreSQL a save checks the
    version without a lock, so another writer can commit between that check and the save's write; the save must
    then answer 409 and write nothing. Driven as production runs it: an API save in its own thread on the app's
    engine, with no statement listeners attached (listeners would divert the save's statements off the path
    production takes, backend/db/prepared.py). Another connection holds the image row, the lock the save's write
    takes first, and commits version 1 once the save waits for it. (SQLite's single writer lock makes this
    interleaving impossible.)"""
    app = build_app(tmp_path, "postgresql")
    user, token = make_user(app, "annie", "annotator")
    client = ApiClient(app, user, token)
    image_id = make_image(app)
    with app.app_context():
        engine = db.engine
    holder, watcher = engine.connect(), engine.connect()
    outcome: dict = {}
    saver = threading.Thread(target=lambda: outcome.update(
        answer=_put(client, image_id, [region(square(0, 0, 10, 10), id="late")], 0)()))
    try:
        holder_pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
        holder.execute(text("SELECT id FROM images WHERE id = :id FOR UPDATE"), {"id": image_id})
        holder.execute(text("UPDATE annotations SET version = 1 WHERE image_id = :id"), {"id": image_id})
        saver.start()
        deadline = time.monotonic() + 30
        while not watcher.execute(text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                                  {"pid": holder_pid}).scalar_one():
            assert time.monotonic() < deadline, "the save never waited for the image row its write locks first"
            watcher.rollback()  # a fresh snapshot of pg_stat_activity
            time.sleep(0.02)
        holder.commit()
        saver.join(60)
    finally:
        holder.close()
        watcher.close()
    status, body = outcome["answer"]
    assert status == 409, body
    assert body["error"]["code"] == "stale_version" and body["error"]["details"]["current"]["version"] == 1
    state = stored(app, image_id)
    assert state["version"] == 1 and state["revisions"] == [] and state["regions"] == []
    assert state["status"] == "new"
    with app.app_context():
        db.engine.dispose()
