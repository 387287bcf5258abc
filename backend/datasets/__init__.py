"""Datasets out and in (no Flask routes here; the API and CLI call these).

Out: `export.create_export(options, user_id=None, progress=None) -> Export` writes workspace/exports/<id>.zip:

    snapshot.py   pin the selected images' annotation versions; read each document at its pinned version
    splits.py     near-duplicate groups (pHash) and deterministic, leak-free train/val/test assignment
    render.py     everything written for one image (pure; runs on worker threads)
    coco.py, masks.py (+ pngio.py), crops.py, yolo.py, labelme.py, cvat.py, labelstudio.py   the formats
    boxes.py      box regions in the formats, and the class list (categories "tattoo" or "styles") they share
    archive.py    ZipOut (deterministic entries, sha256 of each) and the refusal of dangerous archives
    manifest.py   manifest.json and README.md
    options.py    ExportOptions: the one definition of what an export may be asked for

In: `importers.import_path(path, fmt, source="import", user_id=None, progress=None) -> ImportReport` reads COCO,
LabelMe, YOLO boxes, YOLO-seg, CVAT for images 1.1 and Label Studio JSON (import_readers.py; the report and items in
import_items.py) from a folder, a zip
(checked before extraction) or one label file; each image with all its labels or not at all.
"""
