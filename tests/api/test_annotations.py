"""Annotation documents: GET/PUT with optimistic versions, validation (422 naming the region), submit, history,
and the brush/eraser geometry endpoints. Every test checks what is stored afterwards, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import math
import secrets

import pytest
from sqlalchemy import func, select

from backend.db.extensions import db
from backend.db.models import Annotation, AnnotationRevision, Image, ImageTag, Region, utcnow

from ..support.images import make_image

SQUARE_WITH_HOLE = {
    "type": "Polygon",
    "coordinates": [
        [[10, 10], [110.5, 10], [110.5, 80.25], [10, 80.25], [10, 10]],
        [[30, 30], [30, 50], [50, 50], [50, 30], [30, 30]],
    ],
}


def stored(app, image_id: int) -> dict:
    """What the database holds for an image: version, document, revisions, Region rows, status, flags, styles."""
    with app.app_context():
        ann = db.session.get(Annotation, image_id)
        image = db.session.get(Image, image_id)
        regions = db.session.scalars(select(Region).where(Region.image_id == image_id).order_by(Region.pk)).all()
        revisions = db.session.scalars(
            select(AnnotationRevision).where(AnnotationRevision.image_id == image_id)
            .order_by(AnnotationRevision.version)).all()
        tags = db.session.execute(select(ImageTag.kind, ImageTag.key).where(ImageTag.image_id == image_id)).all()
        return {
            "version": ann.version,
            "image_tags": sorted(f"{kind}:{key}" for kind, key in tags),
            "document": ann.document,
            "updated_by": ann.updated_by,
            "revisions": [(r.version, r.author_id, r.time_spent_ms) for r in revisions],
            "regions": [
                {"id": r.id, "style": r.style, "motifs": r.motifs, "source": r.source, "area": r.area,
                 "bbox": r.bbox, "geometry": r.geometry, "model_version_id": r.model_version_id}
                for r in regions
            ],
            "status": image.status,
            "flags": image.flags,
            "styles": image.styles,
        }


def square(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def region(geometry, **extra):
    return {"geometry": geometry, **extra}


def save(client, image_id, regions, base_version=0, tags=None, **extra):
    body = {"base_version": base_version, "regions": regions, "tags": tags or {"styles": [], "flags": []}}
    body.update(extra)
    return client.put(f"/api/v1/images/{image_id}/annotation", json=body)


def me(client) -> dict:
    """id and username of an ApiClient's user (its ORM object is detached)."""
    return client.get("/api/v1/auth/me").get_json()["user"]


def error_of(resp):
    body = resp.get_json()
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


# --- reading and saving ------------------------------------------------------------------------------------------


def test_new_image_has_empty_document(app, annotator):
    image_id = make_image(app)
    resp = annotator.get(f"/api/v1/images/{image_id}/annotation")
    assert resp.status_code == 200
    assert resp.get_json() == {"version": 0, "regions": [], "tags": {"styles": [], "flags": []}}


def test_polygon_with_hole_round_trips_exactly(app, annotator):
    image_id = make_image(app)
    resp = save(annotator, image_id, [region(SQUARE_WITH_HOLE, id="r1", style="tribal", motifs=["rose", "skull"])],
                tags={"styles": ["blackwork"], "flags": []}, time_spent_ms=4200)
    assert resp.status_code == 200, resp.get_json()
    doc = resp.get_json()
    assert doc["version"] == 1
    assert doc["regions"][0]["geometry"] == SQUARE_WITH_HOLE
    # Ints stay ints and floats floats: byte-for-byte the same coordinates in the JSON text.
    fetched = annotator.get(f"/api/v1/images/{image_id}/annotation").get_json()["regions"][0]["geometry"]
    text = json.dumps(fetched, sort_keys=True)
    assert text == json.dumps(SQUARE_WITH_HOLE, sort_keys=True)

    state = stored(app, image_id)
    assert state["version"] == 1
    assert state["revisions"] == [(1, me(annotator)["id"], 4200)]
    assert state["updated_by"] == me(annotator)["id"]
    assert state["document"]["regions"][0]["geometry"] == SQUARE_WITH_HOLE
    [row] = state["regions"]
    assert row["id"] == "r1" and row["style"] == "tribal" and row["motifs"] == ["rose", "skull"]
    assert row["source"] == "human"
    assert row["area"] == pytest.approx(100.5 * 70.25 - 400)
    assert row["bbox"] == [10, 10, 110.5, 80.25]
    assert state["status"] == "in_progress"
    assert state["styles"] == ["blackwork", "tribal"]  # image-level styles, then region styles


