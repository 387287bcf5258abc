"""Issue 19 items 3 and 6 (API side): overridden submit checks with reasons are recorded and shown to the reviewer
with who annotated the image, for how long, and the document at the last rejection."""
import pytest


def _square(x0=10, y0=10, s=50):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s], [x0, y0]]]}


@pytest.fixture
def image_id(annotator):
    from ..support.images import two_tone_jpeg as jpeg

    resp = annotator.upload([(jpeg(200, 150), "arm.jpg")])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["images"][0]["id"]


def test_overrides_and_review_info(app, make_client):
    annotator = make_client("annotator", "anna")
    reviewer = make_client("reviewer", "rita")
    from ..support.images import two_tone_jpeg as jpeg

    image_id = annotator.upload([(jpeg(200, 150), "arm.jpg")]).get_json()["images"][0]["id"]
    doc = {"base_version": 0, "regions": [{"geometry": _square(), "style": None, "motifs": [], "source": "human"}],
           "tags": {"styles": [], "flags": ["not_tattoo"]}, "time_spent_ms": 65_000}
    assert annotator.put(f"/api/v1/images/{image_id}/annotation", json=doc).status_code == 200
    body = {"overrides": [{"check": "flag_with_regions", "count": 1, "reason": "a tattoo stencil on paper"},
                          {"check": "unstyled_regions", "count": 1, "reason": "style unclear"}]}
    resp = annotator.post(f"/api/v1/images/{image_id}/submit-checks", json=body)
    assert resp.status_code == 201, resp.get_json()
    assert annotator.post(f"/api/v1/images/{image_id}/submit").status_code == 200
    info = reviewer.get(f"/api/v1/images/{image_id}/review-info").get_json()
    assert info["annotators"] == ["anna"] and info["time_spent_ms"] == 65_000 and info["saves"] == 1
    assert info["note"]["author"] == "anna" and info["note"]["annotation_version"] == 1
    assert [o["reason"] for o in info["note"]["overrides"]] == ["a tattoo stencil on paper", "style unclear"]
    assert info["previous"] is None and info["prefill"] is None
    resp = reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "reject", "comment": "add the arm"})
    assert resp.status_code == 201, resp.get_json()
    info = annotator.get(f"/api/v1/images/{image_id}/review-info").get_json()
    assert info["previous"]["version"] == 1 and info["previous"]["comment"] == "add the arm"
    assert info["previous"]["reviewer"] == "rita" and len(info["previous"]["regions"]) == 1


@pytest.mark.parametrize("body", [
    {"overrides": []},
    {"overrides": [{"check": "made_up", "count": 1, "reason": "because"}]},
    {"overrides": [{"check": "unstyled_regions", "count": 1, "reason": ""}]},
    {"overrides": [{"check": "unstyled_regions", "count": -1, "reason": "because"}]},
    {"overrides": [{"check": "unstyled_regions", "count": 1, "reason": "because", "extra": 1}]},
])
def test_bad_overrides_are_422(annotator, image_id, body):
    resp = annotator.post(f"/api/v1/images/{image_id}/submit-checks", json=body)
    assert resp.status_code == 422, resp.get_json()


def test_unknown_image_is_404(annotator):
    body = {"overrides": [{"check": "unstyled_regions", "count": 1, "reason": "because"}]}
    assert annotator.post("/api/v1/images/999/submit-checks", json=body).status_code == 404
    assert annotator.get("/api/v1/images/999/review-info").status_code == 404


def test_a_stale_save_names_who_saved_the_current_version(app, make_client):
    # bob reviews: another annotator could not save while anna's save holds the lease (409 leased)
    anna, bob = make_client("annotator", "anna"), make_client("reviewer", "bob")
    from ..support.images import two_tone_jpeg as jpeg

    image_id = anna.upload([(jpeg(200, 150), "arm.jpg")]).get_json()["images"][0]["id"]
    empty = {"regions": [], "tags": {"styles": [], "flags": []}, "time_spent_ms": 0}
    assert bob.put(f"/api/v1/images/{image_id}/annotation", json={"base_version": 0, **empty}).status_code == 200
    resp = anna.put(f"/api/v1/images/{image_id}/annotation", json={"base_version": 0, **empty})
    assert resp.status_code == 409
    details = resp.get_json()["error"]["details"]
    assert details["saved_by"] == "bob" and details["saved_at"] and details["current"]["version"] == 1


def test_region_comments_are_pinned_to_existing_regions(app, make_client):
    anna, rita = make_client("annotator", "anna"), make_client("reviewer", "rita")
    from ..support.images import two_tone_jpeg as jpeg

    image_id = anna.upload([(jpeg(200, 150), "arm.jpg")]).get_json()["images"][0]["id"]
    doc = {"base_version": 0, "regions": [{"id": "r1", "geometry": _square(), "style": "tribal", "motifs": [],
                                           "source": "human"}], "tags": {"styles": [], "flags": []}, "time_spent_ms": 0}
    assert anna.put(f"/api/v1/images/{image_id}/annotation", json=doc).status_code == 200
    resp = rita.post(f"/api/v1/images/{image_id}/region-comments", json={"region_id": "r1", "text": "the outline misses the arm"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["author"] == "rita" and resp.get_json()["annotation_version"] == 1
    for bad in ({"region_id": "nope", "text": "x"}, {"region_id": "r1", "text": ""}, {"region_id": "r 1", "text": "x"},
                {"region_id": "r1"}):
        assert rita.post(f"/api/v1/images/{image_id}/region-comments", json=bad).status_code == 422, bad
    assert rita.post("/api/v1/images/999/region-comments", json={"region_id": "r1", "text": "x"}).status_code == 404
    info = anna.get(f"/api/v1/images/{image_id}/review-info").get_json()
    assert [(c["region_id"], c["author"], c["text"]) for c in info["comments"]] == [("r1", "rita", "the outline misses the arm")]


def test_every_region_id_a_save_accepts_can_take_a_comment(app, make_client):
    """One region-id rule (backend/core/document_checks.py): ids with '.' and ':' (an import's "cvat:12.3") are
    valid in a document, so a comment can be pinned to them; ids the save refuses are refused here too."""
    anna, rita = make_client("annotator", "anna"), make_client("reviewer", "rita")
    from .test_images import jpeg

    image_id = anna.upload([(jpeg(200, 150), "arm.jpg")]).get_json()["images"][0]["id"]
    doc = {"base_version": 0, "regions": [{"id": "cvat:12.3", "geometry": _square()}],
           "tags": {"styles": [], "flags": []}}
    assert anna.put(f"/api/v1/images/{image_id}/annotation", json=doc).status_code == 200
    resp = rita.post(f"/api/v1/images/{image_id}/region-comments", json={"region_id": "cvat:12.3", "text": "fix"})
    assert resp.status_code == 201, resp.get_json()
    too_long = "r" * 65
    saved = anna.put(f"/api/v1/images/{image_id}/annotation",
                     json={**doc, "base_version": 1, "regions": [{"id": too_long, "geometry": _square()}]})
    commented = rita.post(f"/api/v1/images/{image_id}/region-comments", json={"region_id": too_long, "text": "x"})
    assert saved.status_code == commented.status_code == 422
