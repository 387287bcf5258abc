"""Keyset paging of the image list (after_id / next_after_id)."""
from __future__ import annotations

from .test_images import _ids, _seed


def test_keyset_pages_walk_the_list_in_id_order(app, annotator):
    ids = _seed(app)
    first = annotator.get("/api/v1/images?per_page=2")
    body = first.get_json()
    assert _ids(first) == ids[:2] and body["total"] == 5 and body["next_after_id"] == ids[1]
    seen, after = [], 0
    while after is not None:
        resp = annotator.get(f"/api/v1/images?after_id={after}&per_page=2")
        seen += _ids(resp)
        body = resp.get_json()
        assert body["total"] == 5
        after = body["next_after_id"]
    assert seen == ids
    # The last page says there is no next one, with OFFSET paging as well; an exactly full last page too.
    assert annotator.get("/api/v1/images?page=3&per_page=2").get_json()["next_after_id"] is None
    assert annotator.get("/api/v1/images?per_page=5").get_json()["next_after_id"] is None
    assert annotator.get("/api/v1/images?page=1&per_page=4").get_json()["next_after_id"] == ids[3]
    assert _ids(annotator.get(f"/api/v1/images?after_id={ids[-1]}")) == []


def test_keyset_paging_with_filters(app, annotator):
    ids = _seed(app)  # ids[1:] are new, ids[1] and ids[3] are synthetic
    resp = annotator.get("/api/v1/images?status=new&per_page=2")
    assert _ids(resp) == ids[1:3] and resp.get_json()["next_after_id"] == ids[2]
    resp = annotator.get(f"/api/v1/images?status=new&per_page=2&after_id={ids[2]}")
    assert _ids(resp) == ids[3:5] and resp.get_json()["total"] == 4 and resp.get_json()["next_after_id"] is None
    assert _ids(annotator.get(f"/api/v1/images?source=synthetic&after_id={ids[1]}")) == [ids[3]]
    assert _ids(annotator.get(f"/api/v1/images?style=tribal&after_id={ids[1]}")) == [ids[2]]


def test_after_id_is_validated_and_documented(app, annotator):
    for bad in ("after_id=-1", "after_id=abc", "after_id=1.5", f"after_id={2**31}"):
        resp = annotator.get(f"/api/v1/images?{bad}")
        assert resp.status_code == 422, bad
    spec = annotator.get("/api/v1/openapi.json").get_json()
    params = {p["name"]: p for p in spec["paths"]["/api/v1/images"]["get"]["parameters"]}
    assert "after_id" in params and params["after_id"]["in"] == "query"
    schema = spec["components"]["schemas"]["ImageList"]
    assert "next_after_id" in schema["properties"]
