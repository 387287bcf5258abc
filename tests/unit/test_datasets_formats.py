"""The formats, each checked by the code that reads it: PNG readers, pycocotools, OpenCV's fillPoly (what
Ultralytics rasterises YOLO-seg with), Pillow's polygon fill (what LabelMe's shape_to_mask uses) and LabelMe's
JSON schema."""
import io
import json
import math

import cv2
import jsonschema
import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from backend.datasets import coco, crops, labelme, yolo
from backend.datasets.masks import instance_mask, region_mask, semantic_from_instances
from backend.datasets.pngio import encode_gray_png
from backend.core.geometry import area_bbox, validate_geometry
from backend.core.geometry_raster import rasterize, rasterize_instances

from ..support.datasets import LABELME_SCHEMA, disc, donut, iou, region_raster, ring, run_lengths

W, H = 200, 150
TWO_HOLES = {"type": "Polygon", "coordinates": [ring(100, 75, 60), ring(75, 75, 15, clockwise=True),
                                                ring(125, 75, 15, clockwise=True)]}
MULTI = {"type": "MultiPolygon", "coordinates": [[ring(40, 40, 20)], [ring(160, 110, 25), ring(160, 110, 8)]]}


# --- PNG ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535), (np.uint16, 200)])
def test_png_decodes_to_the_same_array_everywhere(dtype, top):
    rng = np.random.default_rng(0)
    array = rng.integers(0, top, (37, 53), dtype=dtype)
    array[5:20, :] = 7
    data = encode_gray_png(array)
    assert data == encode_gray_png(array.copy())
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), array)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), array)
    with pytest.raises(ValueError):
        encode_gray_png(array.astype(np.float32))


def test_png_without_isal_falls_back_to_zlib(monkeypatch):
    from backend.datasets import pngio

    array = np.zeros((20, 30), np.uint16)
    array[5:9, 3:25] = 513
    monkeypatch.setattr(pngio, "isal_zlib", None)
    data = encode_gray_png(array)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), array)


# --- masks --------------------------------------------------------------------------------------------------------

def test_windowed_masks_equal_the_tools_rasterisation():
    geoms = [donut(60, 60, 50, 20), TWO_HOLES, MULTI, disc(199.5, 149.5, 10)]
    windows = [region_mask(g, area_bbox(g)[1], W, H) for g in geoms]
    for g, rm in zip(geoms, windows):
        assert np.array_equal(rm.full(W, H) > 0, region_raster(g, W, H))
    labels = instance_mask(windows, W, H)
    assert labels.dtype == np.uint16
    assert np.array_equal(labels, rasterize_instances(geoms, W, H))
    assert np.array_equal(semantic_from_instances(labels), rasterize(geoms, W, H))


# --- COCO ---------------------------------------------------------------------------------------------------------

def _coco_document(regions):
    entries = []
    for i, region in enumerate(regions):
        area, bbox = area_bbox(region["geometry"])
        if coco.has_holes(region["geometry"]):
            rm = region_mask(region["geometry"], bbox, W, H)
            seg = coco.rle_segmentation(rm.full(W, H, order="F"))
        else:
            seg = coco.polygon_segmentation(region["geometry"])
        entries.append(coco.annotation_entry(7, i, region, area, bbox, seg))
    writer = coco.CocoSplitWriter({"description": "test"})
    writer.add(coco.image_entry(7, "images/train/x.jpg", W, H, "ab" * 32, "accepted", 3,
                                {"styles": ["japanese"], "flags": []}, "x.jpg"), entries)
    document = json.loads(b"".join(writer.chunks()))
    writer.close()
    return document


