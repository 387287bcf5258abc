"""Exports end to end on SQLite and PostgreSQL: layout, manifest hashes, COCO via pycocotools, masks, crops,
YOLO-seg, LabelMe, determinism, leak-free splits, snapshot consistency under concurrent saves."""
import csv
import hashlib
import io
import json
import multiprocessing
import os
import threading
import zipfile
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from sqlalchemy import select

from backend.core.annotations import current_document, save_document
from backend.datasets import export as export_module
from backend.datasets.export import create_export
from backend.datasets.render import render_image
from backend.db.extensions import db
from backend.core.geometry_raster import rasterize
from backend.db.models import Export
from backend.db.models import Image as ImageRow
from backend.media.storage import BlobStore

from ..support.datasets import (LABELME_SCHEMA, add_image, disc, donut, iou, jpeg, near_duplicate, region_raster,
                                smooth_image)

W, H = 160, 120


def _regions(k: int) -> list[dict]:
    return [
        {"id": f"ink-{k}-a", "geometry": donut(55, 60, 40, 15), "style": "japanese", "motifs": ["koi", "wave"]},
        {"id": f"ink-{k}-b", "geometry": disc(125, 45, 28), "style": "realism" if k % 2 else None, "motifs": []},
    ]


def build_dataset() -> dict:
    """Accepted images with regions (holes, untrainable styles), planted near-duplicates, a flagged image, a
    submitted image and an EXIF-rotated photo. Needs an app context."""
    ids = {"plain": [], "pairs": [], "flagged": None, "submitted": None, "rotated": None}
    for k in range(5):
        ids["plain"].append(add_image(jpeg(smooth_image(k, W, H)), _regions(k)))
    for k in range(100, 102):
        picture = smooth_image(k, W, H)
        a = add_image(jpeg(picture), _regions(k))
        b = add_image(near_duplicate(picture), _regions(k))
        ids["pairs"].append((a, b))
    ids["flagged"] = add_image(jpeg(smooth_image(200, W, H)), _regions(200),
                               {"styles": [], "flags": ["not_tattoo"]})
    ids["submitted"] = add_image(jpeg(smooth_image(300, W, H)), _regions(300), status="submitted")
    # Stored sideways with EXIF orientation 6: the upright picture is H wide and W high.
    raw = smooth_image(400, W, H)
    ids["rotated"] = add_image(jpeg(raw, exif_orientation=6), [
        {"id": "rot-a", "geometry": donut(60, 80, 45, 12), "style": "tribal", "motifs": []}])
    return ids


def _zip(app, export: Export) -> zipfile.ZipFile:
    return zipfile.ZipFile(Path(app.config["WORKSPACE"]) / "exports" / export.path)


def _manifest(zf: zipfile.ZipFile) -> dict:
    return json.loads(zf.read("manifest.json"))


@pytest.fixture
def dataset(app):
    with app.app_context():
        return build_dataset()


def test_layout_manifest_and_hashes(app, dataset):
    with app.app_context():
        export = create_export({})
        assert export.status == "succeeded" and export.path == f"{export.id}.zip"
        zf = _zip(app, export)
        assert export.size_bytes == (Path(app.config["WORKSPACE"]) / "exports" / export.path).stat().st_size
        assert not list((Path(app.config["WORKSPACE"]) / "exports").glob("*.part"))
    manifest = _manifest(zf)
    names = set(zf.namelist())
    # Every file but the manifest is listed with the sha256 and size of its bytes.
    assert set(manifest["files"]) == names - {"manifest.json"}
    for name, entry in manifest["files"].items():
        data = zf.read(name)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]

    exported = {im["id"]: im for im in manifest["images"]}
    expected = set(dataset["plain"]) | {i for pair in dataset["pairs"] for i in pair} | {dataset["rotated"]}
    assert set(exported) == expected  # accepted only; the flagged and the submitted image are not there
    assert manifest["excluded"] == [{"image_id": dataset["flagged"], "sha256": manifest["excluded"][0]["sha256"],
                                     "flags": ["not_tattoo"], "reason": "flagged out of training: not_tattoo"}]
    counts = manifest["counts"]
    assert sum(counts["images"].values()) == len(expected) and counts["excluded_images"] == 1
    assert all(counts["images"][s] > 0 for s in ("train", "val", "test"))
    for im in manifest["images"]:
        for folder in ("images", "masks", "masks_instance"):
            suffix = "jpg" if folder == "images" else "png"
            assert f"{folder}/{im['split']}/{im['sha256']}.{suffix}" in names
        assert f"labelme/{im['split']}/{im['sha256']}.json" in names
        assert f"yolo/labels/{im['split']}/{im['sha256']}.txt" in names
        assert f"yolo/images/{im['split']}/{im['sha256']}.jpg" in names
        assert im["version"] == 1
    assert {f"coco/{s}.json" for s in ("train", "val", "test")} <= names
    assert {"crops/labels.csv", "yolo/data.yaml", "README.md"} <= names
    assert manifest["filter"] == {"status": ["accepted"]} and manifest["split"]["seed"] == 0
    assert manifest["taxonomy"]["excluded_flags"] and "realism" not in manifest["taxonomy"]["trainable_styles"]
    assert manifest["export_id"] == export.id and manifest["format"] == "inklabel-export"
    with app.app_context():
        row = db.session.get(Export, export.id)
        assert row.manifest["counts"] == counts and "files" not in row.manifest and "images" not in row.manifest


