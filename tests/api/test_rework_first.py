"""Issue 19 item 6: a rejected image comes back to its annotator before anything else, even while they hold a
lease on another image (the queue used to renew that lease and hand the rework out later)."""
from .test_queue import annotate, next_image, region, seed_images, uid


def test_rework_comes_before_the_image_being_worked_on(app, make_client, reviewer):
    ids = seed_images(app, 3)
    alice = make_client("annotator")
    assert next_image(alice).get_json()["image_id"] == ids[0]
    annotate(app, ids[0], uid(alice), [region("r1")], status="submitted")
    resp = reviewer.post(f"/api/v1/images/{ids[0]}/review", json={"decision": "reject", "comment": "missed the arm"})
    assert resp.status_code == 201
    alice.post("/api/v1/queue/release", json={"image_id": ids[0]})
    # Alice took a new image before she saw the rejection …
    with app.app_context():
        from backend.db.extensions import db
        from backend.db.models import Image

        db.session.get(Image, ids[0]).lock_expires_at = None
        db.session.commit()
    got = next_image(alice).get_json()
    assert got["image_id"] == ids[0] and got["kind"] == "rework"
    annotate(app, ids[0], uid(alice), [region("r1", style="japanese")], status="submitted")
    fresh = next_image(alice).get_json()
    assert fresh["image_id"] == ids[1] and fresh["kind"] == "annotate"
    reviewer.post(f"/api/v1/images/{ids[0]}/review", json={"decision": "reject", "comment": "still missing"})
    # … and asks for the next one while holding ids[1]: the rework comes first
    again = next_image(alice).get_json()
    assert again["image_id"] == ids[0] and again["kind"] == "rework" and "still missing" in again["reason"]
