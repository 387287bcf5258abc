"""backend/core/geometry.py: validation policy, conversions, rasterisation (checked against pycocotools) and
mask -> polygons round trips."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import shapely
from pycocotools import mask as coco_mask

from backend.core.geometry import (
    GeometryError,
    area_bbox,
    count_vertices,
    difference_geometry,
    mask_to_polygons,
    to_geojson,
    to_shape,
    union_geometry,
    validate_geometry,
)
from backend.core.geometry_raster import rasterize, rasterize_instances

HOLED = {
    "type": "Polygon",
    "coordinates": [
        [[10, 10], [90.5, 10], [90.5, 70], [10, 70], [10, 10]],
        [[30, 30], [30, 50], [50.25, 50], [50.25, 30], [30, 30]],
    ],
}


def square(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return (a & b).sum() / max((a | b).sum(), 1)


# --- validate_geometry --------------------------------------------------------------------------------------------


def test_valid_polygon_with_hole_round_trips_exactly():
    out = validate_geometry(HOLED, 100, 100)
    assert out == HOLED
    assert [type(v) for ring in out["coordinates"] for pos in ring for v in pos] == \
        [type(v) for ring in HOLED["coordinates"] for pos in ring for v in pos]


def test_open_ring_is_closed():
    out = validate_geometry({"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10]]]}, 20, 20)
    assert out["coordinates"][0] == [[0, 0], [10, 0], [10, 10], [0, 0]]


def test_multipolygon_kept_and_single_part_becomes_polygon():
    multi = {"type": "MultiPolygon",
             "coordinates": [square(0, 0, 5, 5)["coordinates"], square(10, 10, 20, 20)["coordinates"]]}
    assert validate_geometry(multi, 50, 50) == multi
    single = {"type": "MultiPolygon", "coordinates": [square(0, 0, 5, 5)["coordinates"]]}
    assert validate_geometry(single, 50, 50) == square(0, 0, 5, 5)


def test_bowtie_is_repaired_into_two_triangles():
    out = validate_geometry({"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}, 20, 20)
    assert out["type"] == "MultiPolygon" and len(out["coordinates"]) == 2
    assert to_shape(out).is_valid and area_bbox(out)[0] == pytest.approx(50.0)


def test_overlapping_parts_are_merged_and_hole_outside_shell_dropped():
    multi = {"type": "MultiPolygon",
             "coordinates": [square(0, 0, 10, 10)["coordinates"], square(5, 0, 15, 10)["coordinates"]]}
    out = validate_geometry(multi, 50, 50)
    assert out["type"] == "Polygon" and area_bbox(out)[0] == pytest.approx(150)
    stray_hole = {"type": "Polygon", "coordinates": [square(0, 0, 10, 10)["coordinates"][0],
                                                     square(20, 20, 25, 25)["coordinates"][0]]}
    out = validate_geometry(stray_hole, 50, 50)
    assert area_bbox(out)[0] == pytest.approx(100)  # the "hole" outside is neither a hole nor a new part


def test_clipped_to_the_image():
    out = validate_geometry(square(-10, -10, 30, 30), 20, 25)
    area, bbox = area_bbox(out)
    assert area == pytest.approx(20 * 25) and bbox == [0, 0, 20, 25]
    with pytest.raises(GeometryError, match="empty after clipping"):
        validate_geometry(square(30, 30, 40, 40), 20, 20)


@pytest.mark.parametrize("geometry, message", [
    (None, "GeoJSON object"),
    ([], "GeoJSON object"),
    ({"type": "Point", "coordinates": [1, 2]}, "Polygon or MultiPolygon"),
    ({"type": "Polygon"}, "non-empty list of rings"),
    ({"type": "Polygon", "coordinates": []}, "non-empty list of rings"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 3 distinct points"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [0, 0], [0, 0], [0, 0]]]}, "at least 3 distinct points"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [float("nan"), 0], [1, 1]]]}, "finite"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [float("inf"), 0], [1, 1]]]}, "finite"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [10 ** 400, 0], [1, 1]]]}, "finite"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1e15, 0], [1, 1]]]}, "further than"),
    ({"type": "Polygon", "coordinates": [[[0, 0], ["5", 0], [1, 1]]]}, "must be a number"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [True, 0], [1, 1]]]}, "must be a number"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [None, 0], [1, 1]]]}, "must be a number"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 2, 3], [1, 1]]]}, "position"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [[1, 2]], [1, 1]]]}, "position"),
    ({"type": "Polygon", "coordinates": [[0, 0, 1, 1, 2, 2]]}, "position"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [5, 5], [10, 10], [0, 0]]]}, "empty after repair"),
    ({"type": "MultiPolygon", "coordinates": []}, "non-empty list of polygons"),
    ({"type": "MultiPolygon", "coordinates": [[]]}, "non-empty list of rings"),
])
def test_refused(geometry, message):
    with pytest.raises(GeometryError, match=message):
        validate_geometry(geometry, 100, 100)


def test_random_junk_never_escapes_as_another_error():
    """Fuzz: extreme, degenerate and self-crossing input gives a GeometryError or a valid geometry inside the
    image that validates to itself again (idempotent)."""
    rng = random.Random(1)
    extremes = [0, -1, 1e308, -1e308, 5e-324, 2 ** 53 + 1, 10 ** 30, 99.999999, 1e15, 999_999.5, -1e6]

    def position():
        if rng.random() < 0.3:
            return [rng.choice(extremes), rng.choice(extremes)]
        return [rng.uniform(-50, 150), rng.uniform(-50, 150)]

    accepted = 0
    for _ in range(1500):
        n = rng.randint(3, 10)
        rings = [[position() for _ in range(n)] for _ in range(rng.randint(1, 3))]
        geometry = ({"type": "Polygon", "coordinates": rings} if rng.random() < 0.6 else
                    {"type": "MultiPolygon", "coordinates": [rings, [[position() for _ in range(n)]]]})
        try:
            out = validate_geometry(geometry, 100, 100)
        except GeometryError:
            continue
        accepted += 1
        area, (x0, y0, x1, y1) = area_bbox(out)
        assert 0 < area <= 100 * 100 and x0 >= 0 and y0 >= 0 and x1 <= 100 and y1 <= 100
        assert to_shape(out).is_valid and validate_geometry(out, 100, 100) == out
    assert accepted > 100


def test_vertex_limit():
    ring = [[50 + 40 * math.cos(t / 100), 50 + 40 * math.sin(t / 100)] for t in range(629)]
    geometry = {"type": "Polygon", "coordinates": [ring]}
    assert count_vertices(validate_geometry(geometry, 100, 100)) == 630
    with pytest.raises(GeometryError, match="too many vertices: 630"):
        validate_geometry(geometry, 100, 100, max_vertices=500)


def test_no_image_size():
    with pytest.raises(GeometryError):
        validate_geometry(square(0, 0, 1, 1), 0, 10)


def test_conversions_and_area_bbox():
    shape = to_shape(HOLED)
    assert shape.area == pytest.approx(80.5 * 60 - 20.25 * 20)
    assert to_geojson(shape) == {"type": "Polygon", "coordinates": [[[float(x), float(y)] for x, y in r]
                                                                      for r in HOLED["coordinates"]]}
    area, bbox = area_bbox(HOLED)
    assert area == pytest.approx(shape.area) and bbox == [10, 10, 90.5, 70]
    collection = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (5, 5)])])
    assert to_geojson(collection)["type"] == "Polygon"
    with pytest.raises(GeometryError):
        to_geojson(shapely.LineString([(0, 0), (1, 1)]))


# --- rasterisation ------------------------------------------------------------------------------------------------


def _coco(polygon_rings, width, height):
    """pycocotools' mask of a polygon with holes: outer minus holes."""
    def one(ring):
        return coco_mask.decode(coco_mask.frPyObjects([np.ravel(ring).tolist()], height, width))[:, :, 0] > 0
    mask = one(polygon_rings[0])
    for hole in polygon_rings[1:]:
        mask &= ~one(hole)
    return mask