def test_coco_loads_with_pycocotools_and_masks_match(tmp_path):
    regions = [
        {"id": "a", "geometry": disc(50, 50, 30), "style": "japanese", "motifs": ["koi"], "source": "human"},
        {"id": "b", "geometry": donut(140, 80, 50, 20), "style": None, "motifs": [], "source": "model"},
        {"id": "c", "geometry": MULTI, "style": "tribal", "motifs": [], "source": "human"},
        {"id": "d", "geometry": {"type": "MultiPolygon", "coordinates": [[ring(35, 115, 30)], [ring(105, 115, 30)]]},
         "style": None, "motifs": [], "source": "human"},
    ]
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(_coco_document(regions)))
    api = COCO(str(path))
    assert api.getImgIds() == [7] and api.loadImgs(7)[0]["inklabel"]["version"] == 3
    anns = api.loadAnns(api.getAnnIds(imgIds=[7]))
    assert [a["id"] for a in anns] == [700001, 700002, 700003, 700004]
    for ann, region in zip(anns, regions):
        truth = region_raster(region["geometry"], W, H)
        assert iou(api.annToMask(ann), truth) >= 0.99
        assert ann["attributes"]["style"] == region["style"] and ann["attributes"]["region_id"] == region["id"]
        assert abs(ann["area"] - truth.sum()) <= 0.03 * truth.sum()
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(truth)
        assert abs(x - xs.min()) <= 1 and abs(x + w - (xs.max() + 1)) <= 1
        assert abs(y - ys.min()) <= 1 and abs(y + h - (ys.max() + 1)) <= 1
    # Holes need RLE (COCO polygons have none); plain regions and hole-free MultiPolygons stay polygons.
    assert isinstance(anns[0]["segmentation"], list) and isinstance(anns[3]["segmentation"], list)
    assert isinstance(anns[1]["segmentation"], dict) and isinstance(anns[2]["segmentation"], dict)
    assert api.annToMask(anns[1])[80, 140] == 0  # the hole's centre is empty


def test_coco_segmentation_read_back():
    hole = donut(100, 75, 50, 20)
    rle = coco.rle_segmentation(np.asfortranarray(region_raster(hole, W, H).astype(np.uint8)))
    [geometry] = coco.segmentation_to_geometries(rle, W, H)
    assert iou(region_raster(geometry, W, H), region_raster(hole, W, H)) == 1.0  # traced on pixel edges
    uncompressed = mask_utils.decode({"size": [H, W], "counts": rle["counts"].encode()})
    counts = run_lengths(uncompressed.flatten(order="F"))
    [again] = coco.segmentation_to_geometries({"size": [H, W], "counts": counts}, W, H)
    assert iou(region_raster(again, W, H), uncompressed) == 1.0
    [poly] = coco.segmentation_to_geometries([[10, 10, 50, 10, 50, 40], [60, 60, 90, 60, 90, 90]], W, H)
    assert poly["type"] == "MultiPolygon"
    for bad in ([[1, 2, 3]], {"size": [H + 1, W], "counts": "x"}, "nope", [], {"size": [H, W], "counts": 5}):
        with pytest.raises(ValueError):
            coco.segmentation_to_geometries(bad, W, H)


# --- YOLO-seg -----------------------------------------------------------------------------------------------------

def _fill_normalised_lines(text: str) -> np.ndarray:
    """What Ultralytics does with a YOLO-seg label: scale each polygon and cv2.fillPoly it."""
    mask = np.zeros((H, W), np.uint8)
    for line in text.splitlines():
        values = np.array(line.split()[1:], dtype=np.float64).reshape(-1, 2) * [W, H]
        cv2.fillPoly(mask, [np.round(values).astype(np.int32)], 1)
    return mask


