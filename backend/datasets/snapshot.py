"""A consistent view of the annotations for an export, without a long transaction.

At the start one statement reads every selected image with its current annotation version (the *pin*). Each
document is then read from its AnnotationRevision at exactly that version: revisions are immutable, so saves made
while the export runs cannot tear it, and no transaction stays open for the export's duration. Every read here is
short and, on SQLite, a deferred (shared) read (backend.db.engine.reads_only), so annotators' saves never wait for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from sqlalchemy import Text, cast, func, select, tuple_

from backend.db.engine import json_loads, reads_only
from backend.db.extensions import db
from backend.db.models import Annotation, AnnotationRevision, Image, ImageTag, empty_document

CHUNK = 200


@dataclass
class PinnedImage:
    id: int
    sha256: str
    width: int
    height: int
    format: str
    status: str
    phash: str | None
    version: int
    flags: list[str] = field(default_factory=list)
    original_filename: str = ""


def pin_images(statuses: list[str], styles: list[str] | None = None,
               flags: list[str] | None = None) -> list[PinnedImage]:
    """The images with these statuses (and any of these styles / flags, when given) and their current versions,
    read in one statement."""
    version = func.coalesce(Annotation.version, 0)
    stmt = (
        select(Image.id, Image.sha256, Image.width, Image.height, Image.format, Image.status, Image.phash,
               Image.flags, Image.original_filename, version)
        .outerjoin(Annotation, Annotation.image_id == Image.id)
        .where(Image.status.in_(statuses))
        .order_by(Image.id)
    )
    for kind, keys in (("style", styles), ("flag", flags)):
        if keys:
            stmt = stmt.where(Image.id.in_(select(ImageTag.image_id).where(ImageTag.kind == kind,
                                                                           ImageTag.key.in_(keys))))
    with reads_only():  # SQLite: a deferred (shared) read, not the write lock
        try:
            rows = db.session.execute(stmt).all()
        finally:
            db.session.commit()  # end the read transaction at once
    return [
        PinnedImage(id=r[0], sha256=r[1], width=r[2], height=r[3], format=r[4], status=r[5], phash=r[6],
                    flags=list(r[7] or []), original_filename=r[8] or "", version=int(r[9] or 0))
        for r in rows
    ]


def _normalise(document: dict | None) -> dict:
    document = document or empty_document()
    tags = document.get("tags") or {}
    return {"regions": list(document.get("regions") or []),
            "tags": {"styles": list(tags.get("styles") or []), "flags": list(tags.get("flags") or [])}}


def _read_pinned(pairs: list[tuple[int, int]]) -> dict[int, str]:
    """The pinned documents as JSON text: each is parsed just before its image is rendered, so a chunk's parsed
    documents never pile up (hundreds of thousands of lists that would survive into the garbage collector's oldest
    generation and make it scan everything again and again: a third of a COCO export's CPU)."""
    if not pairs:
        return {}
    rows = db.session.execute(
        select(AnnotationRevision.image_id, cast(AnnotationRevision.document, Text))
        .where(tuple_(AnnotationRevision.image_id, AnnotationRevision.version).in_(pairs))
    )
    found = {image_id: document for image_id, document in rows}
    missing = [(i, v) for i, v in pairs if i not in found]
    if missing:  # no revision row (data from before revisions were kept): the live row if still at that version
        pinned = dict(missing)
        rows = db.session.execute(
            select(Annotation.image_id, Annotation.version, cast(Annotation.document, Text))
            .where(Annotation.image_id.in_(list(pinned)))
        )
        for image_id, version, document in rows:
            if pinned.get(image_id) == version:
                found[image_id] = document
    return found


def iter_documents(images: list[PinnedImage], chunk: int | None = None) -> Iterator[tuple[PinnedImage, dict | None]]:
    """(image, document at its pinned version) in the order given, reading `chunk` revisions per query.

    The document is None when the image was deleted after it was pinned.
    """
    chunk = chunk or CHUNK
    for start in range(0, len(images), chunk):
        batch = images[start:start + chunk]
        pairs = [(im.id, im.version) for im in batch if im.version > 0]
        found: dict[int, str] = {}
        with reads_only():
            try:
                found = _read_pinned(pairs)
            finally:
                db.session.commit()
        for im in batch:
            if im.version == 0:
                yield im, _normalise(None)
            elif im.id in found:
                yield im, _normalise(json_loads(found[im.id]))
            else:  # deleted since the pin (its revisions went with it)
                yield im, None
