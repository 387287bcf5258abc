"""Import labelled datasets: COCO (polygons, RLE, bbox-only), LabelMe JSON, YOLO boxes and YOLO-seg polygons, CVAT
for images 1.1 XML and Label Studio JSON (the files read in backend/datasets/import_readers.py, into the items of
backend/datasets/import_items.py).

    report = import_path("data/set.zip", "coco", source="import", user_id=None, progress=None)
    report.to_dict()   # counts + skipped items with reasons

`PATH` is a folder, a zip archive (checked by backend/datasets/archive.py before anything is extracted: zip slip,
absolute names, links, bombs are refused with ArchiveRefused) or one label file (COCO, LabelMe, Label Studio .json;
CVAT .xml). Every image goes through backend.core.ingest (same checks as uploads; the same bytes are stored once) and
every annotation through backend.core.annotations.save_document (same validation as the editor), so an import cannot
store anything the tool itself would refuse.

- **All or nothing per image.** An image's labels are checked in full (geometry, sizes, styles) before the image is
  stored: when any of them is refused the image is not imported at all and every reason is reported, so there is
  never an image without its labels nor half of its labels. A malformed label file (bad JSON, nested too deeply,
  not the format) is reported by name and its siblings are imported as usual.
- **Idempotent.** Region ids are derived from the image's sha256 and the label's place in its file (or kept from an
  inklabel export), so importing the same data again finds them present and adds nothing. An image that already
  has a different annotation is left alone and reported (nothing is merged into human work).
- **Skipped, with reasons**: unreadable or refused images, labels for a missing image, label files naming a path
  outside the dataset (absolute, or `..` leading out of it), regions that are not areas, geometries that cannot be
  repaired, labels drawn on an image of another size.
- **Boxes** (YOLO boxes, COCO annotations with a bbox and no segmentation, CVAT `<box>`, Label Studio rectangles,
  LabelMe rectangles) become box regions (`"kind": "box"`, backend/core/boxes.py). An image whose labels are all boxes
  stays `new`, in the queue for its outlines, unless `status` says otherwise.
- **LabelMe** as LabelMe's own converters read it: shapes with the same (label, group_id) are one instance, later
  shapes cover earlier instances, `__ignore__` shapes cover but are no region, and every shape type is an area
  (backend/datasets/labelme.py).
- Other images become `submitted` for review unless `status` says otherwise (e.g. `accepted` for trusted data);
  regions are human-drawn (source `human`, unless an inklabel export says otherwise).
- Styles: a COCO annotation's `attributes.style`, a CVAT `style` attribute, a Label Studio per-region `style`
  choice, or a category / label / class name that is a style key of the taxonomy; motifs from `attributes.motifs`,
  LabelMe shape flags, CVAT `motifs`, Label Studio `motifs`; image tags from an inklabel export's `inklabel.tags`,
  LabelMe's file flags, CVAT `<tag>`s or Label Studio image-level choices. Names that are not in the taxonomy are
  ignored (and counted).
"""
from __future__ import annotations

import logging
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Callable

from flask import current_app
from sqlalchemy import update

from backend.core.annotations import current_document, save_document
from backend.core.document_checks import clean_region
from backend.core.geometry import DEFAULT_MAX_VERTICES
from backend.core.ingest import ingest_bytes
from backend.core.taxonomy import load_taxonomy
from backend.datasets.archive import ArchiveLimits, ArchiveRefused, extract_zip
from backend.datasets.import_items import FORMATS, ImportReport, LabelItem, _Vocabulary
from backend.datasets.import_readers import read_coco, read_cvat, read_labelme, read_labelstudio, read_yolo
from backend.db.extensions import db
from backend.db.models import IMAGE_STATUSES, Image, User, utcnow
from backend.media.imaging import ImageRejected
from backend.core.errors import DomainError

log = logging.getLogger(__name__)


