"""/api/v1/exports and /api/v1/imports: training sets out, labelled datasets in (admins only).

    POST /exports            ExportOptions -> 202 {"export_id", "job_id"}; the job writes workspace/exports/<id>.zip
    GET  /exports            newest first; GET /exports/<id> one export with its manifest summary
    GET  /exports/<id>/download   the zip (attachment, streamed from disk); 409 until the job has finished
    DELETE /exports/<id>     removes the zip and the row (not while it is being written)
    GET  /exports/<id>/manifest   the zip's full manifest.json (with the pinned image list and file hashes)
    GET  /exports/<id>/diff?against=<older id>   images added / removed / relabelled / moved between splits
    POST /imports?format=coco|labelme|yolo|yolo-seg|cvat|labelstudio   multipart `file` (a .zip, one COCO/LabelMe/
                                                      Label Studio .json or one CVAT .xml) -> 202
                             {"job_id"}; the archive is checked (zip slip, absolute paths, links, bombs) before the
                             job is queued and refused with 422 and the reason; the job's result is the import report
"""
from __future__ import annotations

import uuid
from typing import Any, Literal, Optional

from flask import Blueprint, current_app, g, request, send_file
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from backend.datasets.archive import ArchiveLimits, ArchiveRefused, copy_limited, inspect_zip
from backend.datasets.compare import ManifestUnreadable, compare_manifests, read_manifest
from backend.datasets.export import export_file
from backend.datasets.options import ExportOptions
from backend.core.errors import not_found
from backend.web.errors import APIError
from backend.db.extensions import db
from backend.jobs.executor import submit_job
from backend.db.models import Export, User
from backend.jobs.exports import upload_dir
from backend.web.api.schemas import QueryModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("exports", __name__, url_prefix="/api/v1")


class ExportCreated(BaseModel):
    export_id: str
    job_id: str


class ExportOut(BaseModel):
    id: str
    status: str
    options: dict[str, Any]
    manifest: Optional[dict[str, Any]] = Field(None, description="manifest.json without its image and file lists")
    size_bytes: Optional[int]
    job_id: Optional[str]
    created_by: Optional[int]
    created_by_name: Optional[str] = None
    created_at: Optional[str]
    download_url: Optional[str]
    counts: Optional[dict[str, Any]] = Field(None, description="images / regions / crops per split (the manifest's)")
    archive_sha256: Optional[str] = Field(None, description="sha256 of the zip, to check a downloaded copy")


class ExportList(BaseModel):
    items: list[ExportOut]
    total: int


class ExportQuery(QueryModel):
    status: Optional[Literal["queued", "running", "succeeded", "failed", "cancelled"]] = None
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(20, ge=1, le=200)


class DiffQuery(QueryModel):
    against: Optional[str] = Field(None, min_length=1, max_length=64,
                                   description="the export to compare with (default: the newest finished export "
                                               "made before this one; none: everything counts as added)")
    limit: int = Field(500, ge=1, le=10_000, description="at most this many images per list (counts are complete)")


class ExportImage(BaseModel):
    id: Optional[int]
    sha256: Optional[str]
    split: Optional[str]
    version: Optional[int]
    old_version: Optional[int] = None
    old_split: Optional[str] = None


class ExportDiff(BaseModel):
    old_export_id: Optional[str]
    new_export_id: Optional[str]
    counts: dict[str, int]
    added: list[ExportImage]
    removed: list[ExportImage]
    relabelled: list[ExportImage] = Field(description="in both, with a different annotation version")
    moved: list[ExportImage] = Field(description="in both, same version, another split")
    truncated: bool


class ImportQuery(QueryModel):
    format: Literal["coco", "labelme", "yolo", "yolo-seg", "cvat", "labelstudio"]
    status: Optional[Literal["new", "in_progress", "submitted", "accepted", "rejected"]] = Field(
        None, description="status of images whose labels are imported (default: submitted; boxes only: new)")
    source: str = Field("import", pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$", description="recorded on new images")


class ImportQueued(BaseModel):
    job_id: str


def _export_dict(export: Export, summary: bool = True, names: dict | None = None) -> dict:
    manifest = export.manifest or {}
    return {
        "id": export.id,
        "status": export.status,
        "options": export.options or {},
        "manifest": export.manifest if summary else None,
        "size_bytes": export.size_bytes,
        "job_id": export.job_id,
        "created_by": export.created_by,
        "created_by_name": (names or {}).get(export.created_by) if names is not None else _user_name(export.created_by),
        "counts": manifest.get("counts"),
        "archive_sha256": manifest.get("archive_sha256"),
        "created_at": export.created_at.isoformat() if export.created_at else None,
        "download_url": f"/api/v1/exports/{export.id}/download" if export.status == "succeeded" else None,
    }


def _user_name(user_id: Optional[int]) -> Optional[str]:
    return db.session.scalar(select(User.username).where(User.id == user_id)) if user_id is not None else None


def _export(export_id: str) -> Export:
    export = db.session.get(Export, export_id)
    if export is None:
        raise not_found("export")
    return export


@bp.post("/exports")
@endpoint("Start an export (a background job); the zip appears under /exports/<id>/download",
          body=ExportOptions, response=ExportCreated, status=202, tags=["exports"])
def create_export_route(body: ExportOptions):
    export = Export(status="queued", options=body.model_dump(mode="json"), created_by=g.user.id)
    db.session.add(export)
    db.session.commit()
    export_id = export.id
    job = submit_job("export", {"export_id": export_id, "options": body.model_dump(mode="json"),
                                "user_id": g.user.id}, user_id=g.user.id)
    job_id = job.id
    db.session.rollback()
    export = db.session.get(Export, export_id)
    export.job_id = job_id
    db.session.commit()
    return {"export_id": export_id, "job_id": job_id}


@bp.get("/exports")
@endpoint("Exports, newest first", query=ExportQuery, response=ExportList, tags=["exports"])
def list_exports(query: ExportQuery):
    stmt = select(Export)
    if query.status:
        stmt = stmt.where(Export.status == query.status)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.order_by(Export.created_at.desc(), Export.id)
                              .limit(query.per_page).offset((query.page - 1) * query.per_page))
    rows = list(rows)
    ids = {e.created_by for e in rows if e.created_by is not None}
    names = dict(db.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()) if ids else {}
    return {"items": [_export_dict(e, summary=False, names=names) for e in rows], "total": total}


