"""Issue 18 items 5-8: the workflow's rules hold on every write (backend/core/write_rules.py, backend/core/workflow/), on
SQLite and PostgreSQL; each refused request leaves the stored document as it was."""
from __future__ import annotations

from datetime import timedelta

from backend.db.extensions import db
from backend.db.models import Assignment, Image, utcnow

from .test_queue import next_image, region, seed_images, uid

EMPTY_TAGS = {"styles": [], "flags": []}


def put(client, image_id: int, base_version: int, rid: str = "r"):
    return client.put(f"/api/v1/images/{image_id}/annotation",
                      json={"base_version": base_version, "regions": [region(rid)], "tags": EMPTY_TAGS})


def version(client, image_id: int) -> int:
    return client.get(f"/api/v1/images/{image_id}/annotation").get_json()["version"]


def expire_lease(app, image_id: int) -> None:
    with app.app_context():
        db.session.get(Image, image_id).lock_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()


def code(resp) -> str:
    return resp.get_json()["error"]["code"]


def test_only_the_lease_holder_writes_and_submits(app, make_client):
    [image_id] = seed_images(app, 1)
    alice, bob = make_client("annotator"), make_client("annotator")
    assert next_image(alice).get_json()["image_id"] == image_id
    refused = put(bob, image_id, 0)
    assert refused.status_code == 409 and code(refused) == "leased"
    assert bob.post(f"/api/v1/images/{image_id}/submit").status_code == 409
    assert version(alice, image_id) == 0
    assert alice.post("/api/v1/queue/heartbeat", json={"image_id": image_id}).status_code == 200  # not lease_lost
    assert put(alice, image_id, 0).status_code == 200
    # A save takes a free lease: after Alice's lease ran out, Bob's save makes him the holder.
    expire_lease(app, image_id)
    assert put(bob, image_id, 1).status_code == 200
    assert put(alice, image_id, 2).status_code == 409
    assert alice.post("/api/v1/queue/heartbeat", json={"image_id": image_id}).status_code == 409


def test_submitted_is_read_only_to_annotators_and_rejected_stays_with_its_annotator(app, make_client):
    [image_id] = seed_images(app, 1)
    alice, bob, reviewer = make_client("annotator"), make_client("annotator"), make_client("reviewer")
    next_image(alice)
    assert put(alice, image_id, 0).status_code == 200
    assert alice.post(f"/api/v1/images/{image_id}/submit").status_code == 200
    for who in (alice, bob):
        resp = put(who, image_id, 1)
        assert resp.status_code == 403 and code(resp) == "submitted"
    rejected = reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "reject", "comment": "arm"})
    assert rejected.status_code == 201
    wipe = bob.put(f"/api/v1/images/{image_id}/annotation",
                   json={"base_version": 1, "regions": [], "tags": EMPTY_TAGS})
    assert wipe.status_code == 403 and code(wipe) == "not_yours"
    assert bob.post(f"/api/v1/images/{image_id}/submit").status_code == 403
    assert len(alice.get(f"/api/v1/images/{image_id}/annotation").get_json()["regions"]) == 1
    assert put(alice, image_id, 1, "fixed").status_code == 200  # hers to fix
    assert alice.post(f"/api/v1/images/{image_id}/submit").status_code == 200


def test_reviewer_cannot_accept_an_image_they_wrote_and_credit_goes_to_authors(app, make_client):
    """The issue's case: A leases, B submits, R rewrites, R accepts (was 201, credited to A)."""
    [image_id] = seed_images(app, 1)
    alice, bob = make_client("annotator"), make_client("annotator")
    rita, sam = make_client("reviewer"), make_client("reviewer")
    next_image(alice)
    expire_lease(app, image_id)  # Alice walked away without saving
    assert put(bob, image_id, 0).status_code == 200
    assert bob.post(f"/api/v1/images/{image_id}/submit").status_code == 200
    assert put(rita, image_id, 1, "rita").status_code == 200  # reviewers may fix submitted work
    own = rita.post(f"/api/v1/images/{image_id}/review", json={"decision": "accept", "comment": ""})
    assert own.status_code == 403 and code(own) == "own_work"
    accepted = sam.post(f"/api/v1/images/{image_id}/review", json={"decision": "accept", "comment": ""})
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["annotator_id"] == uid(bob)  # the annotator who wrote it, not who leased it
    stats = sam.get("/api/v1/stats").get_json()
    decided = {row["user_id"]: row for row in stats["throughput"]["per_annotator"]}
    assert decided[uid(bob)]["accepted"] == 1 and decided.get(uid(alice), {}).get("accepted", 0) == 0


def test_an_open_agreement_copy_hides_the_primary_from_its_holder(app, make_client):
    app.config["AGREEMENT_SHARE"] = 1.0
    [image_id] = seed_images(app, 1)
    alice, bob = make_client("annotator"), make_client("annotator")
    next_image(alice)
    assert put(alice, image_id, 0, "alice").status_code == 200
    assert alice.post(f"/api/v1/images/{image_id}/submit").status_code == 200
    assert next_image(bob).get_json()["kind"] == "agreement"
    for path in ("annotation", "revisions", "revisions/1"):
        resp = bob.get(f"/api/v1/images/{image_id}/{path}")
        assert resp.status_code == 403 and code(resp) == "agreement_open", path
        assert "alice" not in resp.get_data(as_text=True)
    with app.app_context():  # even were the image writable: no write to the primary
        db.session.get(Image, image_id).status = "in_progress"
        db.session.commit()
    assert code(put(bob, image_id, 1, "bob")) == "agreement_open"
    assert code(bob.post(f"/api/v1/images/{image_id}/submit")) == "agreement_open"
    assert alice.get(f"/api/v1/images/{image_id}/annotation").get_json()["regions"][0]["id"] == "alice"
    done = bob.put(f"/api/v1/images/{image_id}/agreement", json={"base_version": 0, "regions": [region("bob")],
                                                                  "complete": True})
    assert done.status_code == 200
    assert bob.get(f"/api/v1/images/{image_id}/annotation").status_code == 200  # completed: no longer hidden
    with app.app_context():
        assert db.session.query(Assignment).filter_by(kind="agreement").one().completed_at is not None


def test_taking_a_lease_is_a_post(app, make_client):
    [image_id] = seed_images(app, 1)
    alice = make_client("annotator")
    assert alice.get("/api/v1/queue/next").status_code in (404, 405)  # a cross-site link cannot lease
    with app.app_context():
        assert db.session.get(Image, image_id).assignee_id is None
    assert next_image(alice).status_code == 200