# --- the import ---------------------------------------------------------------------------------------------------


def _prepare(path: Path, fmt: str, workdir: Path, limits: ArchiveLimits) -> tuple[Path, list[Path] | None]:
    """The folder to read (extracting a zip first) and, for a single JSON file, that file."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        return path.resolve(), None
    if zipfile.is_zipfile(path):
        return extract_zip(path, workdir, limits), None
    if (path.suffix.lower() == ".json" and fmt in ("coco", "labelme", "labelstudio")) or \
            (path.suffix.lower() == ".xml" and fmt == "cvat"):
        root = path.resolve().parent
        if fmt == "coco" and root.name in ("annotations", "coco"):
            root = root.parent
        return root, [path.resolve()]
    raise ValueError(f"{path.name}: expected a folder, a .zip archive, (COCO, LabelMe, Label Studio) a .json file "
                     "or (CVAT) an .xml file")


def import_path(path, fmt: str, source: str = "import", user_id: int | None = None,
                progress: Callable[..., None] | None = None, *, status: str | None = None,
                limits: ArchiveLimits | None = None) -> ImportReport:
    """Import a dataset (see the module docstring); needs an app context. Returns an ImportReport.

    Raises ValueError for an unknown format or status, FileNotFoundError for a missing path and ArchiveRefused
    for an archive that is refused before extraction. Everything else is reported per item.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if status is not None and status not in IMAGE_STATUSES:
        raise ValueError(f"status must be one of {', '.join(IMAGE_STATUSES)}")
    config = current_app.config
    limits = limits or ArchiveLimits.from_config(config)
    report = ImportReport(format=fmt, source=source)
    vocab = _Vocabulary(load_taxonomy(config["WORKSPACE"]), report)
    user = db.session.get(User, user_id) if user_id is not None else None
    db.session.commit()
    workdir = Path(config["WORKSPACE"]) / "tmp" / f"import-{uuid.uuid4().hex}"
    try:
        root, files = _prepare(Path(path), fmt, workdir, limits)
        if fmt == "coco":
            items = list(read_coco(root, files, vocab, report))
        elif fmt == "labelme":
            items = list(read_labelme(root, files, vocab, report))
        elif fmt in ("cvat", "labelstudio"):
            reader = read_cvat if fmt == "cvat" else read_labelstudio
            items = list(reader(root, files, vocab, report))
        else:
            items = list(read_yolo(root, vocab, report, segmentation=fmt == "yolo-seg"))
        total = len(items)
        if progress:
            progress(0, total, f"importing {total} images")
        for done, item in enumerate(items, start=1):
            _import_item(item, root, report, vocab, source, user, status, config)
            if progress:
                progress(done, total, "importing")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("import %s from %s: %s", fmt, path, report.summary())
    return report


def _read_image(item: LabelItem, limit: int) -> bytes:
    if item.image_data is not None:
        data = item.image_data
    else:
        size = item.image_file.stat().st_size
        if size > limit:
            raise ImageRejected("file_too_large", f"The file is {size:,} bytes; the limit is {limit:,} bytes.", 413)
        data = item.image_file.read_bytes()
    return data


