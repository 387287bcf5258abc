"""Review: permissions, the submitted → accepted / rejected transitions, comments back to the annotator."""
from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import select

from backend.db.extensions import db
from backend.db.models import Assignment, Image, ImageScore, Review

from .test_queue import _error, annotate, image_row, next_image, region, seed_images, set_status, uid


_SEEDS = itertools.count(10_000)


def _submitted_image(app, annotator) -> int:
    """An image the annotator saved and submitted (opened directly, not through the queue)."""
    (image_id,) = seed_images(app, 1, start=next(_SEEDS))
    annotate(app, image_id, uid(annotator), [region("r1", style="tribal")], status="submitted")
    return image_id


def test_review_queue_lists_submitted_images_for_reviewers_only(app, annotator, reviewer, admin):
    seed_images(app, 2, status="new", start=0)
    seed_images(app, 1, status="accepted", start=10)
    submitted = _submitted_image(app, annotator)
    assert annotator.get("/api/v1/reviews/queue").status_code == 403
    body = reviewer.get("/api/v1/reviews/queue").get_json()
    assert body["total"] == 1 and [it["image_id"] for it in body["items"]] == [submitted]
    item = body["items"][0]
    assert item["annotator"]["id"] == uid(annotator) and item["regions"] == 1 and item["version"] == 1
    assert admin.get("/api/v1/reviews/queue?per_page=1&page=2").get_json() == {"items": [], "total": 1}
    assert reviewer.get("/api/v1/reviews/queue?per_page=0").status_code == 422


def test_accept_freezes_and_records(app, annotator, reviewer):
    image_id = _submitted_image(app, annotator)
    with app.app_context():
        db.session.add(ImageScore(image_id=image_id, strategy="uncertainty", score=0.5, parts={}))
        db.session.commit()
    resp = reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "accept", "comment": "nice"})
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["status"] == "accepted" and body["decision"] == "accept" and body["annotation_version"] == 1
    assert body["reviewer"]["id"] == uid(reviewer) and body["annotator_id"] == uid(annotator)
    row = image_row(app, image_id)
    assert row["status"] == "accepted" and row["assignee_id"] is None and row["lock_expires_at"] is None
    with app.app_context():
        reviews = db.session.scalars(select(Review)).all()
        assert [(r.image_id, r.decision, r.comment) for r in reviews] == [(image_id, "accept", "nice")]
        assert db.session.scalar(select(ImageScore).where(ImageScore.image_id == image_id)) is None
        primary = db.session.scalar(select(Assignment).where(Assignment.kind == "primary"))
        assert primary.completed_at is not None
    # Frozen: a second decision is refused, and the annotator can no longer save (the save service's rule).
    again = reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "reject", "comment": "x"})
    assert again.status_code == 409 and _error(again)["code"] == "not_submitted"
    from backend.core.annotations import save_document
    from backend.core.errors import Forbidden
    from backend.db.models import User

    with app.test_request_context():
        user = db.session.get(User, uid(annotator))
        with pytest.raises(Forbidden) as refused:
            save_document(image_id, user, 1, [], None)
        assert refused.value.code == "frozen"
    assert next_image(annotator).status_code == 404


def test_reject_needs_a_comment_and_returns_the_image(app, annotator, reviewer):
    image_id = _submitted_image(app, annotator)
    resp = reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "reject", "comment": "  "})
    assert resp.status_code == 422 and _error(resp)["code"] == "comment_required"
    assert image_row(app, image_id)["status"] == "submitted"
    resp = reviewer.post(f"/api/v1/images/{image_id}/review",
                         json={"decision": "reject", "comment": "the left arm tattoo is missing"})
    assert resp.status_code == 201 and resp.get_json()["status"] == "rejected"
    row = image_row(app, image_id)
    assert row["status"] == "rejected" and row["assignee_id"] == uid(annotator)
    history = annotator.get(f"/api/v1/images/{image_id}/reviews").get_json()["items"]
    assert history[0]["comment"] == "the left arm tattoo is missing" and history[0]["decision"] == "reject"
    back = next_image(annotator).get_json()
    assert back["image_id"] == image_id and back["kind"] == "rework"
    # Fixed and submitted again, then accepted: the history keeps both decisions, newest first.
    annotate(app, image_id, uid(annotator), [region("r1"), region("r2")], status="submitted")
    assert reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "accept"}).status_code == 201
    history = annotator.get(f"/api/v1/images/{image_id}/reviews").get_json()["items"]
    assert [h["decision"] for h in history] == ["accept", "reject"]
    assert [h["annotation_version"] for h in history] == [2, 1]


def test_review_permissions_and_states(app, make_client, annotator, reviewer, admin):
    (fresh,) = seed_images(app, 1, start=500)
    assert annotator.post(f"/api/v1/images/{fresh}/review", json={"decision": "accept"}).status_code == 403
    resp = reviewer.post(f"/api/v1/images/{fresh}/review", json={"decision": "accept"})
    assert resp.status_code == 409 and _error(resp)["details"]["status"] == "new"
    assert reviewer.post("/api/v1/images/99999/review", json={"decision": "accept"}).status_code == 404
    assert reviewer.get("/api/v1/images/99999/reviews").status_code == 404
    assert reviewer.post(f"/api/v1/images/{fresh}/review", json={"decision": "maybe"}).status_code == 422
    assert reviewer.post(f"/api/v1/images/{fresh}/review", json={"decision": "accept", "comment": 5}).status_code == 422
    # A reviewer who annotated the image cannot review it; an admin can review their own.
    own = _submitted_image(app, reviewer)
    resp = reviewer.post(f"/api/v1/images/{own}/review", json={"decision": "accept"})
    assert resp.status_code == 403 and _error(resp)["code"] == "own_work"
    admin_own = _submitted_image(app, admin)
    assert admin.post(f"/api/v1/images/{admin_own}/review", json={"decision": "accept"}).status_code == 201
    with app.app_context():
        assert db.session.scalar(select(Review).where(Review.image_id == own)) is None


def test_two_reviewers_at_once_one_wins(app, annotator, make_client):
    image_id = _submitted_image(app, annotator)
    reviewers = [make_client("reviewer") for _ in range(2)]
    results = [None, None]
    barrier = threading.Barrier(2)

    def worker(i, decision):
        barrier.wait()
        results[i] = reviewers[i].post(f"/api/v1/images/{image_id}/review",
                                       json={"decision": decision, "comment": "fix it"}).status_code

    threads = [threading.Thread(target=worker, args=(0, "accept")), threading.Thread(target=worker, args=(1, "reject"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [201, 409]
    with app.app_context():
        reviews = db.session.scalars(select(Review)).all()
        assert len(reviews) == 1
        assert db.session.get(Image, image_id).status == {"accept": "accepted", "reject": "rejected"}[reviews[0].decision]


def test_submitted_image_is_not_reviewable_twice_after_reject(app, annotator, reviewer):
    image_id = _submitted_image(app, annotator)
    reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "reject", "comment": "redo"})
    resp = reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "accept"})
    assert resp.status_code == 409
    set_status(app, image_id, "submitted")
    assert reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "accept"}).status_code == 201
