"""Issue 19 item 8: assist answers come cleaned — near-duplicate vertices removed, simplified at a tolerance the
answer states (and the request may set), the wand bounded (no flood over the photo), and "nothing found" with a
note instead of a speck."""
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw


def _upload(client, img: Image.Image) -> int:
    out = io.BytesIO()
    img.save(out, "PNG")
    resp = client.upload([(out.getvalue(), "skin.png")])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["images"][0]["id"]


def _skin(width=400, height=300, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.zeros((height, width, 3), np.float32) + np.array([214, 170, 140], np.float32)
    base += np.linspace(-12, 12, width)[None, :, None]  # soft shading, like an arm
    base += rng.normal(0, 2.0, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def _vertices(geometry) -> list:
    polys = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [ring for poly in polys for ring in poly]


def test_box_over_bare_skin_says_nothing_found_instead_of_a_speck(annotator):
    img = _skin()
    ImageDraw.Draw(img).rectangle([200, 150, 206, 156], fill=(40, 35, 40))  # a 7×7 mole, no tattoo
    image_id = _upload(annotator, img)
    resp = annotator.post(f"/api/v1/images/{image_id}/assist", json={"tool": "box", "box": [100, 60, 320, 250]})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["geometry"] is None and "Nothing found" in body["note"]


def test_wand_on_skin_does_not_flood_the_photo(annotator):
    img = _skin()
    ImageDraw.Draw(img).ellipse([140, 90, 260, 210], outline=(30, 30, 40), width=6)
    image_id = _upload(annotator, img)
    resp = annotator.post(f"/api/v1/images/{image_id}/assist", json={"tool": "wand", "points": [[40, 40]]})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    if body["geometry"] is None:
        assert "no edge" in body["note"]
    else:
        assert body["area"] < 0.25 * 400 * 300, body["area"]


def test_wand_on_ink_is_kept_and_cleaned(annotator):
    img = _skin()
    ImageDraw.Draw(img).ellipse([150, 100, 250, 200], fill=(35, 30, 45))
    image_id = _upload(annotator, img)
    resp = annotator.post(f"/api/v1/images/{image_id}/assist", json={"tool": "wand", "points": [[200, 150]]})
    body = resp.get_json()
    assert body["geometry"] is not None and body["area"] == pytest.approx(3.14159 * 50 * 50, rel=0.15)
    assert body["simplify_tolerance"] == 1.0 and body["vertices_after"] <= body["vertices_before"]
    for ring in _vertices(body["geometry"]):
        steps = np.hypot(*np.diff(np.asarray(ring), axis=0).T)
        assert steps.min() >= 0.05, "near-duplicate vertices"
    fine = annotator.post(f"/api/v1/images/{image_id}/assist",
                          json={"tool": "wand", "points": [[200, 150]], "simplify": 0}).get_json()
    coarse = annotator.post(f"/api/v1/images/{image_id}/assist",
                            json={"tool": "wand", "points": [[200, 150]], "simplify": 4}).get_json()
    assert coarse["simplify_tolerance"] == 4 and coarse["vertices_after"] < body["vertices_after"] <= fine["vertices_after"]


def test_bad_simplify_is_422(annotator):
    image_id = _upload(annotator, _skin())
    for value in (-1, 100, "x"):
        resp = annotator.post(f"/api/v1/images/{image_id}/assist", json={"tool": "wand", "points": [[5, 5]], "simplify": value})
        assert resp.status_code == 422, resp.get_json()


def test_brush_stroke_leaves_no_near_duplicate_vertices(annotator):
    square = {"type": "Polygon", "coordinates": [[[100, 100], [200, 100], [200, 200], [100, 200], [100, 100]]]}
    stroke = {"type": "LineString", "coordinates": [[200, 150], [200.01, 150.01], [230, 150.02], [230.01, 150]]}
    image_id = _upload(annotator, _skin(400, 300))
    resp = annotator.post("/api/v1/geometry/union", json={"geometry": square, "stroke": stroke, "radius": 6,
                                                          "image_id": image_id})
    assert resp.status_code == 200, resp.get_json()
    for ring in _vertices(resp.get_json()["geometry"]):
        steps = np.hypot(*np.diff(np.asarray(ring), axis=0).T)
        assert steps.min() >= 0.05, sorted(steps)[:3]
