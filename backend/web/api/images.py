"""/api/v1/images: upload, list with filters and paging, metadata, and the bytes (original, display, thumbnail).

The annotation document routes (/images/<id>/annotation, /submit) live in api/annotations.py.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal, Optional

from flask import Blueprint, current_app, g, request, send_file
from pydantic import BaseModel, Field
from sqlalchemy import case, func, select
from werkzeug.utils import secure_filename

from backend.core.errors import not_found
from backend.web.errors import APIError
from backend.db.extensions import db
from backend.media.imaging import ImageRejected, extension, mime_type
from backend.core.ingest import SOURCE_PATTERN, display_name, ingest_bytes
from backend.db.models import IMAGE_STATUSES, Annotation, Image, ImageTag, Region, User
from backend.media.storage import BlobStore
from backend.core.taxonomy import flag_keys, load_taxonomy, style_keys
from backend.web.api.schemas import QueryModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("images", __name__, url_prefix="/api/v1")

CACHE_FOREVER = "private, max-age=31536000, immutable"
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


# --- schemas --------------------------------------------------------------------------------------------------------

class UploadedImage(BaseModel):
    id: int
    width: int
    height: int
    sha256: str
    duplicate: bool
    original_filename: str


class RejectedFile(BaseModel):
    filename: str
    code: str
    message: str


class UploadResponse(BaseModel):
    images: list[UploadedImage]
    rejected: list[RejectedFile]


class ImageSummary(BaseModel):
    id: int
    sha256: str
    width: int
    height: int
    format: str
    size_bytes: int
    original_filename: str
    source: str
    status: str
    flags: list[str]
    styles: list[str]
    created_at: str
    version: int = Field(description="version of the image's annotation document")
    region_count: int = Field(description="regions of the current document, masks and boxes")
    box_count: int = Field(0, description="how many of them are boxes (weak labels); masks = region_count - "
                                          "box_count, so a list can show masks, boxes or both")
    thumb_url: str
    display_url: str
    held_by: Optional[str] = Field(None, description="user name of whoever holds a live lease on the image")
    held_until: Optional[str] = Field(None, description="when that lease runs out unless renewed")


class ImageDetail(ImageSummary):
    phash: Optional[str]
    updated_at: str
    uploaded_by: Optional[int]
    assignee_id: Optional[int]
    lock_expires_at: Optional[str]
    original_url: str


class ImageList(BaseModel):
    items: list[ImageSummary]
    total: int
    page: int
    per_page: int
    next_after_id: Optional[int] = Field(
        None, description="pass as `after_id` for the next page (keyset paging); null on the last page")


class ImageListQuery(QueryModel):
    status: Optional[Literal[IMAGE_STATUSES]] = Field(None, description="new | in_progress | submitted | accepted | rejected")
    style: Optional[str] = Field(None, pattern=KEY_PATTERN, description="a style key of the taxonomy (image or region)")
    flag: Optional[str] = Field(None, pattern=KEY_PATTERN, description="a flag key of the taxonomy")
    source: Optional[str] = Field(None, pattern=SOURCE_PATTERN.pattern, description="upload | import | synthetic | ...")
    page: int = Field(1, ge=1, le=1_000_000, description="page number (OFFSET paging); ignored with after_id")
    per_page: int = Field(50, ge=1, le=500)
    after_id: Optional[int] = Field(
        None, ge=0, le=2**31 - 1,
        description="keyset paging: the images with an id greater than this (the previous answer's next_after_id); "
                    "as fast on the last page as on the first, unlike `page`")


class FileQuery(QueryModel):
    size: Literal["thumb", "display", "original"] = Field(
        "display", description="thumb (long side <= THUMB_MAX_SIDE), display (<= DISPLAY_MAX_SIDE), original bytes"
    )


# --- helpers --------------------------------------------------------------------------------------------------------

def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)  # SQLite: naive, stored in UTC


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _aware(value).isoformat()


def _summary(image: Image, version: int | None, counts: tuple[int, int]) -> dict:
    base = f"/api/v1/images/{image.id}/file"
    return {
        "id": image.id,
        "sha256": image.sha256,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "size_bytes": image.size_bytes,
        "original_filename": image.original_filename or "",
        "source": image.source,
        "status": image.status,
        "flags": list(image.flags or []),
        "styles": list(image.styles or []),
        "created_at": _iso(image.created_at),
        "version": version or 0,
        "region_count": counts[0],
        "box_count": counts[1],
        "thumb_url": f"{base}?size=thumb",
        "display_url": f"{base}?size=display",
    }


def _add_holders(items: list[dict], images: list[Image]) -> None:
    """Presence: who holds a live lease on each image (the editor and the grid say "held by <user> until …")."""
    now = datetime.now(timezone.utc)
    live = {im.id: im for im in images
            if im.assignee_id is not None and im.lock_expires_at is not None and _aware(im.lock_expires_at) > now}
    ids = {im.assignee_id for im in live.values()}
    names = dict(db.session.execute(select(User.id, User.username).where(User.id.in_(ids))).tuples().all()) \
        if ids else {}
    for item in items:
        im = live.get(item["id"])
        item["held_by"] = names.get(im.assignee_id) if im is not None else None
        item["held_until"] = _iso(im.lock_expires_at) if im is not None else None


def _region_counts(ids: list[int]) -> dict[int, tuple[int, int]]:
    """image id -> (regions, boxes among them); images without regions are absent."""
    if not ids:
        return {}
    rows = db.session.execute(
        select(Region.image_id, func.count(), func.sum(case((Region.kind == "box", 1), else_=0)))
        .where(Region.image_id.in_(ids)).group_by(Region.image_id)
    ).all()
    return {image_id: (int(total), int(boxes or 0)) for image_id, total, boxes in rows}


def _get_image(image_id: int) -> Image:
    image = db.session.get(Image, image_id)
    if image is None:
        raise not_found("image")
    return image


def _store() -> BlobStore:
    return BlobStore.from_config(current_app.config)


# --- routes ---------------------------------------------------------------------------------------------------------

@bp.post("/images")
@endpoint(
    "Upload images (multipart, field `file`, repeatable)",
    multipart={"file": "a JPEG, PNG or WebP image; repeat the field for several files"},
    response=UploadResponse,
    status=201,
    errors=(413, 415),
    description=(
        "Each file is checked on its content (never its name or client type), EXIF-rotated upright, and stored "
        "under its sha256. Same bytes as a stored image: that image with duplicate=true. Rejected files are "
        "listed with a code and message; when every file is rejected the answer is the first rejection's 4xx "
        "status with all of them in error.details.rejected."
    ),
)
def upload_images():
    user_id = g.caller.id
    db.session.commit()  # end the auth lookup's transaction before reading and decoding files
    if request.mimetype != "multipart/form-data":
        raise APIError(415, "unsupported_media_type", "Upload with Content-Type multipart/form-data, field name `file`.")
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    images, rejected, first_status = [], [], None
    for upload in request.files.getlist("file"):
        shown = upload.filename or ""
        try:
            data = upload.stream.read(limit + 1)  # never more than one byte past the limit
            if not shown and not data:
                continue  # an empty file input of a browser form
            result = ingest_bytes(data, shown, source="upload", user_id=user_id)
        except ImageRejected as err:
            db.session.rollback()
            rejected.append({"filename": display_name(shown), "code": err.code, "message": err.message})
            first_status = first_status or err.status
            continue
        finally:
            upload.close()
        image = result.image
        images.append({
            "id": image.id, "width": image.width, "height": image.height, "sha256": image.sha256,
            "duplicate": result.duplicate, "original_filename": image.original_filename or "",
        })
    if not images and not rejected:
        raise APIError(400, "no_file", "No file in the upload: send one or more files in the multipart field `file`.")
    if not images:
        first = rejected[0]
        raise APIError(first_status or 422, first["code"], first["message"], {"rejected": rejected})
    return UploadResponse(images=images, rejected=rejected)


@bp.get("/images")
@endpoint("List images, filtered and paged (stable order: id)", query=ImageListQuery, response=ImageList,
          description="Page with `page` (OFFSET) or, faster on deep pages, with `after_id` = the previous answer's "
                      "`next_after_id` (keyset). `total` counts every image that matches the filters.")
def list_images(query: ImageListQuery):
    conditions = []
    if query.status:
        conditions.append(Image.status == query.status)
    if query.source:
        conditions.append(Image.source == query.source)
    if query.style or query.flag:
        taxonomy = load_taxonomy(current_app.config["WORKSPACE"])
        for kind, value, known in (("style", query.style, style_keys), ("flag", query.flag, flag_keys)):
            if value is None:
                continue
            if value not in known(taxonomy):
                raise APIError(422, "invalid_query", f"Unknown {kind} {value!r}: see GET /api/v1/taxonomy.",
                               {"errors": [{"loc": [kind], "message": f"unknown {kind}", "type": "value_error"}]})
            tagged = select(ImageTag.image_id).where(ImageTag.kind == kind, ImageTag.key == value)
            conditions.append(Image.id.in_(tagged))
    total = db.session.scalar(select(func.count()).select_from(Image).where(*conditions))
    # The page's ids first, from the index alone ((status, id) or the primary key): OFFSET then skips index entries,
    # not joined rows. With after_id (keyset) nothing is skipped at all. One more id than the page tells whether a
    # next page exists.
    ids_query = select(Image.id).where(*conditions).order_by(Image.id).limit(query.per_page + 1)
    if query.after_id is not None:
        ids_query = ids_query.where(Image.id > query.after_id)
    else:
        ids_query = ids_query.offset((query.page - 1) * query.per_page)
    ids = db.session.scalars(ids_query).all()
    more = len(ids) > query.per_page
    ids = ids[:query.per_page]
    rows = db.session.execute(
        select(Image, Annotation.version)
        .outerjoin(Annotation, Annotation.image_id == Image.id)
        .where(Image.id.in_(ids))
        .order_by(Image.id)
    ).all() if ids else []
    counts = _region_counts(ids)
    items = [_summary(image, version, counts.get(image.id, (0, 0))) for image, version in rows]
    _add_holders(items, [image for image, _ in rows])
    return {"items": items, "total": total, "page": query.page, "per_page": query.per_page,
            "next_after_id": ids[-1] if more else None}


@bp.get("/images/<int:image_id>")
@endpoint("One image's metadata", response=ImageDetail)
def get_image(image_id: int):
    image = _get_image(image_id)
    version = db.session.scalar(select(Annotation.version).where(Annotation.image_id == image_id))
    out = _summary(image, version, _region_counts([image_id]).get(image_id, (0, 0)))
    out.update(
        phash=image.phash,
        updated_at=_iso(image.updated_at),
        uploaded_by=image.uploaded_by,
        assignee_id=image.assignee_id,
        lock_expires_at=_iso(image.lock_expires_at),
        original_url=f"/api/v1/images/{image.id}/file?size=original",
    )
    _add_holders([out], [image])
    return out


def _download_name(image_name: str, sha: str, fmt: str) -> str:
    stem = image_name.rsplit(".", 1)[0] if "." in image_name else image_name
    stem = secure_filename(stem)[:100] or sha[:16]
    return f"{stem}.{extension(fmt)}"


@bp.get("/images/<int:image_id>/file")
@endpoint(
    "An image's bytes: thumb, display (upright JPEG, long side bounded) or the original as uploaded",
    query=FileQuery,
    produces="image/*",
    description="Cacheable forever (the URL's content never changes); ETag is the sha256, If-None-Match gives 304.",
)
def image_file(image_id: int, query: FileQuery):
    image = _get_image(image_id)
    sha, fmt, name = image.sha256, image.format, image.original_filename or ""
    db.session.commit()  # no transaction (on SQLite: no write lock) while a derivative is made
    store = _store()
    size = query.size
    etag = sha if size == "original" else f"{sha}-{size}{store.sides[size]}"
    headers = {"Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff"}
    if request.if_none_match.contains_weak(etag):
        response = current_app.response_class(status=304)
        response.set_etag(etag)
        response.headers.update(headers)
        return response
    try:
        if size == "original":
            path = store.original_path(sha, fmt)
            if not path.is_file():
                raise FileNotFoundError(path)
            response = send_file(path, mimetype=mime_type(fmt), as_attachment=True,
                                 download_name=_download_name(name, sha, fmt), conditional=False, etag=False)
        else:
            path = store.derivative_path(sha, fmt, size)
            response = send_file(path, mimetype="image/jpeg", download_name=_download_name(name, sha, "jpeg"),
                                 conditional=False, etag=False)
    except FileNotFoundError:
        current_app.logger.error("image %s: original %s missing from the blob store", image_id, sha)
        raise APIError(404, "file_missing", "The image's file is missing from the store (see the server log).") from None
    except ImageRejected as err:
        current_app.logger.error("image %s: stored original %s cannot be decoded: %s", image_id, sha, err.message)
        raise APIError(422, err.code, f"The stored image cannot be decoded: {err.message}") from None
    response.set_etag(etag)
    response.headers.update(headers)
    return response
