"""The `image_tags` side table: the indexed style/flag filters of the image list, kept in step with Image.styles
and Image.flags.

Automatically after every ORM flush that changes them (the hook below); `write_image_tags` inside a Core write
(the annotation save, backend/core/annotations.py); `sync_image_tags` / `rebuild_image_tags` after other bulk
(Core) updates or inserts.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import bindparam, delete, event, inspect, insert, select
from sqlalchemy.orm import Session

from backend.db.models import Image, ImageTag
from backend.db.prepared import Prepared


def _tag_rows(image_id: int, styles: Iterable | None, flags: Iterable | None) -> list[dict]:
    rows = []
    for kind, values in (("style", styles), ("flag", flags)):
        seen = set()
        for value in values or ():
            if isinstance(value, str) and value and value[:64] not in seen:
                seen.add(value[:64])
                rows.append({"image_id": image_id, "kind": kind, "key": value[:64]})
    return rows


_DELETE_IMAGE_TAGS = Prepared(delete(ImageTag.__table__).where(ImageTag.__table__.c.image_id == bindparam("b_image_id")))
_INSERT_IMAGE_TAGS = Prepared(insert(ImageTag.__table__))


def write_image_tags(connection, image_id: int, styles, flags, replace: bool = True) -> None:
    """The image's rows in image_tags (its styles and flags), replacing what it had; on `connection`'s transaction
    (a save runs this inside its write transaction)."""
    if replace:
        _DELETE_IMAGE_TAGS.execute(connection, {"b_image_id": image_id})
    _INSERT_IMAGE_TAGS.execute_many(connection, _tag_rows(image_id, styles, flags))


def sync_image_tags(session: Session, image: Image) -> None:
    """Rewrite `image`'s rows in image_tags from image.styles and image.flags, in the session's transaction.

    ORM changes to those attributes are synced automatically on flush; call this after changing them some other
    way (e.g. an UPDATE statement), or to be explicit. Idempotent.
    """
    if image.id is None:
        session.flush()
    write_image_tags(session.connection(), image.id, image.styles, image.flags)


def rebuild_image_tags(session: Session, batch: int = 5000) -> int:
    """Rebuild the whole image_tags table from images (after bulk inserts that bypassed the ORM). Returns rows."""
    connection = session.connection()
    connection.execute(delete(ImageTag.__table__))
    written, last_id = 0, 0
    while True:
        chunk = connection.execute(
            select(Image.id, Image.styles, Image.flags).where(Image.id > last_id).order_by(Image.id).limit(batch)
        ).all()
        if not chunk:
            return written
        rows = [row for image_id, styles, flags in chunk for row in _tag_rows(image_id, styles, flags)]
        if rows:
            connection.execute(insert(ImageTag.__table__), rows)
        written += len(rows)
        last_id = chunk[-1][0]


def _tags_changed(obj: Image) -> bool:
    attrs = inspect(obj).attrs
    return attrs.styles.history.has_changes() or attrs.flags.history.has_changes()


@event.listens_for(Session, "after_flush")
def _sync_tags_after_flush(session: Session, _flush_context) -> None:
    # In after_flush the new/dirty collections and attribute histories still describe what was just flushed.
    new = [obj for obj in session.new if isinstance(obj, Image)]
    dirty = [obj for obj in session.dirty if isinstance(obj, Image) and _tags_changed(obj)]
    if not new and not dirty:
        return
    connection = session.connection()
    for obj in new:
        if obj.styles or obj.flags:
            write_image_tags(connection, obj.id, obj.styles, obj.flags, replace=False)
    for obj in dirty:
        write_image_tags(connection, obj.id, obj.styles, obj.flags)