@pytest.mark.parametrize("geometry", [donut(100, 75, 60, 25), TWO_HOLES, MULTI])
def test_yolo_seg_bridged_rings_keep_holes(geometry):
    text = yolo.label_lines([{"geometry": geometry}], W, H)
    parts = 1 if geometry["type"] == "Polygon" else len(geometry["coordinates"])
    assert len(text.splitlines()) == parts and all(line.startswith("0 ") for line in text.splitlines())
    truth = region_raster(geometry, W, H)
    filled = _fill_normalised_lines(text)
    assert iou(filled, truth) >= 0.9  # fillPoly also draws boundary pixels and the one-pixel cut
    holes = [p[1:] for p in ([geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"])]
    for hole_rings in holes:
        for hole in hole_rings:
            cx, cy = np.mean(np.array(hole[:-1]), axis=0)
            assert filled[int(cy), int(cx)] == 0  # the hole stays empty
    # Read back as the importer does: ring -> polygon -> repair -> the hole comes back exactly.
    for line in text.splitlines():
        _, numbers = yolo.parse_line(line)
        repaired = validate_geometry(yolo.polygon_geometry(numbers, W, H), W, H)
        assert iou(region_raster(repaired, W, H) & truth, region_raster(repaired, W, H)) >= 0.99
    restored = [validate_geometry(yolo.polygon_geometry(yolo.parse_line(l)[1], W, H), W, H) for l in text.splitlines()]
    assert iou(rasterize(restored, W, H), truth) >= 0.99


def test_yolo_lines_parse_and_refuse():
    assert yolo.parse_line("2 0.5 0.5 0.2 0.4") == (2, [0.5, 0.5, 0.2, 0.4])
    box = yolo.box_geometry([0.5, 0.5, 0.2, 0.4], 100, 50)
    assert area_bbox(box) == (20.0 * 20.0, [40.0, 15.0, 60.0, 35.0])
    for bad in ("0 0.5 0.5", "x 0.5 0.5 0.1 0.1", "0 nan 0.5 0.1 0.1", "0 5 5 1 1", "-1 0.5 0.5 0.1 0.1"):
        with pytest.raises(ValueError):
            yolo.parse_line(bad)
    with pytest.raises(ValueError):
        yolo.box_geometry([0.5, 0.5, 0, 0.1], 10, 10)
    assert "val: images/val" in yolo.data_yaml(["train", "val", "test"])


# --- LabelMe ------------------------------------------------------------------------------------------------------

def _shape_to_mask(points) -> np.ndarray:
    """labelme.utils.shape_to_mask for polygons: Pillow's ImageDraw.polygon with outline and fill."""
    image = Image.new("L", (W, H), 0)
    ImageDraw.Draw(image).polygon([tuple(p) for p in points], outline=1, fill=1)
    return np.asarray(image, dtype=bool)


def test_labelme_document_matches_schema_and_keeps_holes():
    regions = [
        {"id": "r1", "geometry": TWO_HOLES, "style": "japanese", "motifs": ["koi", "wave"], "source": "human"},
        {"id": "r2", "geometry": MULTI, "style": None, "motifs": [], "source": "model"},
    ]
    doc = labelme.labelme_document(regions, {"styles": ["japanese"], "flags": ["bad_example"]},
                                   "../../images/train/x.jpg", W, H)
    jsonschema.validate(json.loads(json.dumps(doc)), LABELME_SCHEMA)
    assert doc["flags"] == {"japanese": True, "bad_example": True}
    assert [s["group_id"] for s in doc["shapes"]] == [1, 2, 2]
    assert doc["shapes"][0]["label"] == "japanese" and doc["shapes"][1]["label"] == "tattoo"
    assert doc["shapes"][0]["flags"] == {"koi": True, "wave": True}
    filled = _shape_to_mask(doc["shapes"][0]["points"])
    assert iou(filled, region_raster(TWO_HOLES, W, H)) >= 0.95
    assert not filled[75, 75] and not filled[75, 125]  # both holes empty
    ring_back = [list(p) for p in labelme.shape_area(doc["shapes"][0])[1].exterior.coords]
    repaired = validate_geometry({"type": "Polygon", "coordinates": [ring_back]}, W, H)
    assert iou(region_raster(repaired, W, H), region_raster(TWO_HOLES, W, H)) >= 0.99


def test_labelme_shapes_read_back():
    kind, box = labelme.shape_area({"shape_type": "rectangle", "points": [[5, 6], [1, 2]]})
    assert kind == "box" and box.bounds == (1, 2, 5, 6)
    kind, circle = labelme.shape_area({"shape_type": "circle", "points": [[10, 10], [15, 10]]})
    assert kind == "mask" and abs(circle.area - math.pi * 25) < 0.5
    assert abs(labelme.shape_area({"shape_type": "line", "points": [[0, 0], [30, 0]]})[1].area - 300) < 1e-6
    assert labelme.shape_area({"shape_type": "point", "points": [[9, 9]]})[1].bounds == (4, 4, 14, 14)
    for bad in ({"shape_type": "line", "points": [[0, 0]]}, {"shape_type": "polygon", "points": [[0, 0]]},
                {"points": "x"}, {"shape_type": "polygon", "points": [[0, 0], [1, "a"], [2, 2]]},
                {"shape_type": "spline", "points": [[0, 0], [1, 1]]},
                {"shape_type": "mask", "points": [[0, 0], [5, 5]], "mask": "not base64!"},
                {"shape_type": "mask", "points": [[0, 0], [5, 5]], "mask": "aGVsbG8="}):  # base64, not a PNG
        with pytest.raises(ValueError):
            labelme.shape_area(bad)


# --- crops --------------------------------------------------------------------------------------------------------

def test_crop_box_margin_and_masked_background():
    assert crops.crop_box([50, 50, 70, 90], W, H, 0.1) == (46, 46, 74, 94)
    assert crops.crop_box([0, 0, 10, 10], W, H, 0.5) == (0, 0, 15, 15)
    assert crops.crop_box([5, 5, 6, 6], W, H, 0.0) is None
    rgb = np.full((H, W, 3), 200, np.uint8)
    geometry = donut(100, 75, 40, 15)
    box = crops.crop_box(area_bbox(geometry)[1], W, H, 0.1)
    rm = region_mask(geometry, area_bbox(geometry)[1], W, H)
    data = crops.crop_jpeg(rgb, box, rm, mask_background=True)
    out = np.asarray(Image.open(io.BytesIO(data)))
    assert out.shape == (box[3] - box[1], box[2] - box[0], 3)
    centre = out[75 - box[1], 100 - box[0]]  # the hole: background colour
    ink = out[75 - box[1], 100 + 28 - box[0]]  # inside the ring: the photo
    assert np.abs(centre.astype(int) - crops.BACKGROUND).max() < 8 and np.abs(ink.astype(int) - 200).max() < 8


def test_safe_stem():
    assert crops.safe_stem("a1b2-c3_d.e") == "a1b2-c3_d.e"
    for risky in ("..", ".hidden", "a:b", "a/b", "x" * 65):
        stem = crops.safe_stem(risky)
        assert stem.startswith("r") and len(stem) == 33 and "/" not in stem


def test_coco_rle_from_edges_equals_the_drawn_mask():
    """coco.polygon_rle (no mask drawn) agrees with the RLE of the tool's rasterisation, holes and parts included,
    also where runs reach the bottom of a column and go on in the next one."""
    from pycocotools import mask as mask_utils

    shapes = [donut(80, 60, 45, 15), TWO_HOLES, MULTI, disc(20, 20, 40),  # the last is clipped by the image edge
              {"type": "Polygon", "coordinates": [[[0, 0], [W, 0], [W, H], [0, H], [0, 0]],
                                                  [[30.3, 30.2], [60.7, 30.2], [60.7, 90.6], [30.3, 30.2]]]}]
    for geometry in shapes:
        geometry = validate_geometry(geometry, W, H)
        drawn = np.asfortranarray(region_raster(geometry, W, H).astype(np.uint8))
        ours = coco.polygon_rle(geometry, W, H)
        assert ours == coco.rle_segmentation(drawn)
        assert (mask_utils.decode({"size": ours["size"], "counts": ours["counts"].encode()}) == drawn).all()
