"""Ingest: the single way images enter the workspace (upload API, `manage.py import`, dataset importers, demo).

    result = ingest_bytes(data, "photo.jpg", source="upload", user_id=user.id)
    result.image      # the Image row (new, or the existing one with the same bytes)
    result.duplicate  # True when those exact bytes were already stored; nothing new was written

It checks the size, decodes safely (backend.media.imaging), stores the original under its sha256 plus a thumbnail
(backend.media.storage), and creates the Image row and its empty Annotation (version 0) in one transaction. Two uploads
of the same bytes at the same moment end with one row: the unique sha256 refuses the second insert, which then
returns the first image as a duplicate.
"""
from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass

import imagehash
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.db.extensions import db
from backend.media.imaging import ImageRejected, decode_image, refuse_polyglot, resize_to_max_side, sniff_format
from backend.media.sanitize import strip_foreign
from backend.db.models import Annotation, Image, empty_document
from backend.media.storage import BlobStore

log = logging.getLogger(__name__)

SOURCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
MAX_NAME = 255


@dataclass
class IngestResult:
    image: Image
    duplicate: bool


def display_name(filename: str | None) -> str:
    """A file name fit for display only: the last path component, control/format characters removed, <= 255 chars.

    It is never used to build a path (blobs are named by sha256).
    """
    if not filename:
        return ""
    name = re.split(r"[/\\]", str(filename))[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    name = name.strip()
    if name in (".", ".."):
        name = ""
    return name[:MAX_NAME]


def check_source(source: str) -> str:
    if not isinstance(source, str) or not SOURCE_PATTERN.match(source):
        raise ValueError("source must be 1-32 lower-case letters, digits, '_', '-' or '.' (e.g. upload, import, synthetic)")
    return source


def ingest_bytes(data: bytes, filename: str, source: str = "upload", user_id: int | None = None,
                 config=None) -> IngestResult:
    """Store one image; raise ImageRejected (with a 4xx `.status`) for anything that is not an acceptable image.

    Needs an app context (db.session). It commits: call it with no unrelated pending changes in the session.
    """
    cfg = config if config is not None else current_app.config
    check_source(source)
    limit = cfg["MAX_UPLOAD_BYTES"]
    if len(data) > limit:
        raise ImageRejected("file_too_large", f"The file is {len(data):,} bytes; the limit is {limit:,} bytes.", 413)
    # The whole upload is checked for markup, then only the picture is kept (backend/media/sanitize.py): what is stored,
    # served and exported carries no foreign bytes. The sha256 (the name and the duplicate check) is the kept one's.
    fmt = sniff_format(data)
    refuse_polyglot(data, fmt)
    data = strip_foreign(data, fmt)
    sha = hashlib.sha256(data).hexdigest()
    session = db.session

    store = BlobStore.from_config(cfg)
    existing = session.scalar(select(Image).where(Image.sha256 == sha))
    existing_format = existing.format if existing is not None else None
    # End the (read) transaction before the slow part: on SQLite every transaction holds the write lock.
    session.commit()
    if existing is not None:
        if not store.exists(sha, existing_format):
            log.warning("restoring the missing original of image %s from a re-upload of the same bytes", sha)
            store.put_original(sha, data, existing_format)
        return IngestResult(existing, True)

    decoded = decode_image(data, cfg["MAX_IMAGE_PIXELS"], check_markup=False)
    store.put_original(sha, data, decoded.format)
    # The editor opens the display image first and the grid shows thumbnails: make both while the pixels are decoded,
    # so the first view of a large photo does not wait for a resize.
    display = resize_to_max_side(decoded.image, store.sides["display"])
    store.put_derivative(sha, "display", display)
    thumb = resize_to_max_side(display, store.sides["thumb"])
    store.put_derivative(sha, "thumb", thumb)  # the grid shows thumbnails first: make it while decoded
    phash = str(imagehash.phash(thumb))
    decoded.image.close()

    image = Image(
        sha256=sha,
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        size_bytes=len(data),
        original_filename=display_name(filename),
        source=source,
        status="new",
        flags=[],
        styles=[],
        phash=phash,
        uploaded_by=user_id,
    )
    image.annotation = Annotation(version=0, document=empty_document(), updated_by=None)
    session.add(image)
    try:
        session.commit()
    except IntegrityError:
        # Most likely the same bytes committed by a concurrent upload since our check: return that image.
        session.rollback()
        existing = session.scalar(select(Image).where(Image.sha256 == sha))
        session.commit()
        if existing is None:
            raise
        return IngestResult(existing, True)
    return IngestResult(image, False)