def test_coco_and_masks_match_the_tools_rasterisation(app, dataset, tmp_path):
    with app.app_context():
        export = create_export({"formats": ["coco", "masks"]})
        rows = {im.id: im for im in db.session.scalars(select(ImageRow))}
        documents = {image_id: current_document(image_id) for image_id in rows}
    zf = _zip(app, export)
    manifest = _manifest(zf)
    assert not any(n.startswith(("crops/", "yolo/", "labelme/")) for n in zf.namelist())
    seen = set()
    for split in ("train", "val", "test"):
        path = tmp_path / f"{split}.json"
        path.write_bytes(zf.read(f"coco/{split}.json"))
        api = COCO(str(path))
        assert [c["name"] for c in api.loadCats(api.getCatIds())] == ["tattoo"]
        for image in api.loadImgs(api.getImgIds()):
            row = rows[image["id"]]  # COCO image ids are the tool's image ids
            seen.add(image["id"])
            assert (image["width"], image["height"], image["sha256"]) == (row.width, row.height, row.sha256)
            assert image["file_name"] == f"images/{split}/{row.sha256}.jpg"
            regions = documents[image["id"]]["regions"]
            anns = api.loadAnns(api.getAnnIds(imgIds=[image["id"]]))
            assert len(anns) == len(regions)
            for ann, region in zip(anns, regions):
                truth = region_raster(region["geometry"], row.width, row.height)
                assert iou(api.annToMask(ann), truth) >= 0.99
                holes = len(region["geometry"]["coordinates"]) > 1
                assert isinstance(ann["segmentation"], dict) == holes  # RLE exactly for regions with holes
                assert ann["attributes"]["style"] == region["style"]
                assert ann["attributes"]["motifs"] == region["motifs"]
                assert ann["attributes"]["region_id"] == region["id"]
                assert abs(ann["area"] - truth.sum()) <= 0.03 * truth.sum()
            # Semantic and instance masks: the image's upright size, the union and the region numbers.
            semantic = cv2.imdecode(np.frombuffer(zf.read(f"masks/{split}/{row.sha256}.png"), np.uint8),
                                    cv2.IMREAD_UNCHANGED)
            instance = cv2.imdecode(np.frombuffer(zf.read(f"masks_instance/{split}/{row.sha256}.png"), np.uint8),
                                    cv2.IMREAD_UNCHANGED)
            assert semantic.shape == instance.shape == (row.height, row.width)
            assert semantic.dtype == np.uint8 and instance.dtype == np.uint16
            assert set(np.unique(semantic)) <= {0, 255}
            assert np.array_equal(semantic, rasterize([r["geometry"] for r in regions], row.width, row.height))
            assert set(np.unique(instance)) == set(range(len(regions) + 1))
    assert seen == {im["id"] for im in manifest["images"]}
    rotated = rows[dataset["rotated"]]
    assert (rotated.width, rotated.height) == (H, W)  # upright


def test_exported_images_are_upright_and_without_metadata(app, dataset):
    with app.app_context():
        export = create_export({"formats": ["masks"]})
        rotated = db.session.get(ImageRow, dataset["rotated"])
        plain = db.session.get(ImageRow, dataset["plain"][0])
        original = BlobStore.from_config(app.config).original_path(plain.sha256, plain.format).read_bytes()
    zf = _zip(app, export)
    split_of = {im["id"]: im["split"] for im in _manifest(zf)["images"]}
    data = zf.read(f"images/{split_of[rotated.id]}/{rotated.sha256}.jpg")
    picture = Image.open(io.BytesIO(data))
    assert picture.size == (rotated.width, rotated.height) and "exif" not in picture.info
    # A plain JPEG (no metadata, nothing to rotate) is exported byte for byte.
    assert zf.read(f"images/{split_of[plain.id]}/{plain.sha256}.jpg") == original


