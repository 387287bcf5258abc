"""Background jobs of the datasets area: building an export, importing an uploaded dataset."""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import current_app

from backend.datasets.export import create_export
from backend.datasets.importers import import_path
from backend.jobs.runner import JobContext, register_job

UPLOADS = "uploads"  # workspace/tmp/uploads: datasets uploaded through POST /api/v1/imports, until imported


def upload_dir() -> Path:
    path = Path(current_app.config["WORKSPACE"]) / "tmp" / UPLOADS
    path.mkdir(parents=True, exist_ok=True)
    return path


@register_job("export", queue="cpu")
def run_export(ctx: JobContext, export_id: str, options: dict, user_id: int | None = None) -> dict:
    """Fill in the Export row made by POST /api/v1/exports (a retry after a dead worker starts over)."""
    export = create_export(options, user_id=user_id, progress=ctx.progress, export_id=export_id)
    digest = _record_checksum(export.id)
    return {"export_id": export.id, "size_bytes": export.size_bytes, "counts": (export.manifest or {}).get("counts"),
            "archive_sha256": digest}


def _record_checksum(export_id: str) -> str | None:
    """sha256 of the finished zip, kept in the stored manifest summary so the console can show it."""
    from backend.datasets.export import export_file
    from backend.db.extensions import db
    from backend.db.models import Export

    row = db.session.get(Export, export_id)
    path = export_file(row, current_app.config["WORKSPACE"]) if row is not None else None
    if path is None:
        return None
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    row.manifest = {**(row.manifest or {}), "archive_sha256": sha.hexdigest()}
    db.session.commit()
    return sha.hexdigest()


@register_job("import", queue="cpu", max_attempts=1)
def run_import(ctx: JobContext, upload: str, format: str, source: str = "import", user_id: int | None = None,
               status: str | None = None) -> dict:
    """Import an uploaded dataset file (a name in workspace/tmp/uploads), then delete the upload."""
    path = upload_dir() / Path(upload).name
    try:
        report = import_path(path, format, source=source, user_id=user_id, progress=ctx.progress, status=status)
    finally:
        path.unlink(missing_ok=True)
    return report.to_dict()