def test_rasterize_matches_pycocotools():
    rng = np.random.default_rng(7)
    width, height = 240, 200
    inter = union = 0
    for _ in range(60):
        n = int(rng.integers(5, 40))
        centre = rng.uniform(70, 130, 2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(25, 65) * rng.uniform(0.5, 1, n)
        outer = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)
        hole = centre + np.array([[-5, -5], [5, -5], [5, 5], [-5, 5]]) * rng.uniform(0.5, 1.2)  # inside
        rings = [outer.tolist(), hole.tolist()]
        if not shapely.Polygon(rings[0], rings[1:]).is_valid:  # e.g. the hole pokes out: no agreed raster
            continue
        ours = rasterize([{"type": "Polygon", "coordinates": rings}], width, height) > 0
        theirs = _coco(rings, width, height)
        assert iou(ours, theirs) >= 0.97
        inter += (ours & theirs).sum()
        union += (ours | theirs).sum()
    assert inter / union >= 0.99


def test_rasterize_exact_on_axis_aligned_squares():
    mask = rasterize([HOLED, square(95, 0, 100, 5)], 100, 80)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    expected = np.zeros((80, 100), bool)
    expected[10:70, 10:91] = True  # x up to 90.5: the centre 90.5 of column 90 is on the edge and counts
    expected[30:50, 30:50] = False  # hole to x = 50.25: column 50 (centre 50.5) is outside the hole
    expected[0:5, 95:100] = True
    assert np.array_equal(mask > 0, expected)
    assert np.array_equal(mask > 0, _coco(HOLED["coordinates"], 100, 80) | (expected & False) | _coco(
        square(95, 0, 100, 5)["coordinates"], 100, 80))


def test_rasterize_overlaps_union_and_outside_is_ignored():
    mask = rasterize([square(0, 0, 10, 10), square(5, 5, 15, 15), square(-50, -50, -10, -10)], 20, 20)
    assert (mask > 0).sum() == 100 + 100 - 25


