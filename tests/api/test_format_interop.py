"""Formats checked by the ecosystem's own code: LabelMe's converter (shapes_to_label of labelme 7.9.1), Datumaro's
readers of what we export, per-style categories across COCO / YOLO / masks, and importers that refuse bad input
per item without storing half of it."""
import base64
import importlib
import io
import json
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from backend.core.annotations import current_document
from backend.datasets.export import create_export
from backend.datasets.importers import import_path
from backend.db.extensions import db
from backend.db.models import Image as ImageRow

from ..support.datasets import add_image, disc, donut, iou, jpeg, region_raster, run_lengths, smooth_image

W, H = 320, 240


def _labelme_shapes_to_label(monkeypatch):
    """LabelMe's own converter core (labelme._utils._mask.shapes_to_label), loaded without its Qt user interface:
    the packages `labelme` and `labelme._utils` are stood in by bare modules so that their __init__ (which imports
    PySide6) does not run. labelme 7.9.1 needs Python >= 3.12 to install normally; see requirements-dev.txt."""
    spec = importlib.util.find_spec("labelme")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("labelme is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    for name, folder in (("labelme", root), ("labelme._utils", root / "_utils")):
        module = types.ModuleType(name)
        module.__path__ = [str(folder)]
        monkeypatch.setitem(sys.modules, name, module)
    for name in [n for n in sys.modules if n.startswith(("labelme._shape", "labelme._utils._mask"))]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("labelme._utils._mask").shapes_to_label


def _mask_b64(mask: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def _shape(label, points, shape_type="polygon", group_id=None, **extra):
    return {"label": label, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {},
            "description": "", "mask": None, **extra}


def _labelme_examples() -> list[dict]:
    """LabelMe-example-style files: a person in two overlapping parts (group_id), __ignore__ shapes over
    instances, and every shape type LabelMe writes."""
    patch = np.zeros((40, 50), bool)
    patch[5:35, 5:45] = True
    patch[15:25, 20:30] = False  # a hole
    return [
        {"shapes": [
            _shape("japanese", [[30, 30], [150, 40], [140, 200], [40, 190]], group_id=1),
            _shape("japanese", [[120, 60], [220, 70], [210, 150], [110, 140]], group_id=1),  # overlaps its sibling
            _shape("tribal", [[180, 100], [300, 110], [290, 230], [170, 220]]),  # drawn over the person
            _shape("__ignore__", [[60, 80], [100, 80], [100, 120], [60, 120]]),  # a hole in the person
            _shape("tribal", [[230, 10], [310, 10], [310, 60], [230, 60]], group_id=2),
            _shape("japanese", [[10, 210], [60, 210], [60, 235]], group_id=2),  # same group id, other label
        ]},
        {"shapes": [
            _shape("tattoo", [[20, 20], [90, 70]], "rectangle"),
            _shape("tattoo", [[160, 60], [190, 100]], "circle"),
            _shape("tattoo", [[20, 150], [150, 200]], "line"),
            _shape("tattoo", [[200, 150], [250, 200], [300, 160], [310, 230]], "linestrip"),
            _shape("tattoo", [[120, 30]], "point"),
            _shape("tattoo", [[230, 20], [290, 40], [280, 70], [220, 50]], "oriented_rectangle"),
            _shape("tattoo", [[100, 100], [149, 139]], "mask", mask=_mask_b64(patch)),
        ]},
    ]


def _labelme_zip(tmp_path: Path, documents: list[dict]) -> Path:
    path = tmp_path / "labelme.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for k, document in enumerate(documents):
            zf.writestr(f"set/img{k}.jpg", jpeg(smooth_image(40 + k, W, H)))
            zf.writestr(f"set/img{k}.json", json.dumps({
                "version": "5.5.0", "flags": {}, "imagePath": f"img{k}.jpg", "imageData": None,
                "imageHeight": H, "imageWidth": W, **document}))
    return path


def test_labelme_import_matches_labelmes_own_converter(app, tmp_path, monkeypatch):
    shapes_to_label = _labelme_shapes_to_label(monkeypatch)
    documents = _labelme_examples()
    with app.app_context():
        report = import_path(_labelme_zip(tmp_path, documents), "labelme", status="accepted")
        assert report.skipped_count == 0, report.skipped
        imported = [current_document(im.id)["regions"]
                    for im in db.session.scalars(select(ImageRow).order_by(ImageRow.id))]
    scores = []
    for document, regions in zip(documents, imported):
        shapes = document["shapes"]
        for shape in shapes:
            if shape["shape_type"] == "mask":
                png = Image.open(io.BytesIO(base64.b64decode(shape["mask"])))
                shape["mask"] = np.asarray(png) > 0
        values = {"_background_": 0, "__ignore__": -1, "japanese": 1, "tribal": 2, "tattoo": 3}
        cls, ins = shapes_to_label(img_shape=(H, W), shapes=shapes, label_name_to_value=values)
        ins[cls == -1] = 0  # what LabelMe's labelme2voc example does with __ignore__
        theirs = [ins == k for k in range(1, ins.max() + 1) if (ins == k).any()]
        assert len(regions) == len(theirs)  # one region per LabelMe instance, __ignore__ none
        scores.append([iou(region_raster(r["geometry"], W, H), m) for r, m in zip(regions, theirs)])
    groups, types_ = scores
    # Grouped parts, overlaps and __ignore__ as LabelMe paints them (this was IoU 0.77 before); the last is a
    # 25 x 50 triangle, where Pillow's outline pixels weigh more.
    assert min(groups[:3]) >= 0.96 and groups[3] >= 0.9, groups
    # Every shape type: areas >= 0.95; 10 px strokes and the 5 px point lose more to the pixel conventions (Pillow
    # centres pixels on integers and draws the outline too, the tool samples pixel centres at +0.5).
    rectangle, circle, line, linestrip, point, oriented, mask = types_
    assert min(rectangle, circle, oriented) >= 0.95 and mask == 1.0, types_
    assert min(line, linestrip) >= 0.85 and point >= 0.75, types_


def _export_zip(app, options: dict) -> zipfile.ZipFile:
    with app.app_context():
        export = create_export(options)
        return zipfile.ZipFile(Path(app.config["WORKSPACE"]) / "exports" / export.path)


def _workspace(app):
    with app.app_context():
        add_image(jpeg(smooth_image(1, W, H)), [
            {"id": "donut", "geometry": donut(90, 90, 60, 20), "style": "japanese", "motifs": ["koi"]},
            {"id": "plain", "geometry": disc(230, 120, 50), "style": "realism", "motifs": []},
            {"id": "unstyled", "geometry": disc(240, 200, 25), "style": None, "motifs": []},
        ], {"styles": ["japanese"], "flags": []})
        add_image(jpeg(smooth_image(2, W, H)), [{"id": "t", "geometry": disc(100, 100, 40), "style": "tribal"}])


def test_per_style_categories_agree_across_coco_yolo_and_masks(app):
    _workspace(app)
    with _export_zip(app, {"formats": ["coco", "masks", "yolo"], "categories": "styles",
                           "split": {"val": 0, "test": 0}}) as zf:
        coco = json.loads(zf.read("coco/train.json"))
        names = {c["id"]: c["name"] for c in coco["categories"]}
        legend = json.loads(zf.read("masks_class/legend.json"))
        data_yaml = zf.read("yolo/data.yaml").decode()
        assert names[1] == "tattoo" and "japanese" in names.values() and "realism" not in names.values()
        assert {int(k): v for k, v in legend.items() if k != "0"} == names
        for cid, name in names.items():
            assert f"  {cid - 1}: {name}" in data_yaml
        by_region = {a["attributes"]["region_id"]: a for a in coco["annotations"]}
        assert names[by_region["donut"]["category_id"]] == "japanese"
        assert names[by_region["plain"]["category_id"]] == "tattoo"  # realism is not trainable
        assert names[by_region["unstyled"]["category_id"]] == "tattoo"
        image = next(i for i in coco["images"] if any(a["image_id"] == i["id"] and a["attributes"]["region_id"]
                                                      == "donut" for a in coco["annotations"]))
        sha = image["sha256"]
        classes = np.asarray(Image.open(io.BytesIO(zf.read(f"masks_class/train/{sha}.png"))))
        assert classes[90, 90 - 40] == by_region["donut"]["category_id"] and classes[90, 90] == 0  # hole
        label_lines = zf.read(f"yolo/labels/train/{sha}.txt").decode().splitlines()
        assert sorted(int(line.split()[0]) for line in label_lines) == sorted(
            by_region[r]["category_id"] - 1 for r in ("donut", "plain", "unstyled"))
    with _export_zip(app, {"formats": ["coco", "masks"], "split": {"val": 0, "test": 0}}) as zf:
        assert json.loads(zf.read("coco/train.json"))["categories"] == [
            {"id": 1, "name": "tattoo", "supercategory": "tattoo"}]
        assert not [n for n in zf.namelist() if n.startswith("masks_class/")]


def test_datumaro_reads_our_coco_and_cvat(app, tmp_path):
    dm = pytest.importorskip("datumaro")
    _workspace(app)
    with _export_zip(app, {"split": {"val": 0, "test": 0}}) as zf:
        zf.extractall(tmp_path / "x")
    root = tmp_path / "x"
    # COCO, where Datumaro looks for it: annotations/instances_<split>.json + images/<split>/
    coco_dir = tmp_path / "coco"
    (coco_dir / "annotations").mkdir(parents=True)
    (coco_dir / "annotations" / "instances_train.json").write_bytes(
        json.dumps({**json.loads((root / "coco/train.json").read_text()),
                    "images": [{**i, "file_name": Path(i["file_name"]).name}
                               for i in json.loads((root / "coco/train.json").read_text())["images"]]}).encode())
    (coco_dir / "images").symlink_to(root / "images")
    coco = dm.Dataset.import_from(str(coco_dir), "coco_instances")
    shapes = (dm.AnnotationType.polygon, dm.AnnotationType.mask)
    assert len(coco) == 2 and sum(a.type in shapes for item in coco for a in item.annotations) == 4
    cvat_dir = tmp_path / "cvat"  # a CVAT task folder: the XML and the task's images beside it
    cvat_dir.mkdir()
    (cvat_dir / "train.xml").write_bytes((root / "cvat" / "train.xml").read_bytes())
    (cvat_dir / "images").symlink_to(root / "images" / "train")
    cvat = dm.Dataset.import_from(str(cvat_dir), "cvat")
    polygons = [a for item in cvat for a in item.annotations if a.type == dm.AnnotationType.polygon]
    assert len(cvat) == 2 and len(polygons) == 4
    assert {a.attributes.get("style") for a in polygons} >= {"japanese", "tribal"}
    # Datumaro 1.13 has no reader for LabelMe JSON (its label_me is MIT LabelMe XML) nor for Ultralytics YOLO-seg
    # (its yolo is Darknet boxes): LabelMe is checked against LabelMe's own converter above, YOLO-seg by the
    # round trip in test_imports.py.


def test_labelstudio_export_is_the_shape_label_studio_exports(app):
    _workspace(app)
    with _export_zip(app, {"formats": ["labelstudio"], "split": {"val": 0, "test": 0}}) as zf:
        tasks = json.loads(zf.read("labelstudio/train.json"))
        config = zf.read("labelstudio/config.xml").decode()
    assert len(tasks) == 2
    for task in tasks:
        results = task["annotations"][0]["result"]
        for result in results:
            assert result["to_name"] == "image" and f'name="{result["from_name"]}"' in config
            if result["type"] == "polygonlabels":
                assert all(0 <= v <= 100 for p in result["value"]["points"] for v in p)
                assert result["original_width"] == W and result["original_height"] == H
        region_ids = {r["id"] for r in results if r["type"] == "polygonlabels"}
        per_region = [r for r in results if r["type"] == "choices" and r["from_name"] == "style"]
        assert per_region and all(r["id"] in region_ids for r in per_region)


def test_label_studios_own_converter_reads_our_export(app, tmp_path):
    """Label Studio's converter (label_studio_sdk.converter, what Label Studio runs for its COCO export) reads our
    tasks with our labelling config: the same polygons, at the same place, as our own COCO file."""
    converter = pytest.importorskip("label_studio_sdk.converter.converter",
                                    reason="label-studio-sdk is not installed (.ci/run installs it, see there)")
    _workspace(app)
    with _export_zip(app, {"formats": ["coco", "labelstudio"], "split": {"val": 0, "test": 0}}) as zf:
        zf.extractall(tmp_path / "x")
    root = tmp_path / "x"
    convert = converter.Converter(config=(root / "labelstudio/config.xml").read_text(), project_dir=str(root),
                                  download_resources=False)
    convert.convert_to_coco(str(root / "labelstudio/train.json"), str(tmp_path / "ls"), is_dir=False)
    theirs = json.loads((tmp_path / "ls/result.json").read_text())
    ours = json.loads((root / "coco/train.json").read_text())

    def boxes(coco: dict) -> list:
        return sorted([round(v, 1) for v in a["bbox"]] for a in coco["annotations"])

    assert len(theirs["images"]) == len(ours["images"]) == 2
    assert {(i["width"], i["height"]) for i in theirs["images"]} == {(W, H)}
    assert len(theirs["annotations"]) == len(ours["annotations"]) == 4
    assert boxes(theirs) == boxes(ours)


# --- refusals -----------------------------------------------------------------------------------------------------


def test_a_malformed_file_does_not_drop_its_siblings_nor_leave_an_orphan(app, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    good = {"version": "5.5.0", "flags": {}, "imagePath": "a.jpg", "imageData": None, "imageHeight": H,
            "imageWidth": W, "shapes": [_shape("tribal", [[10, 10], [100, 10], [100, 100]])]}
    bad = {**good, "imagePath": "b.jpg",
           "shapes": [_shape("tribal", [[10, 10], [100, 10], [100, 100]]), _shape("x", [[1, "a"]], "point")]}
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, seed in (("a.jpg", 1), ("b.jpg", 2), ("c.jpg", 3)):
            zf.writestr(name, jpeg(smooth_image(seed, W, H)))
        zf.writestr("a.json", json.dumps(good))
        zf.writestr("b.json", json.dumps(bad))
        zf.writestr("c.json", deep)
        zf.writestr("d.json", "{not json")
    with app.app_context():
        report = import_path(path, "labelme")
        stored = db.session.scalars(select(ImageRow)).all()
    assert report.documents_written == 1 and len(stored) == 1  # a.json only; b's image is not kept half-labelled
    reasons = {s["item"]: s["reason"] for s in report.skipped}
    assert "nested too deeply" in reasons["c.json"] and "not readable JSON" in reasons["d.json"]
    assert "image not imported" in reasons["b.json"] and "shape 1 (point)" in reasons["b.json"]


@pytest.mark.parametrize("fmt, name, data, reason", [
    ("cvat", "a.xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><annotations>&e;</annotations>',
     "refused XML"),
    ("cvat", "a.xml", b"<annotations><image name='a.jpg' width='320' height='240'><polygon label='t' "
                      b"points='1,1;2,nan;3,3'/></image></annotations>", "finite"),
    ("labelstudio", "a.json", json.dumps([{"data": {"image": "a.jpg"}, "annotations": [{"result": [
        {"id": "r", "type": "polygonlabels", "value": {"points": [[1, 1], [2, 2], [3, 1]]}}]}]}]).encode(),
     "original_width"),
])
def test_cvat_and_labelstudio_refusals_name_the_item(app, tmp_path, fmt, name, data, reason):
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.jpg", jpeg(smooth_image(1, W, H)))
        zf.writestr(name, data)
    with app.app_context():
        report = import_path(path, fmt)
        assert db.session.scalars(select(ImageRow)).all() == []
    assert reason in report.skipped[0]["reason"], report.skipped


def test_box_regions_in_every_export(app, tmp_path):
    from pycocotools.coco import COCO

    box = {"type": "Polygon", "coordinates": [[[20, 150], [120, 150], [120, 220], [20, 220], [20, 150]]]}
    with app.app_context():
        add_image(jpeg(smooth_image(3, W, H)), [
            {"id": "outline", "geometry": disc(220, 80, 50), "style": "tribal"},
            {"id": "weak", "kind": "box", "geometry": box, "style": "japanese"},
        ])
    with _export_zip(app, {"formats": ["coco", "masks", "yolo", "labelme", "cvat", "labelstudio"],
                           "split": {"val": 0, "test": 0}}) as zf:
        zf.extractall(tmp_path)
    coco = json.loads((tmp_path / "coco/train.json").read_text())
    by_region = {a["attributes"]["region_id"]: a for a in coco["annotations"]}
    assert "segmentation" not in by_region["weak"] and by_region["weak"]["bbox"] == [20, 150, 100, 70]
    assert by_region["weak"]["attributes"]["kind"] == "box"
    api = COCO(str(tmp_path / "coco/train.json"))  # pycocotools takes bbox-only annotations
    assert len(api.getAnnIds()) == 2
    sha = coco["images"][0]["sha256"]
    semantic = np.asarray(Image.open(tmp_path / f"masks/train/{sha}.png"))
    assert semantic[80, 220] == 255 and not semantic[150:220, 20:120].any()  # the box is not drawn as a mask
    assert len((tmp_path / f"yolo/labels/train/{sha}.txt").read_text().splitlines()) == 1  # nor written as YOLO-seg
    rows = (tmp_path / "boxes/labels.csv").read_text().splitlines()
    assert rows[0].startswith("split,image") and ",weak,japanese,20,150,120,220" in rows[1] and len(rows) == 2
    shapes = json.loads((tmp_path / f"labelme/train/{sha}.json").read_text())["shapes"]
    assert [s["shape_type"] for s in shapes] == ["polygon", "rectangle"]
    assert '<box label="tattoo"' in (tmp_path / "cvat/train.xml").read_text()
    results = json.loads((tmp_path / "labelstudio/train.json").read_text())[0]["annotations"][0]["result"]
    rect = next(r for r in results if r["type"] == "rectanglelabels")
    assert rect["value"]["x"] == pytest.approx(20 * 100 / W, abs=1e-5)
    assert rect["value"]["height"] == pytest.approx(70 * 100 / H, abs=1e-5)


CVAT_TASK = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="photos/a.jpg" width="320" height="240">
    <polygon label="tattoo" source="manual" occluded="1" points="10,10;100,10;100,100;10,100" z_order="2">
      <attribute name="style">tribal</attribute>
    </polygon>
    <polygon label="japanese" source="manual" occluded="0" points="150,20;200,20;200,60" z_order="0" group_id="4"/>
    <polygon label="japanese" source="manual" occluded="0" points="250,20;300,20;300,60" z_order="0" group_id="4"/>
    <box label="tattoo" source="manual" occluded="0" xtl="20.5" ytl="150" xbr="120" ybr="230" z_order="1">
      <attribute name="motifs">rose;skull</attribute>
    </box>
    <mask label="tattoo" source="manual" occluded="0" rle="{rle}" left="200" top="150" width="20" height="10" z_order="3"/>
    <polyline label="tattoo" source="manual" occluded="0" points="1,1;5,5" z_order="0"/>
    <tag label="bad_example" source="manual"/>
    <tag label="japanese" source="manual"/>
  </image>
</annotations>
"""


def test_cvat_task_import(app, tmp_path):
    mask = np.zeros((10, 20), np.uint8)
    mask[2:8, 3:17] = 1
    runs = run_lengths(mask.ravel())  # CVAT's mask RLE: row by row, starting with background
    path = tmp_path / "task.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("annotations.xml", CVAT_TASK.replace("{rle}", ", ".join(map(str, runs))))
        zf.writestr("images/photos/a.jpg", jpeg(smooth_image(7, W, H)))
    with app.app_context():
        report = import_path(path, "cvat")
        assert report.skipped_count == 0, report.skipped
        image = db.session.scalars(select(ImageRow)).one()
        doc = current_document(image.id)
    assert report.ignored_names == {"<polyline>": 1, "occluded": 1}
    assert doc["tags"] == {"styles": ["japanese"], "flags": ["bad_example"]}
    grouped, box, square, traced = doc["regions"]  # by z_order: 0, 1, 2, 3
    assert grouped["style"] == "japanese" and grouped["geometry"]["type"] == "MultiPolygon"
    assert box["kind"] == "box" and box["motifs"] == ["rose", "skull"]
    assert box["geometry"]["coordinates"][0][0] == [20.5, 150]
    assert square["style"] == "tribal" and square["kind"] == "mask"
    assert region_raster(traced["geometry"], W, H)[152:158, 203:217].all()
    assert region_raster(traced["geometry"], W, H).sum() == mask.sum()
    assert image.status == "submitted"


def test_label_studio_project_import(app, tmp_path):
    tasks = [{
        "id": 7, "data": {"image": "/data/upload/3/1a2b3c4d-arm.jpg"},
        "annotations": [{"id": 1, "was_cancelled": False, "result": [
            {"id": "p1", "type": "polygonlabels", "from_name": "label", "to_name": "image",
             "original_width": W, "original_height": H,
             "value": {"points": [[10, 10], [50, 10], [50, 50], [10, 50]], "polygonlabels": ["watercolor"]}},
            {"id": "r1", "type": "rectanglelabels", "from_name": "box", "to_name": "image",
             "original_width": W, "original_height": H,
             "value": {"x": 60, "y": 60, "width": 25, "height": 25, "rotation": 0, "rectanglelabels": ["tattoo"]}},
            {"id": "r2", "type": "rectanglelabels", "from_name": "box", "to_name": "image",
             "original_width": W, "original_height": H,
             "value": {"x": 60, "y": 10, "width": 10, "height": 10, "rotation": 30, "rectanglelabels": ["tattoo"]}},
            {"id": "r1", "type": "choices", "from_name": "style", "to_name": "image",
             "value": {"choices": ["tribal"]}},
            {"id": "img", "type": "choices", "from_name": "flags", "to_name": "image",
             "value": {"choices": ["store_front"]}},
        ]}],
    }]
    path = tmp_path / "ls.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("export.json", json.dumps(tasks))
        zf.writestr("media/arm.jpg", jpeg(smooth_image(8, W, H)))
    with app.app_context():
        report = import_path(path, "labelstudio")
        assert report.skipped_count == 0, report.skipped
        doc = current_document(db.session.scalars(select(ImageRow)).one().id)
    polygon, box, rotated = doc["regions"]
    assert polygon["style"] == "watercolor" and polygon["kind"] == "mask"
    assert region_raster(polygon["geometry"], W, H).sum() == pytest.approx(0.4 * W * 0.4 * H, rel=0.02)
    assert box["kind"] == "box" and box["style"] == "tribal"
    assert box["geometry"]["coordinates"][0][:3] == [[192.0, 144.0], [272.0, 144.0], [272.0, 204.0]]
    assert rotated["kind"] == "mask"  # a rotated rectangle is no axis-aligned box
    assert doc["tags"]["flags"] == ["store_front"]


def test_single_cvat_and_label_studio_files_through_the_api(app, admin):
    def upload(data: bytes, fmt: str, name: str):
        return admin.client.post(f"/api/v1/imports?format={fmt}", data={"file": (io.BytesIO(data), name)},
                                 headers=admin._headers(), content_type="multipart/form-data")

    xml = CVAT_TASK.replace("{rle}", "200")
    resp = upload(xml.encode(), "cvat", "annotations.xml")
    assert resp.status_code == 202, resp.get_json()
    job = admin.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()
    assert job["status"] == "succeeded"
    assert "not found in the dataset" in job["result"]["skipped"][0]["reason"]  # an annotation file without images
    resp = upload(b'[{"data": {"image": "x.jpg"}}]', "labelstudio", "export.json")
    assert resp.status_code == 202
    assert upload(xml.encode(), "labelstudio", "annotations.xml").status_code == 415
    assert upload(b"{}", "cvat", "a.json").status_code == 415