def test_crops_only_for_trainable_styles(app, dataset):
    with app.app_context():
        export = create_export({"formats": ["crops"], "crops": {"margin": 0.1, "mask_background": True}})
    zf = _zip(app, export)
    manifest = _manifest(zf)
    rows = list(csv.DictReader(io.StringIO(zf.read("crops/labels.csv").decode())))
    crop_files = sorted(n for n in zf.namelist() if n.startswith("crops/") and n.endswith(".jpg"))
    assert sorted(r["path"] for r in rows) == crop_files
    assert {r["style"] for r in rows} == {"japanese", "tribal"}  # realism is not trainable; unstyled regions skipped
    n_images = sum(manifest["counts"]["images"].values())
    assert len(rows) == n_images  # one trainable region per image
    assert manifest["counts"]["crops_skipped"]["untrainable_style"] > 0
    assert manifest["counts"]["crops_skipped"]["no_style"] > 0
    for row in rows:
        # Region ids are unique per image: the near-duplicate pairs reuse theirs, so the second crop of a pair
        # gets the image's sha256 prefix.
        assert row["path"] in (f"crops/{row['split']}/{row['style']}/{row['region_id']}.jpg",
                               f"crops/{row['split']}/{row['style']}/{row['region_id']}-{row['image'][:12]}.jpg")
        crop = Image.open(io.BytesIO(zf.read(row["path"])))
        x0, y0, x1, y1 = (float(row[k]) for k in ("x0", "y0", "x1", "y1"))
        assert crop.width >= x1 - x0 and crop.height >= y1 - y0
    assert len({r["path"] for r in rows}) == len(rows)
    assert any(r["path"].endswith(f"-{r['image'][:12]}.jpg") for r in rows)
    japanese = next(r for r in rows if r["style"] == "japanese")
    assert japanese["motifs"] == "koi;wave"
    # The background (and the hole) of a masked crop is the ImageNet mean colour.
    crop = np.asarray(Image.open(io.BytesIO(zf.read(japanese["path"]))))
    centre = crop[crop.shape[0] // 2, crop.shape[1] // 2].astype(int)
    assert np.abs(centre - (124, 116, 104)).max() < 10
    assert "masks/" not in " ".join(zf.namelist())
    # Non-trainable styles stay in the segmentation data.
    assert manifest["counts"]["styles"]["train"].get("realism", 0) + \
        manifest["counts"]["styles"]["val"].get("realism", 0) + manifest["counts"]["styles"]["test"].get("realism", 0) > 0


def test_yolo_seg_and_labelme_files(app, dataset):
    with app.app_context():
        export = create_export({"formats": ["yolo", "labelme"]})
        documents = {i: current_document(i) for i in dataset["plain"]}
        rows = {i: db.session.get(ImageRow, i) for i in dataset["plain"]}
    zf = _zip(app, export)
    split_of = {im["id"]: im["split"] for im in _manifest(zf)["images"]}
    assert "val: images/val" in zf.read("yolo/data.yaml").decode()
    for image_id, document in documents.items():
        row, split = rows[image_id], split_of[image_id]
        lines = zf.read(f"yolo/labels/{split}/{row.sha256}.txt").decode().splitlines()
        assert len(lines) == len(document["regions"])
        # Rasterised as Ultralytics does (fillPoly on the scaled ring): the donut keeps its hole.
        values = np.array(lines[0].split()[1:], dtype=float).reshape(-1, 2) * [row.width, row.height]
        filled = np.zeros((row.height, row.width), np.uint8)
        cv2.fillPoly(filled, [np.round(values).astype(np.int32)], 1)
        assert filled[60, 55] == 0 and filled[60, 55 + 27] == 1
        assert iou(filled, region_raster(document["regions"][0]["geometry"], row.width, row.height)) >= 0.9
        labelme_doc = json.loads(zf.read(f"labelme/{split}/{row.sha256}.json"))
        jsonschema.validate(labelme_doc, LABELME_SCHEMA)
        assert labelme_doc["imagePath"] == f"../../images/{split}/{row.sha256}.jpg"
        assert (labelme_doc["imageWidth"], labelme_doc["imageHeight"]) == (row.width, row.height)
        assert [s["region_id"] for s in labelme_doc["shapes"]] == [r["id"] for r in document["regions"]]


def test_two_exports_of_the_same_data_have_the_same_files(app, dataset):
    options = {"formats": ["coco", "masks", "crops", "yolo", "labelme"], "split": {"val": 0.2, "test": 0.2, "seed": 5}}
    with app.app_context():
        first = create_export(options)
        second = create_export(options)
    a, b = _manifest(_zip(app, first)), _manifest(_zip(app, second))
    assert a["export_id"] != b["export_id"]
    assert list(a["files"]) == list(b["files"]) and a["files"] == b["files"]
    assert a["images"] == b["images"] and a["split"] == b["split"]
    with app.app_context():
        third = create_export({**options, "split": {"val": 0.2, "test": 0.2, "seed": 6}})
    assert _manifest(_zip(app, third))["images"] != a["images"]  # another seed, other splits


def _render_processes(monkeypatch, count: str) -> None:
    """Render in `count` forked processes from the first image on ("0": threads)."""
    monkeypatch.setattr(export_module, "PROCESS_MIN_IMAGES", 1)
    monkeypatch.setenv("INKLABEL_EXPORT_PROCESSES", count)
    monkeypatch.setenv("INKLABEL_EXPORT_WORKERS", "2")


def test_render_processes_write_the_same_files_as_threads(app, dataset, monkeypatch):
    options = {"formats": ["coco", "masks", "crops", "yolo"], "images": True, "split": {"val": 0.2, "seed": 1}}
    manifests = {}
    for count in ("0", "2"):
        _render_processes(monkeypatch, count)
        with app.app_context():
            assert export_module.render_processes(export_module.RenderSettings(
                formats=frozenset({"masks"}), images=False, crop_margin=0, crop_mask_background=False,
                trainable=frozenset()), 10) == int(count)
            manifests[count] = _manifest(_zip(app, create_export(options)))
    assert manifests["0"]["files"] == manifests["2"]["files"]  # name -> sha256 and size of every entry
    assert manifests["0"]["images"] == manifests["2"]["images"]


_PARENT = os.getpid()


def die_in_a_render_process(task, settings):
    """render_image, but a render process dies on its first task (the exporting process renders as usual)."""
    if os.getpid() != _PARENT:
        os._exit(3)
    return render_image(task, settings)


def test_a_dead_render_process_leaves_its_images_to_the_exporting_process(app, dataset, monkeypatch, caplog):
    _render_processes(monkeypatch, "0")
    with app.app_context():
        expected = _manifest(_zip(app, create_export({"formats": ["coco", "masks"]})))
    _render_processes(monkeypatch, "2")
    monkeypatch.setattr(export_module, "render_image", die_in_a_render_process)
    with app.app_context():
        got = _manifest(_zip(app, create_export({"formats": ["coco", "masks"]})))
    assert got["files"] == expected["files"] and not got["skipped"]
    assert "render process died" in caplog.text


def test_a_cancelled_export_stops_its_render_processes(app, dataset, monkeypatch):
    _render_processes(monkeypatch, "2")
    before = set(multiprocessing.active_children())

    def progress(done, total=None, message=""):
        if done == 2:
            raise KeyboardInterrupt("cancelled")

    with app.app_context():
        with pytest.raises(KeyboardInterrupt):
            create_export({"formats": ["masks"]}, progress=progress)
    assert set(multiprocessing.active_children()) <= before


def test_planted_near_duplicates_share_a_split(app, dataset):
    for seed in (0, 1, 2):
        with app.app_context():
            export = create_export({"formats": ["coco"], "images": False, "split": {"val": 0.3, "test": 0.3,
                                                                                    "seed": seed}})
        manifest = _manifest(_zip(app, export))
        split_of = {im["id"]: im["split"] for im in manifest["images"]}
        sha_of = {im["id"]: im["sha256"] for im in manifest["images"]}
        for a, b in dataset["pairs"]:
            assert split_of[a] == split_of[b]
            assert sorted([sha_of[a], sha_of[b]]) in manifest["split"]["groups"]


def test_snapshot_is_pinned_while_annotators_save(app, dataset):
    """A save that lands after the export started is not in it, and is not blocked by it."""
    target = dataset["plain"][0]
    new_region = {"id": "late", "geometry": disc(80, 60, 30), "style": "tribal", "motifs": []}
    finished = []

    def save_elsewhere():
        with app.app_context():
            version = current_document(target)["version"]
            save_document(target, None, version, [new_region], {"styles": [], "flags": []}, allow_frozen=True)
            finished.append(current_document(target)["version"])
            db.session.remove()

    def progress(done, total=None, message=""):
        if done == 0:  # the images are pinned, no document read yet
            worker = threading.Thread(target=save_elsewhere)
            worker.start()
            worker.join(timeout=20)
            assert finished == [2], "the concurrent save was blocked by the export"

    with app.app_context():
        export = create_export({"formats": ["coco"], "images": False}, progress=progress)
        assert current_document(target)["regions"][0]["id"] == "late"
    zf = _zip(app, export)
    manifest = _manifest(zf)
    pinned = next(im for im in manifest["images"] if im["id"] == target)
    assert pinned["version"] == 1
    coco = json.loads(zf.read(f"coco/{pinned['split']}.json"))
    region_ids = [a["attributes"]["region_id"] for a in coco["annotations"] if a["image_id"] == target]
    assert region_ids == ["ink-0-a", "ink-0-b"]


def test_status_filter_and_excluded_split(app, dataset):
    with app.app_context():
        export = create_export({"formats": ["coco", "crops"], "images": False, "include_excluded": True,
                                "filter": {"status": ["submitted", "accepted"]}})
    zf = _zip(app, export)
    manifest = _manifest(zf)
    split_of = {im["id"]: im["split"] for im in manifest["images"]}
    assert dataset["submitted"] in split_of and split_of[dataset["submitted"]] in ("train", "val", "test")
    assert split_of[dataset["flagged"]] == "excluded"
    excluded = json.loads(zf.read("coco/excluded.json"))
    assert [im["id"] for im in excluded["images"]] == [dataset["flagged"]]
    assert excluded["images"][0]["inklabel"]["tags"]["flags"] == ["not_tattoo"]
    assert not any("/excluded/" in n for n in zf.namelist() if n.startswith("crops/"))


def test_unreadable_image_is_skipped_with_reason(app, dataset):
    with app.app_context():
        row = db.session.get(ImageRow, dataset["plain"][1])
        BlobStore.from_config(app.config).original_path(row.sha256, row.format).unlink()
        export = create_export({"formats": ["coco", "masks"]})
    manifest = _manifest(_zip(app, export))
    assert [s["image_id"] for s in manifest["skipped"]] == [dataset["plain"][1]]
    assert "No such file" in manifest["skipped"][0]["reason"] or "Errno" in manifest["skipped"][0]["reason"]
    assert dataset["plain"][1] not in {im["id"] for im in manifest["images"]}


def test_a_failed_export_leaves_no_file(app, dataset):
    class Stop(Exception):
        pass

    def progress(done, total=None, message=""):
        if done == 3:
            raise Stop("stop here")

    with app.app_context():
        with pytest.raises(Stop):
            create_export({}, progress=progress)
        row = db.session.scalars(select(Export)).one()
        assert row.status == "failed" and "stop here" in row.manifest["error"] and row.path is None
    assert not any((Path(app.config["WORKSPACE"]) / "exports").iterdir())


def test_options_are_validated(app):
    from pydantic import ValidationError

    with app.app_context():
        for bad in ({"formats": []}, {"formats": ["tiff"]}, {"split": {"val": 0.5, "test": 0.5}},
                    {"split": {"val": float("nan")}}, {"filter": {"status": ["done"]}}, {"extra": 1},
                    {"split": {"seed": "1"}}):
            with pytest.raises(ValidationError):
                create_export(bad)
        assert db.session.scalars(select(Export)).all() == []


def test_manifest_lists_the_models_behind_exported_regions(app):
    from backend.db.models import ModelVersion

    with app.app_context():
        model = ModelVersion(kind="segmenter", name="unet-r18", weights_path="m.safetensors")
        db.session.add(model)
        db.session.commit()
        add_image(jpeg(smooth_image(9, W, H)), [
            {"id": "pred", "geometry": disc(80, 60, 30), "style": None, "source": "model",
             "model_version": model.id, "confidence": 0.8},
            {"id": "drawn", "geometry": disc(30, 30, 20), "style": "tribal"}])
        export = create_export({"formats": ["coco"], "images": False})
    manifest = _manifest(_zip(app, export))
    assert [(m["id"], m["kind"], m["name"]) for m in manifest["model_versions"]] == [(1, "segmenter", "unet-r18")]
    coco = json.loads(_zip(app, export).read(f"coco/{manifest['images'][0]['split']}.json"))
    assert [a["attributes"]["source"] for a in coco["annotations"]] == ["model", "human"]
