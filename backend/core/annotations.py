"""The annotation document of an image and its atomic save (a service over db.session; no request objects).

A document is ``{"version": int, "regions": [region, ...], "tags": {"styles": [...], "flags": [...]}}`` where a
region is ``{"id", "kind", "geometry", "style", "motifs", "source", "model_version", "confidence"}`` (see
`clean_region`; ``kind`` is "mask" or "box", see backend/core/boxes.py — documents saved before boxes existed read back
with "mask"). The version lives in ``annotations.version``; the stored JSON holds regions and tags.

`save_document` writes everything or nothing (one write transaction, after a read and validation):
  1. read the image's state: 404 if missing, 403 if accepted (frozen) and the caller is not a reviewer/admin,
     stale ``base_version`` -> 409 with ``details.current`` = the current document; then end that read
     transaction (on SQLite it begins DEFERRED: a WAL snapshot that blocks no writer);
  2. validate every region (422 naming the region index: ``details = {"region": i, "reason": ...}``) and the tags
     (unknown style or flag keys -> 422) with no transaction open;
  3. in one write transaction: update the image row first (Image.flags, Image.styles, status new -> in_progress;
     on PostgreSQL this locks the row, on SQLite BEGIN IMMEDIATE holds the database) and re-check frozen from the
     status it returns, then ``UPDATE annotations SET version = version + 1, ... WHERE image_id = ? AND
     version = ?`` and check the row count: the compare-and-set that makes two concurrent saves on one version end
     with exactly one winner on SQLite and PostgreSQL alike;
  4. replace the denormalised Region rows, add an AnnotationRevision (author, time spent), mirror the image's
     styles (image-level styles plus region styles) and flags into image_tags when they change; commit.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

from flask import current_app
from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from backend.core.boxes import with_kinds
from backend.core.document_checks import check_model_versions, clean_document
from backend.db.engine import commit_keeping_loaded, end_read, reads_only
from backend.core.errors import Conflict, DomainError, Invalid, not_found
from backend.db.extensions import db
from backend.core.geometry import area_bbox
from backend.core.tags import write_image_tags
from backend.db.models import (
    Annotation,
    AnnotationRevision,
    Image,
    Region,
    User,
    empty_document,
    utcnow,
)
from backend.db.prepared import Prepared
from backend.core.workflow.agreement import agreement_copy, copy_document, store_copy
from backend.core.write_rules import HELD_WRITE, hidden_primary, holds_open_copy, refusal

if TYPE_CHECKING:
    from backend.web.auth import Caller

MAX_TIME_SPENT_MS = 24 * 3600 * 1000
SUBMITTABLE = ("new", "in_progress", "rejected")

_images, _annotations = Image.__table__, Annotation.__table__
_regions, _revisions = Region.__table__, AnnotationRevision.__table__


# --- reading ------------------------------------------------------------------------------------------------------


def _as_document(version: int, stored: dict | None) -> dict:
    stored = stored or empty_document()
    tags = stored.get("tags") or {}
    return {
        "version": version,
        "regions": with_kinds(stored.get("regions", [])),
        "tags": {"styles": list(tags.get("styles", [])), "flags": list(tags.get("flags", []))},
    }


_READ_DOCUMENT = Prepared(
    select(_images.c.id, _annotations.c.version, _annotations.c.document)
    .select_from(_images.outerjoin(_annotations, _annotations.c.image_id == _images.c.id))
    .where(_images.c.id == bindparam("b_image_id"))
)


def current_document(image_id: int) -> dict:
    """The current document of an image by id; NotFound when the image does not exist."""
    row = _READ_DOCUMENT.first(db.session.connection(), {"b_image_id": image_id})
    if row is None:
        raise not_found("image")
    return _as_document(row.version or 0, row.document)


def _ordered_union(*lists: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for values in lists:
        for value in values:
            if value and value not in out:
                out.append(value)
    return out


# --- saving -------------------------------------------------------------------------------------------------------
# Core statements on the tables, built once: a save is on the hot path of every annotator (see
# benchmarks/bench_api.py), and the ORM's per-statement work would double its cost. They are Prepared
# (backend/db/prepared.py): on SQLite they run on the cursor, which also shortens the time the save holds the
# database's write lock.

_READ_STATE = Prepared(
    select(_images.c.width, _images.c.height, _images.c.status, _images.c.styles, _images.c.flags,
           _images.c.assignee_id, _images.c.lock_expires_at, _annotations.c.version)
    .select_from(_images.outerjoin(_annotations, _annotations.c.image_id == _images.c.id))
    .where(_images.c.id == bindparam("b_image_id"))
)
_COMPARE_AND_SET = Prepared(
    update(_annotations)
    .where(_annotations.c.image_id == bindparam("b_image_id"), _annotations.c.version == bindparam("b_version"))
    .values(version=_annotations.c.version + 1, document=bindparam("document", type_=_annotations.c.document.type),
            updated_by=bindparam("updated_by"), updated_at=bindparam("updated_at"))
)
_INSERT_ANNOTATION = Prepared(insert(_annotations))
_DELETE_REGIONS = Prepared(delete(_regions).where(_regions.c.image_id == bindparam("b_image_id")))
_INSERT_REGIONS = Prepared(insert(_regions))
_INSERT_REVISION = Prepared(insert(_revisions))
# The save's first statement: it locks the image row (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the
# database) and returns the status, which is "accepted" exactly when it was (accepted images are left as they are).
_UPDATE_IMAGE = Prepared(
    update(_images)
    .where(_images.c.id == bindparam("b_image_id"))
    .values(flags=bindparam("flags", type_=_images.c.flags.type),
            styles=bindparam("styles", type_=_images.c.styles.type),
            status=case((_images.c.status == "new", "in_progress"), else_=_images.c.status),
            updated_at=bindparam("updated_at"))
    .returning(_images.c.status)
)
# An annotator's save: only where backend/core/write_rules.py allows it, and the writer holds the lease afterwards.
_UPDATE_HELD_IMAGE = Prepared(
    update(_images)
    .where(_images.c.id == bindparam("b_image_id"), HELD_WRITE)
    .values(flags=bindparam("flags", type_=_images.c.flags.type),
            styles=bindparam("styles", type_=_images.c.styles.type),
            status=case((_images.c.status == "new", "in_progress"), else_=_images.c.status),
            updated_at=bindparam("updated_at"), assignee_id=bindparam("b_user_id"),
            lock_expires_at=bindparam("b_expires", type_=_images.c.lock_expires_at.type))
    .returning(_images.c.status)
)


def stale_version(current: dict, saved_by: str | None = None, saved_at: datetime | None = None) -> Conflict:
    """The one answer to a save on a version that is no longer current (the image's document or an agreement
    copy): 409 `stale_version`, the current document in details.current (the editor merges into it) and, where
    known, who saved it when."""
    return Conflict(
        "stale_version",
        f"The annotation changed since you loaded it (now version {current['version']}); "
        "merge your changes into the current document and save again.",
        {"current": current, "saved_by": saved_by,
         "saved_at": saved_at.isoformat() if saved_at is not None else None},
    )


def _stale(image_id: int) -> Conflict:
    current = current_document(image_id)
    # who saved the version that won, so the conflict dialog can name them
    last = db.session.execute(
        select(User.username, AnnotationRevision.created_at)
        .join(User, User.id == AnnotationRevision.author_id, isouter=True)
        .where(AnnotationRevision.image_id == image_id, AnnotationRevision.version == current["version"])
    ).first()
    saved_at = last.created_at if last is not None else None
    if saved_at is not None and saved_at.tzinfo is None:  # SQLite: naive, stored in UTC
        saved_at = saved_at.replace(tzinfo=timezone.utc)
    return stale_version(current, last.username if last is not None else None, saved_at)


def _frozen() -> DomainError:
    return refusal("accepted", None, None, None, utcnow())


def _refused_meanwhile(session, image_id: int, user_id: int | None) -> DomainError:
    """Why the write transaction's conditional UPDATE matched no row: the image is gone, or it changed hands or
    status since the read (someone took the lease, submitted it, ...)."""
    row = session.execute(select(Image.status, Image.assignee_id, Image.lock_expires_at)
                          .where(Image.id == image_id)).first()
    if row is None:
        return not_found("image")
    return refusal(row.status, row.assignee_id, row.lock_expires_at, user_id, utcnow()) or \
        Conflict("leased", "Another annotator took this image a moment ago; ask the queue for another image.")


def _expire_image_objects(session, image_id: int) -> None:
    """The ORM copies of what a save changed with Core statements are stale now: expire just those."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, (Image, Annotation)) and getattr(obj, "id" if isinstance(obj, Image) else "image_id",
                                                            None) == image_id:
            session.expire(obj)