def test_multipolygon_is_kept(app, annotator):
    image_id = make_image(app)
    multi = {"type": "MultiPolygon", "coordinates": [square(0, 0, 10, 10)["coordinates"],
                                                      square(20, 20, 40, 30)["coordinates"]]}
    resp = save(annotator, image_id, [region(multi, id="m")])
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["regions"][0]["geometry"] == multi
    [row] = stored(app, image_id)["regions"]
    assert row["geometry"] == multi and row["area"] == pytest.approx(100 + 200)
    assert row["bbox"] == [0, 0, 40, 30]


def test_self_intersecting_polygon_is_repaired(app, annotator):
    """Documented policy: a bow-tie is REPAIRED (shapely make_valid, polygonal parts kept), not refused."""
    image_id = make_image(app)
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [20, 20], [20, 0], [0, 20], [0, 0]]]}
    resp = save(annotator, image_id, [region(bowtie, id="bow")])
    assert resp.status_code == 200, resp.get_json()
    geometry = resp.get_json()["regions"][0]["geometry"]
    assert geometry["type"] == "MultiPolygon" and len(geometry["coordinates"]) == 2
    [row] = stored(app, image_id)["regions"]
    assert row["area"] == pytest.approx(200.0)  # two triangles of 100
    assert row["geometry"] == geometry


def test_points_outside_the_image_are_clipped(app, annotator):
    image_id = make_image(app, width=200, height=100)
    resp = save(annotator, image_id, [region(square(-50, 50, 250, 150), id="c")])
    assert resp.status_code == 200
    [row] = stored(app, image_id)["regions"]
    assert row["area"] == pytest.approx(200 * 50)
    assert row["bbox"] == [0, 50, 200, 100]


def test_region_ids_are_assigned_and_kept(app, annotator):
    image_id = make_image(app)
    resp = save(annotator, image_id, [region(square(0, 0, 10, 10)), region(square(20, 0, 30, 10), id="mine")])
    ids = [r["id"] for r in resp.get_json()["regions"]]
    assert len(ids[0]) == 32 and ids[1] == "mine"
    assert [r["id"] for r in stored(app, image_id)["regions"]] == ids


def test_save_replaces_regions_and_tags(app, annotator):
    image_id = make_image(app)
    first = save(annotator, image_id, [region(square(0, 0, 10, 10), id="a", style="japanese"),
                                       region(square(20, 0, 30, 10), id="b")],
                 tags={"styles": [], "flags": ["bad_example"]})
    assert first.status_code == 200
    state = stored(app, image_id)
    assert state["flags"] == ["bad_example"]
    assert state["image_tags"] == ["flag:bad_example", "style:japanese"]  # the image list's filter index
    second = save(annotator, image_id, [region(square(0, 0, 5, 5), id="a", source="model", confidence=0.5)],
                  base_version=1, tags={"styles": ["fineline"], "flags": []})
    assert second.status_code == 200 and second.get_json()["version"] == 2
    state = stored(app, image_id)
    assert [(r["id"], r["source"], r["area"]) for r in state["regions"]] == [("a", "model", 25.0)]
    assert state["flags"] == [] and state["styles"] == ["fineline"]
    assert state["image_tags"] == ["style:fineline"]
    assert [v for v, _, _ in state["revisions"]] == [1, 2]