def test_rasterize_instances():
    labels = rasterize_instances([square(0, 0, 10, 10), square(5, 5, 15, 15)], 20, 20)
    assert labels.dtype == np.uint16
    assert labels[2, 2] == 1 and labels[7, 7] == 2 and labels[12, 12] == 2 and labels[19, 19] == 0
    assert (labels == 1).sum() == 75


# --- mask -> polygons ---------------------------------------------------------------------------------------------


def _donut_scene(height=300, width=400):
    yy, xx = np.mgrid[:height, :width]
    d = np.hypot(xx - 200, yy - 150)
    mask = (d < 110) & (d > 45)
    mask |= (np.abs(xx - 200) < 12) & (np.abs(yy - 150) < 12)  # an island inside the hole
    mask |= (xx > 340) & (yy < 40)  # a block touching the image border
    mask[280:283, 20:200] = True  # a 3-pixel line
    mask[5:7, 5:7] = True  # a speck (4 px < min_area)
    return mask


def test_mask_to_polygons_round_trip_with_holes():
    mask = _donut_scene()
    polygons = mask_to_polygons(mask.astype(np.uint8) * 255)
    assert len(polygons) == 4  # donut, island, block, line; the speck is dropped
    donut = max(polygons, key=lambda g: area_bbox(g)[0])
    assert len(donut["coordinates"]) == 2  # outer ring + its hole
    for geometry in polygons:
        assert validate_geometry(geometry, 400, 300) == geometry
    back = rasterize(polygons, 400, 300) > 0
    speckless = mask.copy()
    speckless[5:7, 5:7] = False
    assert iou(back, speckless) >= 0.98


def test_mask_to_polygons_on_rasterized_shapes():
    """Smooth blobs with holes and jagged stars, at the default tolerance and without simplification."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:240, :300]
    for _ in range(5):
        a, b = rng.uniform(30, 90, 2)
        blob = ((xx - 150) / a) ** 2 + ((yy - 120) / b) ** 2 < 1
        blob &= ~((((xx - 150) / (a / 3)) ** 2 + ((yy - 120) / (b / 3)) ** 2) < 1)
        assert iou(rasterize(mask_to_polygons(blob), 300, 240), blob) >= 0.98
    for _ in range(10):
        angles = np.sort(rng.uniform(0, 2 * np.pi, 24))
        radii = rng.uniform(30, 90, 24)
        ring = np.stack([150 + radii * np.cos(angles), 120 + radii * np.sin(angles)], 1).tolist()
        star = rasterize([{"type": "Polygon", "coordinates": [ring]}], 300, 240)
        assert iou(rasterize(mask_to_polygons(star), 300, 240), star) >= 0.98
        exact = mask_to_polygons(star, simplify_tolerance=0)
        assert iou(rasterize(exact, 300, 240), star) >= 0.998


def test_mask_to_polygons_edge_cases():
    assert mask_to_polygons(np.zeros((10, 10), np.uint8)) == []
    full = mask_to_polygons(np.ones((10, 12), bool), min_area=1)
    assert len(full) == 1 and area_bbox(full[0]) == (120.0, [0.0, 0.0, 12.0, 10.0])
    line = np.zeros((20, 20), np.uint8)
    line[10, 2:18] = 1  # one pixel wide
    [geometry] = mask_to_polygons(line, min_area=1)
    assert area_bbox(geometry) == (pytest.approx(16, abs=0.5), [2.0, 10.0, 18.0, 11.0])
    with pytest.raises(GeometryError):
        mask_to_polygons(np.zeros((2, 2, 3)))


# --- brush / eraser -----------------------------------------------------------------------------------------------


def test_union_and_difference():
    grown = union_geometry(square(0, 0, 10, 10), square(10, 0, 20, 10), 100, 100)
    assert area_bbox(grown) == (200.0, [0.0, 0.0, 20.0, 10.0])
    assert union_geometry(None, square(0, 0, 10, 10), 100, 100)["type"] == "Polygon"
    holed = difference_geometry(square(0, 0, 30, 30), square(10, 10, 20, 20), 100, 100)
    assert len(holed["coordinates"]) == 2 and area_bbox(holed)[0] == pytest.approx(800)
    assert difference_geometry(square(0, 0, 10, 10), square(0, 0, 10, 10), 100, 100) is None
    dab = union_geometry(None, {"type": "Point", "coordinates": [50, 50]}, 100, 100, radius=10)
    assert area_bbox(dab)[0] == pytest.approx(math.pi * 100, rel=0.01)
    split = difference_geometry(square(0, 0, 30, 10), {"type": "LineString", "coordinates": [[15, -5], [15, 15]]},
                                100, 100, radius=2)
    assert split["type"] == "MultiPolygon" and area_bbox(split)[0] == pytest.approx(300 - 40)
    with pytest.raises(GeometryError, match="radius"):
        union_geometry(None, {"type": "LineString", "coordinates": [[0, 0], [5, 5]]}, 100, 100)
    with pytest.raises(GeometryError):
        difference_geometry(None, square(0, 0, 10, 10), 100, 100)