def _region_rows(image_id: int, regions: list[dict]) -> list[dict]:
    rows = []
    for region in regions:
        area, bbox = area_bbox(region["geometry"])
        rows.append({
            "id": region["id"], "image_id": image_id, "kind": region["kind"], "geometry": region["geometry"],
            "style": region["style"],
            "motifs": region["motifs"], "source": region["source"], "model_version_id": region["model_version"],
            "area": area, "bbox": bbox,
        })
    return rows


def _check_counters(base_version: Any, time_spent_ms: Any) -> None:
    if isinstance(base_version, bool) or not isinstance(base_version, int) or base_version < 0:
        raise Invalid("invalid_base_version", "base_version must be the version you loaded (an integer >= 0)")
    if isinstance(time_spent_ms, bool) or not isinstance(time_spent_ms, int) \
            or not 0 <= time_spent_ms <= MAX_TIME_SPENT_MS:
        raise Invalid("invalid_time_spent", f"time_spent_ms must be an integer from 0 to {MAX_TIME_SPENT_MS}")


def save_document(image_id: int, user: User | Caller | None, base_version: int, regions: list, tags: dict | None,
                  time_spent_ms: int = 0, allow_frozen: bool = False) -> dict:
    """Save a new version of an image's annotation document; returns the saved document.

    Raises (backend.core.errors): NotFound for an unknown image; Forbidden for an accepted image when the user
    is not a reviewer/admin (unless `allow_frozen`); Conflict `stale_version` (details.current) for a stale
    `base_version`; Invalid for a region or tags. Nothing is written unless everything is valid and the version
    still matches.

    Transactions: the caller's open transaction is committed first (a read: the state is checked and the request
    validated outside any lock), then one write transaction makes the change and commits. Loaded ORM objects are
    not expired by these commits, except the image's own Image/Annotation objects after a successful save.
    """
    _check_counters(base_version, time_spent_ms)
    config = current_app.config
    session = db.session()
    user_id = user.id if user is not None else None
    privileged = allow_frozen or (user is not None and user.has_role("reviewer"))
    held = user is not None and not privileged  # an annotator: backend/core/write_rules.py decides
    try:
        # 1. Read and check outside any lock (on SQLite a DEFERRED read: a WAL snapshot, not the write lock); the
        #    write below checks again where it counts.
        with reads_only():  # (a transaction the caller left open goes on as it began)
            row = _READ_STATE.first(session.connection(), {"b_image_id": image_id})
            if row is None:
                raise not_found("image")
            if held:
                refused = refusal(row.status, row.assignee_id, row.lock_expires_at, user_id, utcnow())
                if refused is not None:
                    raise refused
            elif row.status == "accepted" and not privileged:
                raise _frozen()
            if user is not None and holds_open_copy(session.connection(), image_id, user_id):
                raise hidden_primary(image_id)
            if (row.version or 0) != base_version:
                raise _stale(image_id)
            end_read(session)

        # 2. Validate (CPU only, no transaction open).
        cleaned, cleaned_tags = clean_document(regions, tags, row.width, row.height)
        document = {"regions": cleaned, "tags": cleaned_tags}
        flags = cleaned_tags["flags"]
        styles = _ordered_union(cleaned_tags["styles"], (r["style"] for r in cleaned))
        region_rows = _region_rows(image_id, cleaned)
        now = utcnow()
        new_version = base_version + 1

        # 3. One write transaction. Updating the image row first locks it (PostgreSQL), which orders this save
        #    with reviews of the image; the compare-and-set UPDATE is what makes concurrent saves on one version
        #    end with one winner.
        check_model_versions(cleaned)
        conn = session.connection()
        params = {"b_image_id": image_id, "flags": flags, "styles": styles, "updated_at": now}
        if held:
            lease = now + timedelta(seconds=int(config.get("LOCK_SECONDS", 900)))
            locked = _UPDATE_HELD_IMAGE.first(conn, {**params, "b_user_id": user_id, "b_now": now,
                                                     "b_expires": lease})
            if locked is None:
                raise _refused_meanwhile(session, image_id, user_id)  # (rolled back below)
        else:
            locked = _UPDATE_IMAGE.first(conn, params)
            if locked is None:
                raise not_found("image")
            if locked.status == "accepted" and not privileged:
                raise _frozen()
        if row.version is None:  # no annotation row yet: a concurrent first save hits the primary key
            _INSERT_ANNOTATION.execute(conn, {"image_id": image_id, "version": new_version, "document": document,
                                              "updated_by": user_id, "updated_at": now})
        elif _COMPARE_AND_SET.execute(conn, {"b_image_id": image_id, "b_version": base_version, "document": document,
                                             "updated_by": user_id, "updated_at": now}) != 1:
            session.rollback()
            raise _stale(image_id)
        _DELETE_REGIONS.execute(conn, {"b_image_id": image_id})
        _INSERT_REGIONS.execute_many(conn, region_rows)
        _INSERT_REVISION.execute(conn, {"image_id": image_id, "version": new_version, "document": document,
                                        "author_id": user_id, "time_spent_ms": time_spent_ms, "created_at": now})
        if list(row.styles or []) != styles or list(row.flags or []) != flags:
            write_image_tags(conn, image_id, styles, flags)  # the image list's style/flag index
        commit_keeping_loaded(session)
    except IntegrityError:
        # Lost a race on the first save of an image (or on the revision number): the other save won.
        session.rollback()
        raise _stale(image_id) from None
    except BaseException:
        session.rollback()
        raise
    _expire_image_objects(session, image_id)
    return _as_document(new_version, document)