def test_model_version_must_exist(app, annotator):
    from backend.db.models import ModelVersion

    image_id = make_image(app)
    resp = save(annotator, image_id, [region(square(0, 0, 10, 10), source="model", model_version=999)])
    assert resp.status_code == 422 and error_of(resp)["details"]["region"] == 0
    # Ids beyond the INTEGER range never reach SQL (PostgreSQL would fail on them): refused by the API and the service.
    assert save(annotator, image_id, [region(square(0, 0, 10, 10), model_version=2**40)]).status_code == 422
    from backend.core.document_checks import clean_region
    from backend.core.errors import Invalid
    with pytest.raises(Invalid) as refused:
        clean_region(3, region(square(0, 0, 10, 10), model_version=2**40), 100, 100, set())
    assert refused.value.code == "invalid_region" and refused.value.details["region"] == 3
    with app.app_context():
        mv = ModelVersion(kind="segmenter", name="unet", weights_path="x.safetensors")
        db.session.add(mv)
        db.session.commit()
        mv_id = mv.id
    resp = save(annotator, image_id, [region(square(0, 0, 10, 10), source="model", model_version=mv_id)])
    assert resp.status_code == 200
    assert stored(app, image_id)["regions"][0]["model_version_id"] == mv_id


# --- refused saves leave everything as it was ---------------------------------------------------------------------


def _baseline(app, annotator):
    image_id = make_image(app)
    assert save(annotator, image_id, [region(SQUARE_WITH_HOLE, id="keep", style="tribal")]).status_code == 200
    return image_id, stored(app, image_id)


def _assert_unchanged(app, image_id, before):
    assert stored(app, image_id) == before


RING_TWO_POINTS = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [0, 0]]]}
many = [[50 + 40 * math.cos(k / 3183.0), 50 + 40 * math.sin(k / 3183.0)] for k in range(20_000)]
TWENTY_K = {"type": "Polygon", "coordinates": [many + [many[0]]]}


INVALID_GEOMETRIES = [
    (RING_TWO_POINTS, "at least 3 distinct points"),
    (TWENTY_K, "too many vertices"),
    (square(300, 300, 400, 400), "empty after clipping"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [20, 20], [0, 0]]]}, "empty after repair"),
]


def test_invalid_geometry_is_422_naming_the_region(app, annotator):
    image_id, before = _baseline(app, annotator)
    for geometry, reason in INVALID_GEOMETRIES:
        resp = save(annotator, image_id, [region(square(0, 0, 10, 10)), region(geometry)], base_version=1)
        assert resp.status_code == 422, reason
        err = error_of(resp)
        assert err["details"]["region"] == 1 and reason in err["details"]["reason"], err
        assert "Region 1" in err["message"]
        _assert_unchanged(app, image_id, before)


BAD_NUMBERS = [
    ('[[0, 0], [NaN, 0], [5, 5]]', 400),
    ('[[0, 0], [Infinity, 0], [5, 5]]', 400),
    ('[[0, 0], [-Infinity, 0], [5, 5]]', 400),
    ('[[0, 0], [1e999, 0], [5, 5]]', 422),
    ('[[0, 0], ["10", 0], [5, 5]]', 422),
    ('[[0, 0], [true, 0], [5, 5]]', 422),
    ('[[0, 0], [null, 0], [5, 5]]', 422),
    ('[[0, 0], [1, 2, 3], [5, 5]]', 422),
    ('[[0, 0], [[1], 2], [5, 5]]', 422),
    ('[[0, 0], {"x": 1}, [5, 5]]', 422),
]


def test_bad_numbers_in_raw_bodies_are_refused(app, annotator):
    """Raw JSON text: NaN/Infinity are not JSON (400); overflow, strings, booleans, nulls, junk are 422."""
    image_id, before = _baseline(app, annotator)
    for raw, status in BAD_NUMBERS:
        body = ('{"base_version": 1, "tags": {"styles": [], "flags": []}, '
                '"regions": [{"geometry": {"type": "Polygon", "coordinates": [%s]}}]}' % raw)
        resp = annotator.put(f"/api/v1/images/{image_id}/annotation", data=body,
                             headers={"Content-Type": "application/json"})
        assert resp.status_code == status, (raw, resp.get_json())
        error_of(resp)
        _assert_unchanged(app, image_id, before)


