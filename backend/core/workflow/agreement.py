"""Agreement copies: a second, independent annotation of a sample of images, to measure agreement.

A configurable share of images (chosen by a hash of their content, so the choice is stable) is marked
`needs_second_annotator` when first leased. Once the first annotator has submitted it, the queue offers it to a
different annotator as an *agreement copy* (an Assignment of kind "agreement" with its own document and lease);
their saves go to `PUT /images/<id>/agreement` (backend/core/annotations.py: save_agreement_copy) and never touch
the image's own document.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.core.boxes import with_kinds
from backend.core.errors import NotFound
from backend.core.workflow import CANDIDATES_PER_ROUND, DONE_STATUSES, batching, iso
from backend.db.models import AnnotationRevision, Assignment, Image, User, empty_document, utcnow

DEFAULT_AGREEMENT_SHARE = 0.05


def agreement_share(config: dict) -> float:
    """AGREEMENT_SHARE from the app config, else INKLABEL_AGREEMENT_SHARE, else 5 %; clamped to [0, 1]."""
    value = config.get("AGREEMENT_SHARE")
    if value is None:
        raw = os.environ.get("INKLABEL_AGREEMENT_SHARE", "")
        try:
            value = float(raw) if raw else DEFAULT_AGREEMENT_SHARE
        except ValueError:
            value = DEFAULT_AGREEMENT_SHARE
    return min(1.0, max(0.0, float(value)))


def selected_for_agreement(sha256: str, share: float) -> bool:
    """Stable choice of the agreement sample: the first 32 bits of the content hash, as a fraction, below `share`."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    try:
        return int(sha256[:8], 16) / 2**32 < share
    except ValueError:
        return False


def _involved(session: Session, image_id: int, user_id: int) -> bool:
    """Has the user worked on this image (a lease/assignment or a saved revision)?"""
    assigned = session.scalar(
        select(Assignment.id).where(Assignment.image_id == image_id, Assignment.user_id == user_id).limit(1)
    )
    if assigned is not None:
        return True
    return session.scalar(
        select(AnnotationRevision.id)
        .where(AnnotationRevision.image_id == image_id, AnnotationRevision.author_id == user_id)
        .limit(1)
    ) is not None


def resume_copy(session: Session, user: User, expires: datetime) -> Optional[int]:
    """The image of the caller's open agreement copy, its lease renewed; None without one."""
    row = session.scalar(
        select(Assignment)
        .where(Assignment.user_id == user.id, Assignment.kind == "agreement", Assignment.completed_at.is_(None))
        .order_by(Assignment.created_at)
        .limit(1)
    )
    if row is None:
        return None
    row.lock_expires_at = expires
    return row.image_id


def start_copy(session: Session, user: User, expires: datetime, now: datetime) -> Optional[int]:
    """Give the caller a new agreement copy (an abandoned one, or of a finished image of the sample that the
    caller never worked on); its image, or None when there is none to make."""
    # An abandoned copy (lease ran out, not completed) goes to someone else, started afresh.
    stale = session.scalars(
        select(Assignment)
        .where(Assignment.kind == "agreement", Assignment.completed_at.is_(None),
               Assignment.lock_expires_at < now, Assignment.user_id != user.id)
        .order_by(Assignment.lock_expires_at)
        .limit(CANDIDATES_PER_ROUND)
    ).all()
    for row in stale:
        if _involved(session, row.image_id, user.id):
            continue
        taken = session.execute(
            update(Assignment)
            .where(Assignment.id == row.id, Assignment.completed_at.is_(None), Assignment.lock_expires_at < now)
            .values(user_id=user.id, document=None, lock_expires_at=expires, time_spent_ms=0, created_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            return row.image_id

    per_round, rounds = batching(session)
    tried: set[int] = set()
    for _round in range(rounds):
        candidates = session.scalars(
            select(Image.id)
            .where(Image.needs_second_annotator.is_(True), Image.status.in_(DONE_STATUSES),
                   Image.id.not_in(tried) if tried else True)
            .order_by(Image.id)
            .limit(per_round)
            .with_for_update(skip_locked=True, of=Image)
        ).all()
        if not candidates:
            return None
        for image_id in candidates:
            tried.add(image_id)
            if _involved(session, image_id, user.id):
                continue
            taken = session.execute(
                update(Image)
                .where(Image.id == image_id, Image.needs_second_annotator.is_(True))
                .values(needs_second_annotator=False)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:
                session.add(Assignment(image_id=image_id, user_id=user.id, kind="agreement", created_at=now,
                                       lock_expires_at=expires, document=None))
                return image_id
    return None


def open_copy(session: Session, image_id: int, user_id: int) -> Optional[Assignment]:
    return session.scalar(
        select(Assignment).where(
            Assignment.image_id == image_id, Assignment.user_id == user_id, Assignment.kind == "agreement",
            Assignment.completed_at.is_(None),
        )
    )


def agreement_copy(session: Session, image_id: int, user: User) -> Assignment:
    """The caller's (latest) agreement copy of an image, or a 404."""
    row = session.scalar(
        select(Assignment)
        .where(Assignment.image_id == image_id, Assignment.user_id == user.id, Assignment.kind == "agreement")
        .order_by(Assignment.created_at.desc(), Assignment.id.desc())
        .limit(1)
    )
    if row is None:
        raise NotFound("not_found", "You have no agreement copy of this image; the queue hands them out.")
    return row


def copy_document(row: Assignment) -> dict:
    doc = dict(row.document or {})
    base = empty_document()
    return {
        "image_id": row.image_id,
        "version": int(doc.get("version", 0)),
        "regions": with_kinds(doc.get("regions", base["regions"])),
        "tags": doc.get("tags", base["tags"]),
        "completed": row.completed_at is not None,
        "completed_at": iso(row.completed_at),
        "time_spent_ms": row.time_spent_ms or 0,
        "lease_expires_at": iso(row.lock_expires_at),
    }


def store_copy(row: Assignment, regions: list[dict], tags: dict, time_spent_ms: int, complete: bool,
               lock_seconds: int, now: Optional[datetime] = None) -> dict:
    """Store the next version of an agreement copy: regions and tags validated, the version and completion checked
    (backend/core/annotations.py: save_agreement_copy). `complete` makes it final."""
    now = now or utcnow()
    current = int((row.document or {}).get("version", 0))
    row.document = {"version": current + 1, "regions": regions, "tags": tags}
    row.time_spent_ms = (row.time_spent_ms or 0) + time_spent_ms
    row.lock_expires_at = now + timedelta(seconds=lock_seconds)
    if complete:
        row.completed_at = now
        row.lock_expires_at = None
    return copy_document(row)
