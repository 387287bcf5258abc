"""Imports: POST /api/v1/imports refusals, COCO / LabelMe / YOLO / YOLO-seg readers, idempotence, the real
tattoo photos (YOLO boxes) and the export -> import round trip into a fresh workspace."""
import base64
import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from backend.core.annotations import current_document
from backend.datasets.archive import ArchiveRefused
from backend.datasets.export import create_export
from backend.datasets.importers import import_path
from backend.datasets.coco import rle_segmentation
from backend.db.extensions import db
from backend.db.models import Image as ImageRow
from backend.db.models import Job, Region

from ..support.app import REAL_TATTOOS, build_app
from ..support.datasets import add_image, disc, donut, iou, jpeg, region_raster, ring, smooth_image

W, H = 160, 120


def _error(resp):
    body = resp.get_json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def _upload(client, data: bytes, fmt="coco", name="set.zip", **query):
    params = "&".join(f"{k}={v}" for k, v in {"format": fmt, **query}.items())
    return client.client.post(f"/api/v1/imports?{params}", data={"file": (io.BytesIO(data), name)},
                              headers=client._headers(), content_type="multipart/form-data")


def _zip_bytes(entries: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            if isinstance(name, zipfile.ZipInfo):
                zf.writestr(name, data)
            else:
                zf.writestr(name, data)
    return out.getvalue()


def _coco_dataset() -> dict:
    """A hand-made COCO dataset: polygons, an RLE with a hole, a style as category, one as attribute."""
    pictures = [jpeg(smooth_image(k, W, H)) for k in range(3)]
    hole = donut(80, 60, 45, 15)
    mask = np.asfortranarray(region_raster(hole, W, H).astype(np.uint8))
    coco = {
        "images": [{"id": 10 + k, "file_name": f"img{k}.jpg", "width": W, "height": H} for k in range(3)],
        "categories": [{"id": 1, "name": "tribal"}, {"id": 2, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "iscrowd": 0,
             "segmentation": [[10, 10, 60, 10, 60, 50, 10, 50]]},
            {"id": 2, "image_id": 10, "category_id": 2, "iscrowd": 0, "segmentation": rle_segmentation(mask),
             "attributes": {"style": "watercolor", "motifs": ["rose", "skull"]}},
            {"id": 3, "image_id": 11, "category_id": 2, "iscrowd": 0, "segmentation": [[1, 1, 2, 2]]},
            {"id": 4, "image_id": 11, "category_id": 2, "iscrowd": 0,
             "segmentation": [[100, 100, 150, 100, 150, 118]]},
        ],
    }
    entries = {f"data/img{k}.jpg": pictures[k] for k in range(3)}
    entries["data/annotations/instances.json"] = json.dumps(coco).encode()
    return entries


# --- refusals -----------------------------------------------------------------------------------------------------

def _symlink_zip() -> bytes:
    info = zipfile.ZipInfo("images/link.jpg")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip_bytes({info: "/etc/passwd"})


@pytest.mark.parametrize("entries, code", [
    ({"../../evil.jpg": b"x"}, "path_traversal"),
    ({"ok/../../evil.jpg": b"x"}, "path_traversal"),
    ({"/etc/cron.d/evil": b"x"}, "absolute_path"),
    ({"C:\\evil.jpg": b"x"}, "absolute_path"),
    ({"zeros.bin": bytes(4 * 1024 * 1024)}, "compression_ratio"),
    ({f"f{i}.txt": b"x" for i in range(6)}, "too_many_entries"),
])
def test_import_refuses_dangerous_archives(app, admin, entries, code):
    app.config["MAX_IMPORT_ENTRIES"] = 5
    resp = _upload(admin, _zip_bytes(entries))
    assert resp.status_code == 422, resp.get_json()
    assert _error(resp)["code"] == code
    _assert_nothing_happened(app)


def test_import_refuses_symlinks(app, admin):
    resp = _upload(admin, _symlink_zip())
    assert resp.status_code == 422 and _error(resp)["code"] == "symlink"
    _assert_nothing_happened(app)


def _assert_nothing_happened(app):
    uploads = Path(app.config["WORKSPACE"]) / "tmp" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert not (Path(app.config["WORKSPACE"]) / "evil.jpg").exists()
    with app.app_context():
        assert db.session.scalars(select(Job)).all() == []
        assert db.session.scalars(select(ImageRow)).all() == []


def test_import_request_errors(app, admin, annotator, reviewer):
    archive = _zip_bytes(_coco_dataset())
    for client in (annotator, reviewer):
        assert _upload(client, archive).status_code == 403
    missing = admin.client.post("/api/v1/imports?format=coco", headers=admin._headers(), data={},
                                content_type="multipart/form-data")
    assert missing.status_code == 400 and _error(missing)["code"] == "missing_file"
    assert _upload(admin, archive, fmt="pascal").status_code == 422
    assert _upload(admin, archive, fmt="coco", status="done").status_code == 422
    assert _upload(admin, b"GIF89a....", name="x.gif").status_code == 415
    assert _upload(admin, b'{"shapes": []}', fmt="yolo", name="x.json").status_code == 415
    not_zip = _upload(admin, b"PK\x03\x04 but not really a zip")
    assert not_zip.status_code == 422 and _error(not_zip)["code"] == "bad_archive"
    _assert_nothing_happened(app)


def test_import_path_refuses_archives_too(app, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_zip_bytes({"../x.jpg": b"x"}))
    with app.app_context():
        with pytest.raises(ArchiveRefused) as info:
            import_path(bad, "coco")
        assert info.value.code == "path_traversal"
        with pytest.raises(ValueError):
            import_path(tmp_path, "voc")
        with pytest.raises(FileNotFoundError):
            import_path(tmp_path / "missing", "coco")
    assert not (tmp_path / "x.jpg").exists()


# --- formats ------------------------------------------------------------------------------------------------------

def test_coco_zip_import_through_the_api(app, admin):
    resp = _upload(admin, _zip_bytes(_coco_dataset()))
    assert resp.status_code == 202, resp.get_json()
    job = admin.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()
    assert job["status"] == "succeeded", job
    report = job["result"]
    # img1 has one bad annotation among good ones: the whole item is refused and its image not stored (no half
    # imports, no orphan image); img2 has no annotation: stored, nothing to write.
    assert report["images_added"] == 2 and report["documents_written"] == 1 and report["regions_added"] == 2
    assert report["without_labels"] == 1
    reasons = " | ".join(s["reason"] for s in report["skipped"])
    assert report["skipped_count"] == 1 and "annotation 3: a COCO polygon needs at least 3 points" in reasons
    assert "image not imported" in reasons
    assert report["ignored_names"] == {"car": 1}
    with app.app_context():
        first = db.session.scalars(select(ImageRow).order_by(ImageRow.id)).first()
        assert first.status == "submitted" and first.source == "import"
        doc = current_document(first.id)
        square, ring_region = doc["regions"]
        assert square["style"] == "tribal" and square["source"] == "human"  # the category is a style
        assert ring_region["style"] == "watercolor" and ring_region["motifs"] == ["rose", "skull"]
        assert iou(region_raster(ring_region["geometry"], W, H), region_raster(donut(80, 60, 45, 15), W, H)) == 1.0
        assert len(ring_region["geometry"]["coordinates"]) == 2  # outer ring + hole from the RLE
        assert not list((Path(app.config["WORKSPACE"]) / "tmp" / "uploads").iterdir())
    again = admin.get(f"/api/v1/jobs/{_upload(admin, _zip_bytes(_coco_dataset())).get_json()['job_id']}").get_json()
    assert again["result"]["images_added"] == 0 and again["result"]["documents_written"] == 0
    assert again["result"]["already_imported"] == 1


def test_label_files_cannot_reach_outside_the_dataset(app, tmp_path):
    root = tmp_path / "set"
    (root / "annotations").mkdir(parents=True)
    (tmp_path / "secret.jpg").write_bytes(jpeg(smooth_image(1)))
    coco = {"images": [{"id": 1, "file_name": "../secret.jpg"}, {"id": 2, "file_name": "/etc/hostname"},
                       {"id": 3, "file_name": "nowhere.jpg"}],
            "annotations": [], "categories": []}
    (root / "annotations" / "a.json").write_text(json.dumps(coco))
    with app.app_context():
        report = import_path(root, "coco")
        assert db.session.scalars(select(ImageRow)).all() == []
    reasons = [s["reason"] for s in report.skipped]
    assert any("outside the dataset" in r for r in reasons)
    assert any("absolute" in r for r in reasons)
    assert any("not found" in r for r in reasons)


def test_labelme_json_with_embedded_image(app, admin):
    picture = jpeg(smooth_image(5, W, H))
    document = {
        "version": "5.5.0", "flags": {"japanese": True, "bad_example": True, "unknown": True},
        "imagePath": "missing.jpg", "imageData": base64.b64encode(picture).decode(),
        "imageHeight": H, "imageWidth": W,
        "shapes": [
            {"label": "japanese", "points": [[10, 10], [60, 10], [60, 60]], "group_id": None,
             "shape_type": "polygon", "flags": {"koi": True, "wave": False}},
            {"label": "tattoo", "points": [[80, 20], [120, 60]], "group_id": 7, "shape_type": "rectangle",
             "flags": {}},
            {"label": "tattoo", "points": [[130, 80], [150, 80], [150, 100]], "group_id": 7,
             "shape_type": "polygon", "flags": {}},
            {"label": "tattoo", "points": [[1, 1], [5, 5]], "group_id": None, "shape_type": "line", "flags": {}},
        ],
    }
    resp = _upload(admin, json.dumps(document).encode(), fmt="labelme", name="one.json", status="accepted")
    assert resp.status_code == 202
    report = admin.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()["result"]
    # LabelMe's converters draw a line as a 10 px stroke: it is a region too
    assert report["documents_written"] == 1 and report["regions_added"] == 3 and report["skipped_count"] == 0
    with app.app_context():
        image = db.session.scalars(select(ImageRow)).one()
        assert image.status == "accepted"
        doc = current_document(image.id)
    assert doc["tags"] == {"styles": ["japanese"], "flags": ["bad_example"]}
    first, grouped, line = doc["regions"]
    assert first["style"] == "japanese" and first["motifs"] == ["koi"]
    assert grouped["style"] is None and grouped["geometry"]["type"] == "MultiPolygon"
    assert 40 <= region_raster(line["geometry"], W, H).sum() <= 80  # 4 * sqrt(2) px long, 10 px wide, clipped


def test_yolo_and_yolo_seg_folders(app, tmp_path):
    root = tmp_path / "yolo"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    (root / "data.yaml").write_text("names:\n  0: tattoo\n  1: tribal\n")
    (root / "images" / "train" / "a.jpg").write_bytes(jpeg(smooth_image(1, W, H)))
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.25 0.5\n0 0.2 0.2 0.1 0.1\n\n9 0.5 0.5 2 2\n")
    (root / "images" / "val" / "b.jpg").write_bytes(jpeg(smooth_image(2, W, H)))  # no labels: background
    (root / "images" / "val" / "c.jpg").write_bytes(jpeg(smooth_image(3, W, H)))
    (root / "labels" / "val" / "c.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n")
    with app.app_context():
        boxes = import_path(root, "yolo")  # a.txt has a bad line, c.txt a polygon: both items refused in full
        assert boxes.images_added == 1 and boxes.documents_written == 0 and boxes.without_labels == 1
        assert [s["reason"] for s in boxes.skipped] == [
            "labels refused, image not imported: a.txt line 4: coordinates must be relative to the image size (0..1)",
            "labels refused, image not imported: c.txt line 1: a polygon line in a box file (import it with "
            "--format yolo-seg)"]
        assert db.session.query(ImageRow).count() == 1  # no image without its labels
        (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.25 0.5\n0 0.2 0.2 0.1 0.1\n")
        (root / "labels" / "val" / "c.txt").unlink()
        boxes = import_path(root, "yolo")
        assert boxes.images_added == 1 and boxes.documents_written == 1 and boxes.skipped_count == 0
        regions = db.session.scalars(select(Region).order_by(Region.pk)).all()
        assert [r.style for r in regions] == ["tribal", None]
        assert all(r.source == "human" and r.kind == "box" and r.id.startswith("yolo-box-") for r in regions)
        assert regions[0].bbox == [60.0, 30.0, 100.0, 90.0]
        statuses = {im.original_filename: im.status for im in db.session.scalars(select(ImageRow))}
        assert statuses["a.jpg"] == "new"  # boxes only: the image waits in the queue for its outlines
        (root / "labels" / "val" / "c.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n")
        polygons = import_path(root, "yolo-seg")
        assert polygons.documents_written == 1 and polygons.regions_added == 1
        assert polygons.skipped_count == 1  # a.txt: its lines are boxes, not polygons
        assert polygons.skipped[0]["reason"].startswith("labels refused, image not imported: a.txt line 1")
        c = db.session.scalars(select(ImageRow).where(ImageRow.original_filename == "c.jpg")).one()
        assert c.status == "submitted"
        assert current_document(c.id)["regions"][0]["source"] == "human"


@pytest.mark.skipif(not REAL_TATTOOS.is_dir(), reason="../shared/data/real-tattoos is not on this machine")
def test_real_tattoo_photos_with_yolo_boxes(app):
    labels = sorted((REAL_TATTOOS / "images").glob("*.txt"))
    expected_boxes = sum(1 for f in labels for line in f.read_text().splitlines() if line.strip())
    with app.app_context():
        report = import_path(REAL_TATTOOS, "yolo")
        images = db.session.scalars(select(ImageRow)).all()
        regions = db.session.scalars(select(Region)).all()
        # Two of the photos are the same file with different boxes: stored once, the second label set reported.
        assert len(images) == report.images_added == len(labels) - 1 and report.images_existing == 1
        assert report.skipped_count == 1 and "already has an annotation" in report.skipped[0]["reason"]
        assert len(regions) == report.regions_added and abs(len(regions) - expected_boxes) <= 6
        assert all(r.source == "human" and r.kind == "box" and r.style is None for r in regions)
        assert all(im.status == "new" and im.source == "import" for im in images)
        for r in regions:
            image = db.session.get(ImageRow, r.image_id)
            x0, y0, x1, y1 = r.bbox
            assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height
        assert set(report.ignored_names) == {l.strip() for l in (REAL_TATTOOS / "classes.txt").read_text().splitlines()
                                             if l.strip()} & set(report.ignored_names)
        again = import_path(REAL_TATTOOS, "yolo")
        assert again.images_added == 0 and again.documents_written == 0
        assert again.already_imported == report.documents_written
        assert db.session.query(Region).count() == len(regions)


# --- round trip ---------------------------------------------------------------------------------------------------

def _source_workspace(app) -> dict:
    with app.app_context():
        add_image(jpeg(smooth_image(1, W, H)), [
            {"id": "donut", "geometry": donut(60, 60, 45, 18), "style": "japanese", "motifs": ["koi", "wave"]},
            {"id": "two-holes", "geometry": {"type": "Polygon", "coordinates": [
                ring(120, 60, 35), ring(110, 60, 8, clockwise=True), ring(132, 60, 8, clockwise=True)]},
             "style": "realism", "motifs": []},
        ], {"styles": ["japanese"], "flags": []})
        add_image(jpeg(smooth_image(2, W, H)), [
            {"id": "parts", "geometry": {"type": "MultiPolygon", "coordinates": [[ring(40, 40, 25)],
                                                                                [ring(110, 80, 30)]]},
             "style": None, "motifs": ["rose"]},
            {"id": "box", "kind": "box", "style": "tribal", "motifs": [], "geometry": {"type": "Polygon", "coordinates": [
                [[70, 5], [150, 5], [150, 45], [70, 45], [70, 5]]]}},
        ])
        add_image(jpeg(smooth_image(3, W, H)), [{"id": "flagged", "geometry": disc(80, 60, 30), "style": "tribal"}],
                  {"styles": [], "flags": ["store_front", "bad_example"]})
        rows = db.session.scalars(select(ImageRow)).all()
        documents = {im.sha256: current_document(im.id) for im in rows}
        export = create_export({"include_excluded": True})
        path = Path(app.config["WORKSPACE"]) / "exports" / export.path
    return {"documents": documents, "zip": path}


def _second_app(request, tmp_path):
    return build_app(tmp_path / "second", request.node.callspec.params["app"])


@pytest.mark.parametrize("fmt", ["coco", "labelme", "yolo-seg", "cvat", "labelstudio"])
def test_export_then_import_into_a_fresh_workspace(app, request, tmp_path, fmt):
    source = _source_workspace(app)
    copy = tmp_path / "export.zip"
    copy.write_bytes(source["zip"].read_bytes())
    target = _second_app(request, tmp_path)
    with target.app_context():
        report = import_path(copy, fmt)
        assert report.skipped_count == 0, report.skipped
        imported = {im.sha256: current_document(im.id) for im in db.session.scalars(select(ImageRow))}
    expected = source["documents"]
    if fmt == "yolo-seg":  # YOLO holds the training splits only, and no styles
        expected = {sha: d for sha, d in expected.items() if not d["tags"]["flags"]}
    assert set(imported) == set(expected)
    for sha, original in expected.items():
        got = imported[sha]
        if fmt == "yolo-seg":
            before = region_raster(original["regions"][0]["geometry"], W, H)
            after = np.zeros((H, W), bool)
            for region in got["regions"]:
                after |= region_raster(region["geometry"], W, H)
            union = np.zeros((H, W), bool)
            for region in [r for r in original["regions"] if r["kind"] != "box"]:  # boxes are not YOLO-seg
                union |= region_raster(region["geometry"], W, H)
            assert iou(after, union) >= 0.99 and before.any()
            continue
        assert got["tags"] == original["tags"]  # image styles and flags kept
        assert [r["id"] for r in got["regions"]] == [r["id"] for r in original["regions"]]
        for before, after in zip(original["regions"], got["regions"]):
            assert iou(region_raster(after["geometry"], W, H), region_raster(before["geometry"], W, H)) >= 0.99
            holes = lambda g: sum(len(p) - 1 for p in ([g["coordinates"]] if g["type"] == "Polygon"  # noqa: E731
                                                       else g["coordinates"]))
            assert holes(after["geometry"]) == holes(before["geometry"])
            assert after["style"] == before["style"] and after["motifs"] == before["motifs"]
            assert after["source"] == before["source"] and after["kind"] == before["kind"]