BAD_FIELDS = [
    ([region(square(0, 0, 10, 10), style="not-a-style")], None, "invalid_region"),
    ([], {"styles": ["not-a-style"], "flags": []}, "unknown_style"),
    ([], {"styles": [], "flags": ["not-a-flag"]}, "unknown_flag"),
    ([region(square(0, 0, 10, 10), id="x"), region(square(20, 0, 30, 10), id="x")], None, "invalid_region"),
    ([region(square(0, 0, 10, 10), motifs=["m"] * 51)], None, "invalid_body"),
    ([region(square(0, 0, 10, 10), source="robot")], None, "invalid_body"),
    ([region(square(0, 0, 10, 10), confidence=1.5)], None, "invalid_body"),
    ([region(square(0, 0, 10, 10), colour="red")], None, "invalid_body"),
    ([region({"type": "Point", "coordinates": [1, 2]})], None, "invalid_body"),
    ([region(square(0, 0, 10, 10), id="../etc")], None, "invalid_body"),
]


def test_bad_fields_are_422(app, annotator):
    image_id, before = _baseline(app, annotator)
    for regions, tags, code in BAD_FIELDS:
        resp = save(annotator, image_id, regions, base_version=1, tags=tags)
        assert resp.status_code == 422, (regions, tags, resp.get_json())
        assert error_of(resp)["code"] == code
        _assert_unchanged(app, image_id, before)


def test_unknown_style_names_the_region(app, annotator):
    image_id, before = _baseline(app, annotator)
    resp = save(annotator, image_id, [region(square(0, 0, 10, 10)), region(square(0, 0, 5, 5), style="emo")],
                base_version=1)
    err = error_of(resp)
    assert resp.status_code == 422 and err["details"]["region"] == 1 and "emo" in err["details"]["reason"]
    _assert_unchanged(app, image_id, before)


MALFORMED = [
    {"base_version": "1", "regions": [], "tags": {"styles": [], "flags": []}},
    {"base_version": True, "regions": [], "tags": {"styles": [], "flags": []}},
    {"base_version": 1, "regions": {}, "tags": {"styles": [], "flags": []}},
    {"base_version": 1, "regions": []},
    {"base_version": 1, "regions": [], "tags": {"styles": [], "flags": []}, "time_spent_ms": -1},
    {"base_version": 1, "regions": [], "tags": {"styles": [], "flags": []}, "extra": 1},
    [],
    None,
]