@bp.get("/exports/<export_id>")
@endpoint("One export: status, options and manifest summary (counts, splits, excluded images)",
          response=ExportOut, tags=["exports"])
def get_export(export_id: str):
    return _export_dict(_export(export_id))


@bp.get("/exports/<export_id>/download")
@endpoint("Download the export zip", produces="application/zip", errors=(409,), tags=["exports"])
def download_export(export_id: str):
    path = _finished_zip(export_id)
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"inklabel-export-{export_id}.zip", conditional=True, max_age=0)


def _finished_zip(export_id: str):
    """The zip of a finished export; 409 while it is being written (or failed), 410 once its file is gone."""
    export = _export(export_id)
    if export.status != "succeeded":
        raise APIError(409, "not_ready", f"The export is {export.status}; download it once it has succeeded.",
                       {"status": export.status})
    path = export_file(export, current_app.config["WORKSPACE"])
    if path is None:
        raise APIError(410, "gone", "The export's file is no longer on disk; make a new export.")
    return path


def _full_manifest(export_id: str) -> dict:
    try:
        return read_manifest(_finished_zip(export_id))
    except ManifestUnreadable as err:
        raise APIError(422, "manifest_unreadable", str(err)) from None


@bp.get("/exports/<export_id>/manifest")
@endpoint("The export's full manifest.json: options, counts, pinned images (id, sha256, split, version) and the "
          "sha256 of every file", errors=(409, 410), tags=["exports"])
def export_manifest(export_id: str):
    return _full_manifest(export_id)


@bp.get("/exports/<export_id>/diff")
@endpoint("Compare an export with another (`against`, usually the older one): images added, removed, relabelled "
          "(another annotation version) and moved to another split", query=DiffQuery, response=ExportDiff, errors=(409, 410), tags=["exports"])
def export_diff(export_id: str, query: DiffQuery):
    new = _full_manifest(export_id)
    against = query.against or _previous_export_id(_export(export_id))
    old = _full_manifest(against) if against else {}
    return compare_manifests(old, new, limit=query.limit)


def _previous_export_id(export: Export) -> Optional[str]:
    return db.session.scalar(select(Export.id).where(Export.status == "succeeded", Export.id != export.id,
                                                     Export.created_at <= export.created_at)
                             .order_by(Export.created_at.desc()).limit(1))


@bp.delete("/exports/<export_id>")
@endpoint("Delete an export and its zip", errors=(409,), tags=["exports"])
def delete_export(export_id: str):
    export = _export(export_id)
    if export.status in ("queued", "running"):
        raise APIError(409, "busy", "The export is still being written; cancel its job first.",
                       {"job_id": export.job_id})
    path = export_file(export, current_app.config["WORKSPACE"])
    db.session.delete(export)
    db.session.commit()
    if path is not None:
        path.unlink(missing_ok=True)
    return {"ok": True}


@bp.post("/imports")
@endpoint("Import a labelled dataset (zip, or one COCO/LabelMe/Label Studio JSON or CVAT XML) as a background job",
          query=ImportQuery, multipart={"file": "the dataset: a .zip archive (images + labels) or a single .json / .xml"},
          response=ImportQueued, status=202, tags=["exports"])
def create_import(query: ImportQuery):
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise APIError(400, "missing_file", "Send the dataset as a multipart form field named 'file'.")
    head = upload.stream.read(4)
    upload.stream.seek(0)
    if head.startswith(b"PK\x03\x04"):
        suffix = ".zip"
    elif query.format in ("coco", "labelme", "labelstudio") and head.lstrip()[:1] in (b"{", b"[", b"\xef"):
        suffix = ".json"
    elif query.format == "cvat" and head.lstrip()[:1] in (b"<", b"\xef"):
        suffix = ".xml"
    else:
        raise APIError(415, "unsupported_media_type",
                       "Upload a .zip archive (or one .json file for COCO, LabelMe and Label Studio, one .xml file "
                       "for CVAT).")
    name = f"{uuid.uuid4().hex}{suffix}"
    path = upload_dir() / name
    try:
        with open(path, "xb") as out:
            copy_limited(upload.stream, out, current_app.config["MAX_CONTENT_LENGTH"] or 2**40)
        if suffix == ".zip":
            inspect_zip(path, ArchiveLimits.from_config(current_app.config))
    except ArchiveRefused as err:
        path.unlink(missing_ok=True)
        raise APIError(422, err.code, err.message, err.details) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    job = submit_job("import", {"upload": name, "format": query.format, "source": query.source,
                                "user_id": g.user.id, "status": query.status}, user_id=g.user.id)
    return {"job_id": job.id}
