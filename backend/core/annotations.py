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

import math
import re
import uuid
from datetime import timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

from flask import current_app
from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from backend.core.boxes import REGION_KINDS, validate_box, with_kinds
from backend.db.engine import end_read, reads_only
from backend.web.errors import APIError, not_found
from backend.db.extensions import db
from backend.core.geometry import DEFAULT_MAX_VERTICES, GeometryError, area_bbox, validate_geometry
from backend.core.ingest import write_image_tags
from backend.db.models import (
    REGION_SOURCES,
    Annotation,
    AnnotationRevision,
    Image,
    ModelVersion,
    Region,
    User,
    empty_document,
    utcnow,
)
from backend.db.prepared import Prepared
from backend.core.taxonomy import flag_keys, load_taxonomy, style_keys
from backend.core.write_rules import HELD_WRITE, hidden_primary, holds_open_copy, refusal

if TYPE_CHECKING:
    from backend.web.auth import Caller

REGION_KEYS = ("id", "kind", "geometry", "style", "motifs", "source", "model_version", "confidence")
REGION_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_MOTIFS = 50
MAX_TAG_LENGTH = 64
MAX_TAGS = 50
MAX_TIME_SPENT_MS = 24 * 3600 * 1000
SUBMITTABLE = ("new", "in_progress", "rejected")
MAX_ID = 2**31 - 1  # integer primary keys (PostgreSQL INTEGER): larger ids cannot exist and must not reach SQL

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
    """The current document of an image by id; APIError 404 when the image does not exist."""
    row = _READ_DOCUMENT.first(db.session.connection(), {"b_image_id": image_id})
    if row is None:
        raise not_found("image")
    return _as_document(row.version or 0, row.document)


# --- validation ---------------------------------------------------------------------------------------------------


def _region_error(index: int, reason: str) -> APIError:
    return APIError(422, "invalid_region", f"Region {index}: {reason}", {"region": index, "reason": reason})


def _string_list(value: Any, what: str, limit: int) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list of strings")
    if len(value) > limit:
        raise ValueError(f"{what} has {len(value)} entries; at most {limit} are allowed")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_TAG_LENGTH:
            raise ValueError(f"{what} entries must be non-empty strings of at most {MAX_TAG_LENGTH} characters")
        item = item.strip()
        if item not in out:
            out.append(item)
    return out


def clean_region(index: int, raw: Any, width: int, height: int, styles: set[str],
                 max_vertices: int = DEFAULT_MAX_VERTICES) -> dict:
    """One region checked and normalised, or APIError 422 naming `index`.

    id: 1-64 characters of letters, digits and ``_ . : -`` (a uuid hex is assigned when missing); kind: "mask"
    (default) or "box"; geometry: for a mask see geometry.validate_geometry (clipped/repaired, never refused for
    being repairable), for a box boxes.validate_box (an axis-aligned rectangle, clipped, canonical ring); style: a taxonomy key or
    null; motifs: at most 50 strings of at most 64 characters; source: human | model | assist (default human);
    model_version: optional id of a ModelVersion; confidence: optional number in [0, 1].
    """
    if not isinstance(raw, dict):
        raise _region_error(index, "a region must be an object")
    unknown = sorted(set(raw) - set(REGION_KEYS))
    if unknown:
        raise _region_error(index, f"unknown field(s): {', '.join(map(str, unknown))[:200]}")
    region_id = raw.get("id")
    if region_id is None:
        region_id = uuid.uuid4().hex
    elif not isinstance(region_id, str) or not REGION_ID.match(region_id):
        raise _region_error(index, "id must be 1-64 letters, digits, '_', '.', ':' or '-'")
    kind = raw.get("kind", "mask")
    if kind not in REGION_KINDS:
        raise _region_error(index, f"kind must be one of {', '.join(REGION_KINDS)}")
    try:
        if kind == "box":
            geometry = validate_box(raw.get("geometry"), width, height)
        else:
            geometry = validate_geometry(raw.get("geometry"), width, height, max_vertices)
    except GeometryError as err:
        raise _region_error(index, f"geometry: {err}") from None
    style = raw.get("style")
    if style is not None and (not isinstance(style, str) or style not in styles):
        raise _region_error(index, f"unknown style {str(style)[:64]!r}; see GET /api/v1/taxonomy")
    try:
        motifs = _string_list(raw.get("motifs", []), "motifs", MAX_MOTIFS)
    except ValueError as err:
        raise _region_error(index, str(err)) from None
    source = raw.get("source", "human")
    if source not in REGION_SOURCES:
        raise _region_error(index, f"source must be one of {', '.join(REGION_SOURCES)}")
    model_version = raw.get("model_version")
    if model_version is not None and (isinstance(model_version, bool) or not isinstance(model_version, int)
                                      or not 1 <= model_version <= MAX_ID):
        raise _region_error(index, "model_version must be a model version id")
    confidence = raw.get("confidence")
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
                or not math.isfinite(confidence) or not 0 <= confidence <= 1:
            raise _region_error(index, "confidence must be a number from 0 to 1")
        confidence = float(confidence)
    return {
        "id": region_id,
        "kind": kind,
        "geometry": geometry,
        "style": style,
        "motifs": motifs,
        "source": source,
        "model_version": model_version,
        "confidence": confidence,
    }