def save_agreement_copy(image_id: int, user: User | Caller, base_version: int, regions: list, tags: dict | None,
                        time_spent_ms: int, complete: bool, lock_seconds: int) -> dict:
    """Save the next version of the caller's agreement copy of an image (never the image's own document); returns
    the copy. The same checks as `save_document`: 404 without a copy, 409 `stale_version` (details.current: the
    copy) when `base_version` is not its version, 422 for regions and tags; and 409 `already_completed` once the
    copy is final. `complete` makes it final. Commits."""
    _check_counters(base_version, time_spent_ms)
    session = db.session
    try:
        size = session.execute(select(Image.width, Image.height).where(Image.id == image_id)).first()
        if size is None:
            raise not_found("image")
        row = agreement_copy(session, image_id, user)
        if row.completed_at is not None:
            raise Conflict("already_completed", "This agreement copy was completed; it can no longer change.")
        current = copy_document(row)
        if current["version"] != base_version:
            raise stale_version(current)
        cleaned, cleaned_tags = clean_document(regions, tags, size.width, size.height)
        check_model_versions(cleaned)
        saved = store_copy(row, cleaned, cleaned_tags, time_spent_ms, complete, lock_seconds)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return saved


# --- workflow -----------------------------------------------------------------------------------------------------


def submit_image(image_id: int, user: User | Caller | None = None) -> dict:
    """Mark an image as submitted for review (from new, in_progress or rejected); 409 from other states.

    An annotator (`user` below reviewer) submits only what they may write (backend/core/write_rules.py: the lease is
    free or theirs, no open agreement copy of theirs); reviewers, admins and `user` None (the CLI) any image.
    The annotator's queue lease ends with it (as workflow.end_lease does for status changes)."""
    session = db.session
    now = utcnow()
    held = user is not None and not user.has_role("reviewer")
    try:
        if user is not None and holds_open_copy(session.connection(), image_id, user.id):
            raise hidden_primary(image_id)
        where = [Image.id == image_id, Image.status.in_(SUBMITTABLE)]
        if held:
            where.append(HELD_WRITE)
        result = session.execute(
            update(Image)
            .where(*where)
            .values(status="submitted", assignee_id=None, lock_expires_at=None, updated_at=now)
            .execution_options(synchronize_session=False),
            {"b_user_id": user.id, "b_now": now} if held else {},
        )
        if result.rowcount != 1:
            row = session.execute(select(Image.status, Image.assignee_id, Image.lock_expires_at)
                                  .where(Image.id == image_id)).first()
            session.rollback()
            if row is None:
                raise not_found("image")
            refused = refusal(row.status, row.assignee_id, row.lock_expires_at, user.id, now) if held else None
            if refused is not None and row.status in SUBMITTABLE:
                raise refused
            raise Conflict("bad_status",
                           f"The image is {row.status}; only new, in-progress or rejected images can be submitted.",
                           {"status": row.status})
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return {"id": image_id, "status": "submitted", "version": current_document(image_id)["version"]}


