"""GET /api/v1/stats and /stats/me on a small seeded workspace with known answers."""
from __future__ import annotations

from datetime import timedelta

import pytest

from backend.db.extensions import db
from backend.db.models import Assignment, ModelVersion, Prediction, utcnow

from .test_queue import annotate, region, seed_images, uid


def square(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


@pytest.fixture
def seeded(app, make_client):
    alice, bob = make_client("annotator", "alice"), make_client("annotator", "bob")
    reviewer = make_client("reviewer", "rita")
    a, b = uid(alice), uid(bob)
    ids = seed_images(app, 6)
    img_pair1, img_pair2, img_prefill, img_plain, img_rejected, img_new = ids

    # Two agreement pairs: same style both times, IoU 1/3 and 1.
    annotate(app, img_pair1, a, [region("a1", square(10, 10, 50, 50), style="tribal")], time_spent_ms=1000,
             status="submitted")
    annotate(app, img_pair2, a, [region("a2", square(10, 10, 50, 50), style="japanese")], time_spent_ms=1000,
             status="submitted")
    with app.app_context():
        model = ModelVersion(kind="segmenter", name="unet-r18-v1", weights_path="x.safetensors", is_current=True)
        db.session.add(model)
        db.session.flush()
        mv = model.id
        now = utcnow()
        for image_id, geometry, style in ((img_pair1, square(30, 10, 70, 50), "tribal"),
                                          (img_pair2, square(10, 10, 50, 50), "japanese")):
            db.session.add(Assignment(image_id=image_id, user_id=b, kind="agreement", completed_at=now,
                                      document={"version": 1, "regions": [region("b", geometry, style=style)],
                                                "tags": {"styles": [], "flags": []}}))
        # The pre-fill of img_prefill: two regions; the annotator keeps p1, deletes p2, draws h1.
        db.session.add(Prediction(image_id=img_prefill, segmenter_id=mv, regions=[
            {"id": "p1", "geometry": square(10, 10, 50, 50), "style": "tribal", "confidence": 0.9},
            {"id": "p2", "geometry": square(60, 10, 90, 40), "style": "japanese", "confidence": 0.6},
        ], uncertainty={"score": 0.3}))
        db.session.commit()
    suggested = [region("p1", square(10, 10, 50, 50), style="tribal", source="model", model_version=mv),
                 region("p2", square(60, 10, 90, 40), style="japanese", source="model", model_version=mv)]
    annotate(app, img_prefill, a, suggested, time_spent_ms=3000)
    final = [suggested[0], region("h1", square(10, 60, 30, 80), style="tribal")]
    annotate(app, img_prefill, a, final, time_spent_ms=2000, status="submitted")
    annotate(app, img_plain, a, [region("c1", square(0, 0, 30, 30), style="fineline")], time_spent_ms=9000,
             status="submitted")
    annotate(app, img_rejected, b, [region("d1")], time_spent_ms=500, status="submitted",
             when=utcnow() - timedelta(days=1))
    for image_id, decision in ((img_prefill, "accept"), (img_plain, "accept"), (img_rejected, "reject")):
        resp = reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": decision, "comment": "ok"})
        assert resp.status_code == 201
    return {"alice": alice, "bob": bob, "reviewer": reviewer, "ids": ids, "mv": mv, "a": a, "b": b}


def test_stats_needs_a_reviewer(app, seeded):
    assert seeded["alice"].get("/api/v1/stats").status_code == 403
    assert seeded["reviewer"].get("/api/v1/stats?days=0").status_code == 422
    assert seeded["reviewer"].get("/api/v1/stats?bogus=1").status_code == 422


def test_status_counts_and_throughput(app, seeded):
    body = seeded["reviewer"].get("/api/v1/stats").get_json()
    assert body["images"]["by_status"] == {"new": 1, "in_progress": 0, "submitted": 2, "accepted": 2, "rejected": 1}
    assert body["images"]["total"] == 6 and body["images"]["flagged"] == 0
    per = {row["username"]: row for row in body["throughput"]["per_annotator"]}
    assert per["alice"]["saves"] == 5 and per["alice"]["images"] == 4 and per["alice"]["active_ms"] == 16000
    assert per["alice"]["accepted"] == 2 and per["alice"]["rejected"] == 0
    assert per["alice"]["active_ms_per_image"] == 4000
    assert per["bob"]["saves"] == 1 and per["bob"]["rejected"] == 1 and per["bob"]["active_ms"] == 500
    days = {(row["username"], row["date"]) for row in body["throughput"]["per_day"]}
    today = utcnow().date().isoformat()
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    assert ("alice", today) in days and ("bob", yesterday) in days
    # A one-day window leaves yesterday's work out.
    narrow = seeded["reviewer"].get("/api/v1/stats?days=1").get_json()
    assert {r["username"] for r in narrow["throughput"]["per_day"] if r["date"] == yesterday} <= {"bob"}


def test_agreement_per_pair_and_annotator(app, seeded):
    agreement = seeded["reviewer"].get("/api/v1/stats").get_json()["agreement"]
    overall = agreement["overall"]
    assert overall["images"] == 2
    assert overall["mean_iou"] == pytest.approx((1 / 3 + 1) / 2, abs=1e-3)
    assert overall["style_agreement"] == 1.0 and overall["kappa"] == pytest.approx(1.0)
    (pair,) = agreement["pairs"]
    assert {p["username"] for p in pair["annotators"]} == {"alice", "bob"} and pair["images"] == 2
    per = {row["username"]: row for row in agreement["per_annotator"]}
    assert per["alice"]["images"] == per["bob"]["images"] == 2
    assert per["bob"]["mean_iou"] == pytest.approx(overall["mean_iou"])
    ious = sorted(round(it["iou"], 3) for it in agreement["images"])
    assert ious == [0.333, 1.0]


def test_agreement_over_time_by_week(app, seeded):
    """Agreement per UTC week (the dashboard's curve): the pair done 8 days ago lands in an earlier week."""
    from sqlalchemy import select, update

    with app.app_context():
        first = db.session.scalar(select(Assignment.id).where(Assignment.kind == "agreement",
                                                              Assignment.image_id == seeded["ids"][0]))
        db.session.execute(update(Assignment).where(Assignment.id == first)
                           .values(completed_at=utcnow() - timedelta(days=8)))
        db.session.commit()
    weeks = seeded["reviewer"].get("/api/v1/stats").get_json()["agreement"]["per_week"]
    assert len(weeks) == 2 and weeks[0]["week"] < weeks[1]["week"]
    assert [w["images"] for w in weeks] == [1, 1]
    assert weeks[0]["mean_iou"] == pytest.approx(1 / 3, abs=1e-3) and weeks[1]["mean_iou"] == pytest.approx(1.0)


def test_prefill_usefulness(app, seeded):
    prefill = seeded["reviewer"].get("/api/v1/stats").get_json()["prefill"]
    assert prefill["sampled_accepted_images"] == 2
    (entry,) = prefill["per_model_version"]
    assert entry["model_version_id"] == seeded["mv"] and entry["model_name"] == "unet-r18-v1"
    assert entry["images"] == 1
    # Pre-fill p1 ∪ p2 = 1600 + 900 px; final p1 ∪ h1 = 1600 + 400 px; shared 1600 → IoU 1600 / 2900.
    assert entry["mask_iou"]["mean"] == pytest.approx(1600 / 2900, abs=0.01)
    assert entry["regions"]["suggested"] == 2 and entry["regions"]["unchanged"] == 1
    assert entry["regions"]["deleted"] == 1 and entry["regions"]["edited"] == 0
    assert entry["regions"]["share_deleted"] == 0.5
    assert entry["styles"] == {"suggested": 1, "taken": 1, "share_taken": 1.0}
    times = prefill["active_ms_per_image"]
    assert times["with_prefill"]["mean"] == 5000 and times["without_prefill"]["mean"] == 9000


def test_my_stats(app, seeded):
    me = seeded["alice"].get("/api/v1/stats/me").get_json()
    assert me["date"] == utcnow().date().isoformat()
    assert me["today"]["saves"] == 5 and me["today"]["images"] == 4 and me["today"]["active_ms"] == 16000
    assert me["today"]["accepted"] == 2 and me["today"]["rejected"] == 0
    assert me["my_images"]["accepted"] == 2 and me["to_fix"] == 0
    bob = seeded["bob"].get("/api/v1/stats/me").get_json()
    assert bob["today"]["saves"] == 0 and bob["today"]["agreement_copies"] == 2
    assert bob["today"]["rejected"] == 1 and bob["to_fix"] == 1 and bob["my_images"]["rejected"] == 1
    # A time zone 14 hours ahead can move "today" to tomorrow's date.
    ahead = seeded["alice"].get("/api/v1/stats/me?tz_offset_minutes=840").get_json()
    assert ahead["date"] >= me["date"]
    assert seeded["alice"].get("/api/v1/stats/me?tz_offset_minutes=5000").status_code == 422


def test_stats_on_an_empty_workspace(app, reviewer):
    body = reviewer.get("/api/v1/stats").get_json()
    assert body["images"]["total"] == 0
    assert body["agreement"]["overall"] == {"images": 0, "mean_iou": None, "style_agreement": None, "kappa": None}
    assert body["prefill"]["per_model_version"] == []
    assert reviewer.get("/api/v1/stats/me").get_json()["today"]["saves"] == 0