def test_malformed_bodies_are_4xx(app, annotator):
    image_id, before = _baseline(app, annotator)
    for body in MALFORMED:
        resp = annotator.put(f"/api/v1/images/{image_id}/annotation", data=json.dumps(body),
                             headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500, body
        error_of(resp)
        _assert_unchanged(app, image_id, before)
    resp = annotator.put(f"/api/v1/images/{image_id}/annotation", data="base_version=2",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415
    _assert_unchanged(app, image_id, before)


def test_ten_megabyte_body_is_413(app, annotator):
    image_id, before = _baseline(app, annotator)
    ring = [[1.123456789, 2.123456789]] * 500_000  # ~12 MB of JSON
    body = json.dumps({"base_version": 1, "tags": {"styles": [], "flags": []},
                       "regions": [{"geometry": {"type": "Polygon", "coordinates": [ring]}}]})
    assert len(body) > 10_000_000
    resp = annotator.put(f"/api/v1/images/{image_id}/annotation", data=body,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    error_of(resp)
    _assert_unchanged(app, image_id, before)


def test_stale_base_version_is_409_with_the_current_document(app, annotator, make_client):
    image_id, before = _baseline(app, annotator)
    other = make_client("reviewer")  # (another annotator would meet the lease first: see test_write_rules.py)
    resp = save(other, image_id, [region(square(0, 0, 10, 10))], base_version=0)
    assert resp.status_code == 409
    err = error_of(resp)
    assert err["code"] == "stale_version"
    assert err["details"]["current"] == annotator.get(f"/api/v1/images/{image_id}/annotation").get_json()
    assert err["details"]["current"]["version"] == 1
    _assert_unchanged(app, image_id, before)
    # A version from the future is stale too.
    assert save(other, image_id, [], base_version=7).status_code == 409
    _assert_unchanged(app, image_id, before)


def test_unknown_image_is_404(app, annotator):
    assert annotator.get("/api/v1/images/999/annotation").status_code == 404
    assert save(annotator, 999, []).status_code == 404
    assert annotator.post("/api/v1/images/999/submit").status_code == 404
    assert annotator.get("/api/v1/images/999/revisions").status_code == 404


def test_annotation_routes_need_a_user(app):
    image_id = make_image(app)
    client = app.test_client()
    assert client.get(f"/api/v1/images/{image_id}/annotation").status_code == 401
    assert client.put(f"/api/v1/images/{image_id}/annotation", json={}).status_code == 401
    assert stored(app, image_id)["version"] == 0


def test_image_without_annotation_row_gets_one_on_first_save(app, annotator):
    with app.app_context():
        image = Image(sha256=secrets.token_hex(32), width=50, height=50, format="png")
        db.session.add(image)
        db.session.commit()
        image_id = image.id
    assert annotator.get(f"/api/v1/images/{image_id}/annotation").get_json()["version"] == 0
    assert save(annotator, image_id, [region(square(0, 0, 10, 10))]).status_code == 200
    assert stored(app, image_id)["version"] == 1


# --- frozen (accepted) images, submit, history --------------------------------------------------------------------


def test_accepted_images_are_frozen_for_annotators(app, annotator, reviewer):
    image_id = make_image(app, status="accepted")
    resp = save(annotator, image_id, [region(square(0, 0, 10, 10))])
    assert resp.status_code == 403 and error_of(resp)["code"] == "frozen"
    assert stored(app, image_id)["version"] == 0 and stored(app, image_id)["revisions"] == []
    resp = save(reviewer, image_id, [region(square(0, 0, 10, 10))], time_spent_ms=10)
    assert resp.status_code == 200
    state = stored(app, image_id)
    assert state["version"] == 1 and state["revisions"] == [(1, me(reviewer)["id"], 10)]
    assert state["status"] == "accepted"


def test_an_image_accepted_while_a_save_validates_stays_frozen(app, annotator, monkeypatch):
    """The write transaction checks the status again (from its first UPDATE's RETURNING): a review that accepts the
    image between the save's read and its write wins, and the save writes nothing, not even the image's tags."""
    import backend.core.document_checks as document_checks

    image_id = make_image(app)
    real_load_taxonomy = document_checks.load_taxonomy

    def accept_meanwhile(workspace):  # runs in step 2, with no transaction of the save open
        with db.engine.begin() as conn:
            conn.execute(Image.__table__.update().where(Image.id == image_id).values(status="accepted"))
        return real_load_taxonomy(workspace)

    monkeypatch.setattr(document_checks, "load_taxonomy", accept_meanwhile)
    resp = save(annotator, image_id, [region(square(0, 0, 10, 10), style="tribal")],
                tags={"styles": [], "flags": ["duplicate"]})
    assert resp.status_code == 403 and error_of(resp)["code"] == "frozen"
    state = stored(app, image_id)
    assert state["version"] == 0 and state["revisions"] == [] and state["status"] == "accepted"
    assert state["flags"] == [] and state["styles"] == [] and state["image_tags"] == []


def test_submit(app, annotator):
    image_id = make_image(app)
    with app.app_context():  # leased to the annotator by the queue: submitting ends the lease
        image = db.session.get(Image, image_id)
        image.assignee_id, image.lock_expires_at = me(annotator)["id"], utcnow()
        db.session.commit()
    resp = annotator.post(f"/api/v1/images/{image_id}/submit")
    assert resp.status_code == 200 and resp.get_json() == {"id": image_id, "status": "submitted", "version": 0}
    assert stored(app, image_id)["status"] == "submitted"
    with app.app_context():
        image = db.session.get(Image, image_id)
        assert image.assignee_id is None and image.lock_expires_at is None
    again = annotator.post(f"/api/v1/images/{image_id}/submit")
    assert again.status_code == 409 and "submitted" in error_of(again)["message"]
    assert stored(app, image_id)["status"] == "submitted"


@pytest.mark.parametrize("status, code", [("in_progress", 200), ("rejected", 200), ("accepted", 409)])
def test_submit_from_states(app, annotator, status, code):
    image_id = make_image(app, status=status)
    assert annotator.post(f"/api/v1/images/{image_id}/submit").status_code == code
    assert stored(app, image_id)["status"] == ("submitted" if code == 200 else status)


def test_revisions_history(app, annotator, make_client):
    image_id = make_image(app)
    second = make_client("reviewer")  # writes whoever holds the lease
    assert save(annotator, image_id, [region(square(0, 0, 10, 10), id="a")], time_spent_ms=1000).status_code == 200
    assert save(second, image_id, [], base_version=1, time_spent_ms=2500).status_code == 200
    resp = annotator.get(f"/api/v1/images/{image_id}/revisions")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["total"] == 2
    assert [(i["version"], i["author"]["username"], i["time_spent_ms"]) for i in body["items"]] == [
        (2, me(second)["username"], 2500), (1, me(annotator)["username"], 1000)]
    assert all(i["created_at"] for i in body["items"])
    page = annotator.get(f"/api/v1/images/{image_id}/revisions?per_page=1&page=2").get_json()
    assert [i["version"] for i in page["items"]] == [1]
    detail = annotator.get(f"/api/v1/images/{image_id}/revisions/1").get_json()
    assert [r["id"] for r in detail["document"]["regions"]] == ["a"] and detail["document"]["version"] == 1
    assert annotator.get(f"/api/v1/images/{image_id}/revisions/9").status_code == 404
    assert annotator.get(f"/api/v1/images/{image_id}/revisions?per_page=0").status_code == 422


# --- brush / eraser -----------------------------------------------------------------------------------------------


def test_geometry_union_and_difference(app, annotator):
    image_id = make_image(app, 100, 100)
    resp = annotator.post("/api/v1/geometry/union", json={
        "geometry": square(0, 0, 10, 10), "stroke": square(5, 0, 20, 10), "image_id": image_id})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["area"] == pytest.approx(200) and body["bbox"] == [0, 0, 20, 10]
    assert body["geometry"]["type"] == "Polygon"

    resp = annotator.post("/api/v1/geometry/difference", json={
        "geometry": square(0, 0, 10, 10), "stroke": square(0, 0, 5, 10), "image_id": image_id})
    assert resp.get_json()["area"] == pytest.approx(50)

    erased = annotator.post("/api/v1/geometry/difference", json={
        "geometry": square(0, 0, 10, 10), "stroke": square(-5, -5, 50, 50), "image_id": image_id})
    assert erased.status_code == 200 and erased.get_json()["geometry"] is None

    brush = annotator.post("/api/v1/geometry/union", json={
        "stroke": {"type": "LineString", "coordinates": [[10, 50], [90, 50]]}, "radius": 5,
        "image_id": image_id})
    assert brush.status_code == 200
    assert brush.get_json()["area"] == pytest.approx(80 * 10 + 3.14159 * 25, rel=0.02)

    hole = annotator.post("/api/v1/geometry/difference", json={
        "geometry": square(0, 0, 60, 60), "stroke": {"type": "Point", "coordinates": [30, 30]}, "radius": 10,
        "image_id": image_id})
    geometry = hole.get_json()["geometry"]
    assert geometry["type"] == "Polygon" and len(geometry["coordinates"]) == 2  # outer ring + the erased hole


BAD_OPS = [
    {"geometry": square(0, 0, 10, 10), "stroke": {"type": "LineString", "coordinates": [[0, 0], [5, 5]]}},
    {"stroke": square(200, 200, 300, 300)},  # outside the image
    {"stroke": square(0, 0, 10, 10), "width": 100, "height": 100},  # the size is the stored image's, not the client's
    {"stroke": square(0, 0, 10, 10), "image_id": "1"},
    {"geometry": None, "stroke": square(0, 0, 10, 10), "radius": -1},
]


def test_geometry_ops_refuse_bad_input(app, annotator):
    image_id = make_image(app, 100, 100)
    for raw in BAD_OPS:
        body = {"image_id": image_id, **raw}
        resp = annotator.post("/api/v1/geometry/union", json=body)
        assert resp.status_code == 422, (body, resp.get_json())
        error_of(resp)
        resp = annotator.post("/api/v1/geometry/difference", json={**body, "geometry": square(0, 0, 5, 5)})
        assert resp.status_code == 422, body


def test_region_rows_match_documents(app, annotator):
    """The denormalised rows always describe the current document (what exports and queries read)."""
    image_id = make_image(app)
    save(annotator, image_id, [region(square(0, 0, 10, 10), id=f"r{i}") for i in range(5)])
    save(annotator, image_id, [region(square(0, 0, 10, 10), id="r9")], base_version=1)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Region)) == 1