def list_revisions(image_id: int, page: int = 1, per_page: int = 50) -> dict:
    """The save history of an image, newest first: version, author, time spent, created_at."""
    if db.session.get(Image, image_id) is None:
        raise not_found("image")
    where = AnnotationRevision.image_id == image_id
    total = db.session.scalar(select(func.count()).select_from(AnnotationRevision).where(where))
    rows = db.session.execute(
        select(AnnotationRevision.version, AnnotationRevision.time_spent_ms, AnnotationRevision.created_at,
               AnnotationRevision.author_id, User.username)
        .outerjoin(User, User.id == AnnotationRevision.author_id)
        .where(where)
        .order_by(AnnotationRevision.version.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [
        {
            "version": r.version,
            "author": {"id": r.author_id, "username": r.username} if r.author_id is not None else None,
            "time_spent_ms": r.time_spent_ms,
            "created_at": r.created_at.isoformat() if r.created_at else None,
        }
        for r in rows
    ]
    return {"items": items, "total": total}


def get_revision(image_id: int, version: int) -> dict:
    """One saved revision with its full document."""
    row = db.session.execute(
        select(AnnotationRevision, User.username)
        .outerjoin(User, User.id == AnnotationRevision.author_id)
        .where(AnnotationRevision.image_id == image_id, AnnotationRevision.version == version)
    ).first()
    if row is None:
        raise not_found("revision")
    rev, username = row
    return {
        "version": rev.version,
        "author": {"id": rev.author_id, "username": username} if rev.author_id is not None else None,
        "time_spent_ms": rev.time_spent_ms,
        "created_at": rev.created_at.isoformat() if rev.created_at else None,
        "document": _as_document(rev.version, rev.document),
    }