def _upright_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) after the EXIF orientation, from the header only; None when Pillow cannot tell."""
    import io

    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data)) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112)
    except Exception:  # anything unreadable is refused by ingest with its own reason
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _checked_regions(item: LabelItem, width: int, height: int, sha: str, vocab: _Vocabulary,
                     config) -> tuple[list[dict], list[str]]:
    raw_regions, problems = item.build(width, height, sha)
    problems = list(problems)
    regions, seen = [], set()
    for index, raw in enumerate(raw_regions):
        try:
            region = clean_region(index, raw, width, height, vocab.styles,
                                  config.get("MAX_REGION_VERTICES", DEFAULT_MAX_VERTICES))
        except DomainError as err:
            problems.append(err.message)
            continue
        if region["id"] in seen:
            continue
        seen.add(region["id"])
        regions.append(region)
    return regions, problems


def _import_item(item: LabelItem, root: Path, report: ImportReport, vocab: _Vocabulary, source: str,
                 user: User | None, status: str | None, config) -> None:
    """One image and its labels, all or nothing: labels that cannot be imported in full refuse the item before
    its image is stored (no image without its labels), with every reason in the report."""
    if item.problem:
        report.skip(item.name, item.problem)
        return
    try:
        data = _read_image(item, config["MAX_UPLOAD_BYTES"])
    except ImageRejected as err:
        report.skip(item.name, err.message)
        return
    except OSError as err:
        report.skip(item.name, f"could not read the image: {err}")
        return
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    size = _upright_size(data)
    if size is not None:
        if item.expect_size is not None and item.expect_size != size:
            report.skip(item.name, f"the labels are for a {item.expect_size[0]}x{item.expect_size[1]} image but the "
                                   f"image is {size[0]}x{size[1]} (upright); nothing imported")
            return
        regions, problems = _checked_regions(item, size[0], size[1], sha, vocab, config)
        if problems:
            report.skip(item.name, "labels refused, image not imported: " + "; ".join(problems)[:1500])
            return
    filename = item.image_file.name if item.image_file is not None else Path(item.name).with_suffix("").name
    try:
        result = ingest_bytes(data, filename, source=source, user_id=user.id if user else None)
    except ImageRejected as err:
        report.skip(item.name, err.message)
        return
    image = result.image
    image_id, width, height = image.id, image.width, image.height
    if size != (width, height):  # the header did not tell (or told otherwise): check with the stored size
        if item.expect_size is not None and item.expect_size != (width, height):
            problems = [f"the labels are for a {item.expect_size[0]}x{item.expect_size[1]} image but the stored "
                        f"(upright) image is {width}x{height}"]
        else:
            regions, problems = _checked_regions(item, width, height, sha, vocab, config)
        if problems:
            _forget_new_image(result)
            report.skip(item.name, "labels refused, image not imported: " + "; ".join(problems)[:1500])
            return
    if result.duplicate:
        report.images_existing += 1
    else:
        report.images_added += 1
    tags = item.tags
    if not regions and not tags["styles"] and not tags["flags"]:
        report.without_labels += 1
        return

    current = current_document(image_id)
    db.session.commit()
    if current["regions"] or current["tags"]["styles"] or current["tags"]["flags"]:
        existing = {r["id"] for r in current["regions"]}
        if all(r["id"] in existing for r in regions) and set(tags["flags"]) <= set(current["tags"]["flags"]):
            report.already_imported += 1
        else:
            report.skip(item.name, f"the image already has an annotation (version {current['version']}); "
                                   "the imported labels were not merged into it")
        return
    try:
        save_document(image_id, user, current["version"], regions, tags)
    except DomainError as err:
        report.skip(item.name, err.message)
        return
    report.documents_written += 1
    report.regions_added += len(regions)
    # Boxes only: weak labels, the image stays in the queue for its outlines unless a status was asked for.
    new_status = status or ("new" if all(r["kind"] == "box" for r in regions) else "submitted")
    db.session.execute(
        update(Image).where(Image.id == image_id, Image.status.in_(("new", "in_progress")))
        .values(status=new_status, updated_at=utcnow()).execution_options(synchronize_session=False)
    )
    db.session.commit()


def _forget_new_image(result) -> None:
    """Remove an image this import just added (its labels were refused), so that no orphan stays behind."""
    if result.duplicate:
        return
    from sqlalchemy import delete

    from backend.db.models import Annotation

    db.session.execute(delete(Annotation).where(Annotation.image_id == result.image.id))
    db.session.execute(delete(Image).where(Image.id == result.image.id))
    db.session.commit()


__all__ = ["FORMATS", "ArchiveRefused", "ImportReport", "import_path"]