def clean_tags(tags: Any, taxonomy: dict) -> dict:
    """Image-level tags: known style keys and flag keys only, duplicates dropped (422 otherwise)."""
    if tags is None:
        tags = {}
    if not isinstance(tags, dict) or set(tags) - {"styles", "flags"}:
        raise APIError(422, "invalid_tags", "tags must be an object with 'styles' and 'flags' lists")
    out = {}
    for key, known, code in (("styles", style_keys(taxonomy), "unknown_style"),
                             ("flags", flag_keys(taxonomy), "unknown_flag")):
        try:
            values = _string_list(tags.get(key, []), f"tags.{key}", MAX_TAGS)
        except ValueError as err:
            raise APIError(422, "invalid_tags", str(err)) from None
        unknown = [v for v in values if v not in known]
        if unknown:
            raise APIError(422, code, f"Unknown {key[:-1]} key(s) in tags: {', '.join(unknown)[:300]}; "
                                      "see GET /api/v1/taxonomy", {key: unknown})
        out[key] = values
    return out


def clean_regions(regions: Any, width: int, height: int, taxonomy: dict, max_vertices: int,
                  max_regions: int) -> list[dict]:
    if not isinstance(regions, list):
        raise APIError(422, "invalid_regions", "regions must be a list")
    if len(regions) > max_regions:
        raise APIError(422, "too_many_regions", f"{len(regions)} regions; at most {max_regions} per image")
    styles = style_keys(taxonomy)
    cleaned = [clean_region(i, raw, width, height, styles, max_vertices) for i, raw in enumerate(regions)]
    seen: dict[str, int] = {}
    for i, region in enumerate(cleaned):
        if region["id"] in seen:
            raise _region_error(i, f"duplicate id {region['id']!r} (also region {seen[region['id']]})")
        seen[region["id"]] = i
    return cleaned


def check_model_versions(regions: list[dict]) -> None:
    """422 naming the first region whose model_version is not a known ModelVersion id."""
    wanted = {r["model_version"] for r in regions if r["model_version"] is not None}
    if not wanted:
        return
    found = set(db.session.scalars(select(ModelVersion.id).where(ModelVersion.id.in_(wanted))))
    for i, region in enumerate(regions):
        if region["model_version"] is not None and region["model_version"] not in found:
            raise _region_error(i, f"unknown model_version {region['model_version']}")




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


def _stale(image_id: int) -> APIError:
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
    return APIError(
        409, "stale_version",
        f"The annotation changed since you loaded it (now version {current['version']}); "
        "merge your changes into the current document and save again.",
        {"current": current, "saved_by": last.username if last is not None else None,
         "saved_at": saved_at.isoformat() if saved_at is not None else None},
    )


def _frozen() -> APIError:
    return refusal("accepted", None, None, None, utcnow())


def _refused_meanwhile(session, image_id: int, user_id: int | None) -> APIError:
    """Why the write transaction's conditional UPDATE matched no row: the image is gone, or it changed hands or
    status since the read (someone took the lease, submitted it, ...)."""
    row = session.execute(select(Image.status, Image.assignee_id, Image.lock_expires_at)
                          .where(Image.id == image_id)).first()
    if row is None:
        return not_found("image")
    return refusal(row.status, row.assignee_id, row.lock_expires_at, user_id, utcnow()) or \
        APIError(409, "leased", "Another annotator took this image a moment ago; ask the queue for another image.")


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


def save_document(image_id: int, user: User | Caller | None, base_version: int, regions: list, tags: dict | None,
                  time_spent_ms: int = 0, allow_frozen: bool = False) -> dict:
    """Save a new version of an image's annotation document; returns the saved document.

    Raises APIError: 404 unknown image, 403 accepted image and the user is not a reviewer/admin (unless
    `allow_frozen`), 409 stale `base_version` (details.current), 422 invalid region/tags. Nothing is written
    unless everything is valid and the version still matches.

    Transactions: the caller's open transaction is committed first (a read: the state is checked and the request
    validated outside any lock), then one write transaction makes the change and commits. Loaded ORM objects are
    not expired by these commits, except the image's own Image/Annotation objects after a successful save.
    """
    if isinstance(base_version, bool) or not isinstance(base_version, int) or base_version < 0:
        raise APIError(422, "invalid_base_version", "base_version must be the version you loaded (an integer >= 0)")
    if isinstance(time_spent_ms, bool) or not isinstance(time_spent_ms, int) \
            or not 0 <= time_spent_ms <= MAX_TIME_SPENT_MS:
        raise APIError(422, "invalid_time_spent", f"time_spent_ms must be an integer from 0 to {MAX_TIME_SPENT_MS}")
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
        taxonomy = load_taxonomy(config["WORKSPACE"])
        cleaned = clean_regions(regions, row.width, row.height, taxonomy,
                                config.get("MAX_REGION_VERTICES", DEFAULT_MAX_VERTICES),
                                config.get("MAX_REGIONS", 5000))
        cleaned_tags = clean_tags(tags, taxonomy)
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
        end_read(session)
    except IntegrityError:
        # Lost a race on the first save of an image (or on the revision number): the other save won.
        session.rollback()
        raise _stale(image_id) from None
    except BaseException:
        session.rollback()
        raise
    _expire_image_objects(session, image_id)
    return _as_document(new_version, document)


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
            raise APIError(409, "bad_status",
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
