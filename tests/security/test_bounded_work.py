"""Issue 18 items 1-2: the work a geometry request may cause is bounded by the stored image and fixed caps, checked
before the expensive step (the attack bodies are the issue's, scaled to what the caps let through)."""
from __future__ import annotations

import random

import pytest

from backend.core.geometry import GeometryError, union_geometry, validate_geometry
from backend.core.geometry_bounds import MAX_REPAIR_CROSSINGS, TooComplex, check_crossings

from ..support.images import make_image


def zigzag(n: int, side: float = 1000.0) -> list[list[float]]:
    """A closed ring of n vertices whose edges cross each other about n^2/4 times (the issue's 2 KB polygon)."""
    ring = [[(i * 37 % n) / n * side, (i * 53 % n) / n * side] for i in range(n)]
    return ring + [ring[0]]


def test_brush_works_on_the_stored_image_size(app, annotator):
    image_id = make_image(app, 100, 80)
    body = {"stroke": {"type": "LineString", "coordinates": [[-50, 40], [500, 40]]}, "radius": 5,
            "image_id": image_id}
    resp = annotator.post("/api/v1/geometry/union", json=body)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["bbox"] == [0, 35, 100, 45]  # clipped to the stored 100 x 80, not a client's canvas
    sized = annotator.post("/api/v1/geometry/union", json={**body, "width": 1_000_000, "height": 1_000_000})
    assert sized.status_code == 422 and sized.get_json()["error"]["code"] == "invalid_body"
    missing = annotator.post("/api/v1/geometry/union", json={**body, "image_id": 2**31 - 1})
    assert missing.status_code == 404


def test_the_issues_brush_attack_is_refused_before_buffering(app, annotator):
    image_id = make_image(app, 2000, 2000)
    rng = random.Random(1)
    stroke = [[rng.random() * 2000, rng.random() * 2000] for _ in range(5000)]
    body = {"stroke": {"type": "LineString", "coordinates": stroke}, "radius": 10_000, "image_id": image_id}
    assert annotator.post("/api/v1/geometry/union", json=body).status_code == 422  # 5,000 points, radius 10,000
    # Within the point and radius caps, a random path is many brush radii long: refused by its length.
    body = {**body, "stroke": {"type": "LineString", "coordinates": stroke[:1000]}, "radius": 20}
    resp = annotator.post("/api/v1/geometry/union", json=body)
    assert resp.status_code == 422, resp.get_json()
    assert "brush radii" in resp.get_json()["error"]["message"]


def test_self_crossing_polygon_is_refused_before_repair(app, annotator):
    """150 vertices crossing each other ~5,000 times cost 8 s of make_valid; now the crossings are counted first."""
    image_id = make_image(app, 1000, 1000)
    region = {"id": "z", "geometry": {"type": "Polygon", "coordinates": [zigzag(150)]}}
    resp = annotator.put(f"/api/v1/images/{image_id}/annotation",
                         json={"base_version": 0, "regions": [region], "tags": {"styles": [], "flags": []}})
    assert resp.status_code == 422
    assert "cross in more than" in resp.get_json()["error"]["details"]["reason"]
    assert annotator.get(f"/api/v1/images/{image_id}/annotation").get_json()["version"] == 0
    brush = annotator.post("/api/v1/geometry/union", json={
        "geometry": region["geometry"], "stroke": {"type": "Point", "coordinates": [5, 5]}, "radius": 3,
        "image_id": image_id})
    assert brush.status_code == 422 and "cross in more than" in brush.get_json()["error"]["message"]


def test_repair_still_fixes_what_people_draw():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}
    assert validate_geometry(bowtie, 100, 100)["type"] == "MultiPolygon"
    small = validate_geometry({"type": "Polygon", "coordinates": [zigzag(30)]}, 1000, 1000)  # ~200 crossings
    assert small["type"] in ("Polygon", "MultiPolygon")


@pytest.mark.parametrize("n", [150, 2_000, 9_999])
def test_crossing_count_gives_up_within_its_budget(n):
    with pytest.raises(TooComplex):
        check_crossings([zigzag(n)], MAX_REPAIR_CROSSINGS, "the polygon")
    with pytest.raises(GeometryError):
        validate_geometry({"type": "Polygon", "coordinates": [zigzag(n)]}, 1000, 1000)


def test_overlay_of_two_combs_is_refused():
    def comb(teeth: int, flip: bool) -> dict:
        pts = [[10, 5]]
        for i in range(teeth):
            x0 = 10 + i * 980 / teeth
            pts += [[x0, 10], [x0, 990], [x0 + 490 / teeth, 990], [x0 + 490 / teeth, 10]]
        pts.append([990, 5])
        if flip:
            pts = [[y, x] for x, y in pts]
        return {"type": "Polygon", "coordinates": [pts + [pts[0]]]}

    with pytest.raises(GeometryError, match="cross in more than"):
        union_geometry(comb(1200, False), comb(1200, True), 1000, 1000)
