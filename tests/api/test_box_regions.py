"""Box regions (weak labels): saved with kind "box" as the canonical rectangle, validated as rectangles inside the
image, denormalised with their kind, counted in the image list, and left out of mask statistics. SQLite and
PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.core.boxes import box_geometry, validate_box
from backend.db.extensions import db
from backend.core.geometry import GeometryError
from backend.db.models import Annotation, Region
from backend.core.workflow_stats import document_mask

from ..support.images import make_image
from .test_annotations import error_of, save, square


def _rows(app, image_id):
    with app.app_context():
        return [(r.id, r.kind, r.bbox, r.area) for r in
                db.session.scalars(select(Region).where(Region.image_id == image_id).order_by(Region.pk))]


def test_box_and_mask_regions_are_saved_with_their_kind(app, annotator):
    image_id = make_image(app, 200, 100)
    # an open ring, starting at another corner and running the other way: stored as the canonical rectangle
    box = {"type": "Polygon", "coordinates": [[[150, 80], [150, 20], [40, 20], [40, 80]]]}
    resp = save(annotator, image_id, [
        {"id": "b1", "kind": "box", "geometry": box, "style": "tribal"},
        {"id": "m1", "geometry": square(10, 10, 30, 30)},
    ])
    assert resp.status_code == 200, resp.get_json()
    regions = resp.get_json()["regions"]
    assert [(r["id"], r["kind"]) for r in regions] == [("b1", "box"), ("m1", "mask")]
    assert regions[0]["geometry"] == box_geometry(40, 20, 150, 80)
    assert _rows(app, image_id) == [("b1", "box", [40.0, 20.0, 150.0, 80.0], 6600.0),
                                    ("m1", "mask", [10.0, 10.0, 30.0, 30.0], 400.0)]
    again = annotator.get(f"/api/v1/images/{image_id}/annotation").get_json()
    assert [r["kind"] for r in again["regions"]] == ["box", "mask"]


def test_a_box_past_the_edge_is_clipped(app, annotator):
    image_id = make_image(app, 200, 100)
    resp = save(annotator, image_id, [{"kind": "box", "geometry": square(-20, 50, 250, 140)}])
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["regions"][0]["geometry"] == box_geometry(0, 50, 200, 100)


@pytest.mark.parametrize("geometry, reason", [
    ({"type": "Polygon", "coordinates": [[[10, 10], [60, 12], [60, 40], [10, 40]]]}, "horizontal or vertical"),
    ({"type": "Polygon", "coordinates": [[[10, 10], [60, 10], [60, 40], [30, 50], [10, 40]]]}, "4 corners"),
    ({"type": "Polygon", "coordinates": [[[10, 10], [60, 10], [60, 40], [10, 40]],
                                         [[20, 20], [30, 20], [30, 30], [20, 30]]]}, "one ring"),
    ({"type": "MultiPolygon", "coordinates": [[[[10, 10], [60, 10], [60, 40], [10, 40]]]]}, "Polygon"),
    ({"type": "Polygon", "coordinates": [[[300, 10], [400, 10], [400, 40], [300, 40]]]}, "outside the image"),
    ({"type": "Polygon", "coordinates": [[[10, 10], [60, 10], [10, 10], [60, 10]]]}, "distinct points"),
])
def test_boxes_that_are_not_rectangles_in_the_image_are_422_and_nothing_changes(app, annotator, geometry, reason):
    image_id = make_image(app, 200, 100)
    assert save(annotator, image_id, [{"id": "keep", "geometry": square(1, 1, 5, 5)}]).status_code == 200
    resp = save(annotator, image_id, [{"id": "ok", "geometry": square(1, 1, 9, 9)},
                                      {"kind": "box", "geometry": geometry}], base_version=1)
    assert resp.status_code == 422, resp.get_json()
    err = error_of(resp)
    assert err["details"]["region"] == 1 and reason in err["details"]["reason"], err
    with app.app_context():
        assert db.session.get(Annotation, image_id).version == 1
    assert [row[0] for row in _rows(app, image_id)] == ["keep"]


def test_unknown_kind_is_422(app, annotator):
    image_id = make_image(app)
    resp = save(annotator, image_id, [{"kind": "circle", "geometry": square(1, 1, 9, 9)}])
    assert resp.status_code == 422


def test_documents_saved_before_boxes_read_back_as_masks(app, annotator):
    image_id = make_image(app)
    with app.app_context():
        ann = db.session.get(Annotation, image_id)
        ann.document = {"regions": [{"id": "old", "geometry": square(1, 1, 9, 9), "style": None, "motifs": [],
                                     "source": "human"}], "tags": {"styles": [], "flags": []}}
        ann.version = 1
        db.session.commit()
    doc = annotator.get(f"/api/v1/images/{image_id}/annotation").get_json()
    assert doc["regions"][0]["kind"] == "mask" and doc["regions"][0]["id"] == "old"


def test_image_list_counts_boxes(app, annotator):
    image_id = make_image(app)
    save(annotator, image_id, [{"kind": "box", "geometry": square(1, 1, 9, 9)},
                               {"kind": "box", "geometry": square(20, 1, 29, 9)},
                               {"geometry": square(40, 40, 60, 60)}])
    item = annotator.get(f"/api/v1/images/{image_id}").get_json()
    assert (item["region_count"], item["box_count"]) == (3, 2)
    listed = [i for i in annotator.get("/api/v1/images").get_json()["items"] if i["id"] == image_id][0]
    assert (listed["region_count"], listed["box_count"]) == (3, 2)


def test_mask_statistics_leave_boxes_out():
    box = {"kind": "box", "geometry": square(0, 0, 100, 100)}
    mask = {"kind": "mask", "geometry": square(0, 0, 10, 10)}
    assert int((document_mask([box, mask], 100, 100) > 0).sum()) == 100
    assert int((document_mask([box], 100, 100) > 0).sum()) == 0


def test_validate_box_keeps_numbers_and_refuses_zero_size():
    assert validate_box(square(1.5, 2, 10, 20.25), 100, 100) == box_geometry(1.5, 2, 10, 20.25)
    with pytest.raises(GeometryError):
        validate_box({"type": "Polygon", "coordinates": [[[1, 1], [1, 1], [5, 1], [5, 1]]]}, 100, 100)
