"""Who may write an image's annotation document, and submit it: the workflow's rules, enforced on every write.

An annotator (any caller below reviewer) may save or submit an image only when
- it is new or in progress and nobody else holds a live lease on it (a save or submit takes the lease: the writer
  becomes its holder), or it is rejected and theirs to fix (or nobody's);
- it is not submitted (read-only while it waits for review: 403 ``submitted``) nor accepted (403 ``frozen``);
- they do not hold an open agreement copy of it: the primary document stays hidden from the copy's holder, for
  reading too (403 ``agreement_open``), until the copy is completed.
Reviewers and admins write regardless of leases and status (their revisions record them as authors); they are
kept from reviewing an image they wrote any revision of by backend/core/workflow/review.py.

`refusal` states the rules over the values of one image row; `HELD_WRITE` is the same rule as SQL for the
conditional UPDATE that takes the lease inside the save's write transaction, so a lease taken meanwhile by
someone else makes the save fail rather than overwrite.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import and_, bindparam, or_, select

from backend.core.errors import Conflict, DomainError, Forbidden
from backend.db.models import Assignment, Image

WRITABLE = ("new", "in_progress")

_images = Image.__table__
_free_or_mine = or_(_images.c.assignee_id.is_(None), _images.c.assignee_id == bindparam("b_user_id"))
# The rows an annotator may write (bind b_user_id, b_now); keep in step with `refusal`.
HELD_WRITE = or_(
    and_(or_(*(_images.c.status == status for status in WRITABLE)),  # (no IN: prepared.py binds no lists)
         or_(_free_or_mine, _images.c.lock_expires_at.is_(None), _images.c.lock_expires_at < bindparam("b_now"))),
    and_(_images.c.status == "rejected", _free_or_mine),
)


def _aware(value: Optional[datetime]) -> Optional[datetime]:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def refusal(status: str, assignee_id: Optional[int], lock_expires_at: Optional[datetime], user_id: Optional[int],
            now: datetime) -> Optional[DomainError]:
    """Why an annotator may not write an image in this state (an error to raise), or None."""
    if status == "accepted":
        return Forbidden("frozen", "This image was accepted in review; only a reviewer or admin may change it.")
    if status == "submitted":
        return Forbidden("submitted", "This image is submitted and waits for review: it is read-only until a "
                         "reviewer accepts it or sends it back.")
    if assignee_id is None or assignee_id == user_id:
        return None
    if status == "rejected":
        return Forbidden("not_yours", "This image was sent back to the annotator who made it; only they (or a "
                         "reviewer) may change it. Ask the queue for another image.")
    expires = _aware(lock_expires_at)
    if status in WRITABLE and expires is not None and expires >= now:
        return Conflict("leased", "Another annotator is working on this image (their lease runs until "
                        f"{expires.isoformat(timespec='seconds')}); ask the queue for another image.",
                        {"lease_expires_at": expires.isoformat()})
    return None


def hidden_primary(image_id: int) -> Forbidden:
    return Forbidden("agreement_open", f"You are making an independent agreement copy of image {image_id}: its "
                     "first annotation stays hidden from you and cannot be changed by you until you complete the copy "
                     f"(PUT /api/v1/images/{image_id}/agreement).")


def holds_open_copy(connection, image_id: int, user_id: Optional[int]) -> bool:
    if user_id is None:
        return False
    return connection.execute(
        select(Assignment.id).where(Assignment.image_id == image_id, Assignment.user_id == user_id,
                                    Assignment.kind == "agreement", Assignment.completed_at.is_(None)).limit(1)
    ).first() is not None


def check_not_copy_holder(session, image_id: int, user) -> None:
    """Raise 403 agreement_open when the caller holds an open agreement copy of the image (reads of the primary
    document, its revisions and writes all go through here)."""
    if user is not None and holds_open_copy(session.connection(), image_id, user.id):
        raise hidden_primary(image_id)
