"""The active-learning queue: `next_image` leases an image to one annotator, `heartbeat` extends the lease,
`release` ends it.

A *lease* is `Image.assignee_id` + `Image.lock_expires_at`: `next_image` hands an image to one annotator for
LOCK_SECONDS, the editor's heartbeat extends it, release ends it (and a submitted image leaves the pool). A lease is
taken with one conditional UPDATE (… WHERE the image is still free), and on PostgreSQL the candidate rows are read
with FOR UPDATE SKIP LOCKED, so two annotators never hold one image even when they ask at the same instant; SQLite
serialises writers (every transaction begins IMMEDIATE). A rejected image stays assigned to its annotator (the
assignee without a live lease means "owner") and comes back to them first; nobody else gets it.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from backend.core.errors import Conflict, Invalid, NotFound, not_found
from backend.core.workflow import DONE_STATUSES, HELD_STATUSES, POOL_STATUSES, batching, iso
from backend.core.workflow.agreement import open_copy, resume_copy, selected_for_agreement, start_copy
from backend.core.workflow.review import latest_review
from backend.db.models import Assignment, Image, ImageScore, ImageTag, User, utcnow

STRATEGIES = ("uncertainty", "diversity", "random", "oldest")


@dataclass
class QueueItem:
    image_id: int
    score: Optional[float]
    reason: str
    parts: dict[str, Any] = field(default_factory=dict)
    lease_expires_at: Optional[str] = None
    strategy: str = "oldest"  # the strategy that actually chose the image
    kind: str = "annotate"  # annotate | rework (rejected, back to its annotator) | agreement
    comment: Optional[str] = None  # the reviewer's comment on a rework

    def to_dict(self) -> dict:
        return asdict(self)


def _lease_free(now: datetime):
    return or_(Image.assignee_id.is_(None), Image.lock_expires_at.is_(None), Image.lock_expires_at < now)


def _not_flagged():
    return ~exists().where(ImageTag.image_id == Image.id, ImageTag.kind == "flag")


def _free(now: datetime):
    """Free for anyone: a new / in-progress image without a live lease, or a rejected image whose annotator is
    gone (a rejected image with an assignee is that annotator's to fix, lease or not)."""
    return or_(
        and_(Image.status.in_(POOL_STATUSES), _lease_free(now)),
        and_(Image.status == "rejected", Image.assignee_id.is_(None)),
    )


def _pool_filter(now: datetime):
    return and_(_free(now), _not_flagged())


def _is_flagged(flags: Any) -> bool:
    return bool(flags)


def _record_primary(session: Session, image_id: int, user_id: int, now: datetime) -> None:
    """One primary Assignment per (image, annotator); a newer lease by the same person refreshes it."""
    row = session.scalar(
        select(Assignment).where(
            Assignment.image_id == image_id, Assignment.user_id == user_id, Assignment.kind == "primary"
        )
    )
    if row is None:
        session.add(Assignment(image_id=image_id, user_id=user_id, kind="primary", created_at=now))
    else:
        row.created_at = now
        row.completed_at = None


def _score_of(session: Session, image_id: int, strategy: str) -> tuple[Optional[float], dict]:
    row = session.get(ImageScore, (image_id, strategy))
    if row is None and strategy != "uncertainty":
        row = session.get(ImageScore, (image_id, "uncertainty"))
    return (row.score, dict(row.parts or {})) if row is not None else (None, {})


def _claim(session: Session, image_id: int, user_id: int, expires: datetime, now: datetime) -> bool:
    """Take the lease if the image is still free or already the caller's: one conditional UPDATE, so of two
    callers racing for one image exactly one succeeds."""
    result = session.execute(
        update(Image)
        .where(
            Image.id == image_id,
            or_(_free(now), and_(Image.assignee_id == user_id, Image.status.in_(HELD_STATUSES))),
        )
        .values(assignee_id=user_id, lock_expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# --- the queue -----------------------------------------------------------------------------------------------------


def next_image(session: Session, user: User, strategy: str, lock_seconds: int, share: float,
               now: Optional[datetime] = None, rng: Optional[random.Random] = None) -> QueueItem:
    """Lease the next image to `user`, in this order:

    1. the image the caller already holds (or owns after a rejection) — its lease is renewed;
    2. the caller's open agreement copy;
    3. an agreement copy of someone else's finished image (the configured share of images);
    4. the pool (new / in-progress, not flagged, lease free) in the order of `strategy`.
    Raises NotFound("queue_empty") when nothing is left. The caller commits.
    """
    if strategy not in STRATEGIES:
        raise Invalid("invalid_strategy", f"strategy must be one of {', '.join(STRATEGIES)}")
    now = now or utcnow()
    expires = now + timedelta(seconds=lock_seconds)

    item = _own_image(session, user, strategy, expires, now)
    if item is None:
        copy_of = resume_copy(session, user, expires)
        if copy_of is None:
            copy_of = start_copy(session, user, expires, now)
        if copy_of is not None:
            item = QueueItem(copy_of, None, AGREEMENT_REASON, {}, iso(expires), "agreement", "agreement")
    if item is None:
        item = _from_pool(session, user, strategy, expires, now, share, rng or random)
    if item is None:
        raise NotFound(
            "queue_empty",
            "No image is waiting: every image is labelled, flagged, submitted or leased to someone else. "
            "Import more photos (manage.py import DIR or POST /api/v1/images) or come back when leases expire.",
        )
    return item


def _own_image(session, user, strategy, expires, now) -> Optional[QueueItem]:
    row = session.execute(
        select(Image.id, Image.status)
        .where(Image.assignee_id == user.id, Image.status.in_(HELD_STATUSES))
        .order_by((Image.status == "rejected").desc(), Image.lock_expires_at.desc().nulls_last(), Image.id)  # rework first
        .limit(1)
    ).first()
    if row is None or not _claim(session, row.id, user.id, expires, now):
        return None
    score, parts = _score_of(session, row.id, strategy)
    if row.status == "rejected":
        review = latest_review(session, row.id)
        comment = review.comment if review is not None else ""
        reviewer = session.get(User, review.reviewer_id) if review is not None and review.reviewer_id else None
        who = f" by {reviewer.username}" if reviewer is not None else ""
        return QueueItem(row.id, score, f"Rejected{who}; please fix it: {comment}".rstrip(": "), parts,
                         iso(expires), strategy, "rework", comment)
    return QueueItem(row.id, score, "You are already working on this image; its lease was renewed.", parts,
                     iso(expires), strategy, "annotate")


AGREEMENT_REASON = ("Second, independent annotation to measure agreement between annotators: label it as you would "
                    "any image; the first annotation stays hidden and yours is kept apart from it.")


def _candidates(session, strategy: str, now: datetime, tried: set[int], rng, limit: int) -> tuple[list, str]:
    """Up to `limit` free pool images in the strategy's order: rows of (id, sha256, status, flags,
    score, parts). Returns the rows and the strategy that produced them (the fallback when the first has none)."""
    base = select(Image.id, Image.sha256, Image.status, Image.flags)
    not_tried = Image.id.not_in(tried) if tried else True
    lock = {"skip_locked": True, "of": Image}
    if strategy in ("uncertainty", "diversity"):
        stmt = (
            base.add_columns(ImageScore.score, ImageScore.parts)
            .join(ImageScore, and_(ImageScore.image_id == Image.id, ImageScore.strategy == strategy))
            .where(_pool_filter(now), not_tried)
            .order_by(ImageScore.score.desc(), Image.id)
            .limit(limit)
            .with_for_update(**lock)
        )
        return session.execute(stmt).all(), strategy
    if strategy == "random":
        # Two scalar subqueries: SQLite answers a lone min() or max() from the index, but not both in one SELECT.
        bounds = session.execute(select(select(func.min(Image.id)).scalar_subquery(),
                                        select(func.max(Image.id)).scalar_subquery())).first()
        if bounds is None or bounds[0] is None:
            return [], strategy
        pivot = rng.randint(bounds[0], bounds[1])
        rows = []
        for cond, order in ((Image.id >= pivot, Image.id.asc()), (Image.id < pivot, Image.id.asc())):
            stmt = base.where(_pool_filter(now), not_tried, cond).order_by(order).limit(limit)
            rows = session.execute(stmt.with_for_update(**lock)).all()
            if rows:
                break
        return [tuple(r) + (None, None) for r in rows], strategy
    stmt = (
        base.where(_pool_filter(now), not_tried)
        .order_by(Image.created_at, Image.id)
        .limit(limit)
        .with_for_update(**lock)
    )
    return [tuple(r) + (None, None) for r in session.execute(stmt).all()], "oldest"


_REASONS = {
    "uncertainty": "The current models are unsure about this image (score {score:.2f}{detail}); labelling it teaches "
                   "them the most.",
    "diversity": "Picked for diversity among the most uncertain images: far, in the encoder's embedding space, from "
                 "the images handed out before it (score {score:.2f}{detail}).",
    "random": "A random unlabelled image.",
    "oldest": "The oldest unlabelled image.",
}
_FALLBACK = {
    "uncertainty": "No uncertainty score is waiting (no current model, or the scores job has not run since the "
                   "last training: POST /api/v1/queue/scores): ",
    "diversity": "No diversity ranking is waiting (no current model, or the scores job has not run since the last "
                 "training: POST /api/v1/queue/scores): ",
}


def _detail(strategy: str, parts: dict) -> str:
    keys = {"uncertainty": ("segmentation", "classification", "roi_entropy", "uncertain_share"),
            "diversity": ("rank", "uncertainty", "distance")}[strategy]
    shown = [f"{k} {parts[k]:.2f}" if isinstance(parts.get(k), float) else f"{k} {parts[k]}"
             for k in keys if parts.get(k) is not None]
    return ": " + ", ".join(shown) if shown else ""


def _from_pool(session, user, strategy, expires, now, share, rng) -> Optional[QueueItem]:
    order = {"uncertainty": ["uncertainty", "oldest"], "diversity": ["diversity", "uncertainty", "oldest"],
             "random": ["random"], "oldest": ["oldest"]}[strategy]
    per_round, rounds = batching(session)
    for used in order:
        tried: set[int] = set()
        for _round in range(rounds):
            rows, used_strategy = _candidates(session, used, now, tried, rng, per_round)
            if not rows:
                break
            for image_id, sha256, status, flags, score, parts in rows:
                tried.add(image_id)
                if _is_flagged(flags) or not _claim(session, image_id, user.id, expires, now):
                    continue
                _record_primary(session, image_id, user.id, now)
                if status == "new" and selected_for_agreement(sha256, share):
                    session.execute(
                        update(Image).where(Image.id == image_id).values(needs_second_annotator=True)
                        .execution_options(synchronize_session=False)
                    )
                parts = dict(parts or {})
                reason = _REASONS[used_strategy].format(
                    score=score or 0.0, detail=_detail(used_strategy, parts) if used_strategy in _FALLBACK else "")
                if used_strategy != strategy:
                    reason = _FALLBACK.get(strategy, "") + reason[0].lower() + reason[1:]
                if status == "rejected":  # its annotator is gone: whoever comes next fixes it
                    review = latest_review(session, image_id)
                    comment = review.comment if review is not None else ""
                    return QueueItem(image_id, score, f"Rejected in review and its annotator is gone; please fix "
                                     f"it: {comment}".rstrip(": "), parts, iso(expires), used_strategy, "rework",
                                     comment)
                return QueueItem(image_id, score, reason, parts, iso(expires), used_strategy, "annotate")
    return None


def heartbeat(session: Session, image_id: int, user: User, lock_seconds: int,
              now: Optional[datetime] = None) -> dict:
    """Extend the caller's lease on an image (its own lease, or its agreement copy)."""
    now = now or utcnow()
    expires = now + timedelta(seconds=lock_seconds)
    copy = open_copy(session, image_id, user.id)
    if copy is not None:
        copy.lock_expires_at = expires
        return {"image_id": image_id, "kind": "agreement", "lease_expires_at": iso(expires)}
    image = session.get(Image, image_id)
    if image is None:
        raise not_found("image")
    if image.assignee_id != user.id or image.status not in HELD_STATUSES:
        raise Conflict("lease_lost", "You do not hold this image any more (the lease ran out and someone else "
                       "took it, or it was submitted); ask the queue for the next image.", {"status": image.status})
    if not _claim(session, image_id, user.id, expires, now):
        raise Conflict("lease_lost", "The lease could not be extended; ask the queue for the next image.")
    return {"image_id": image_id, "kind": "rework" if image.status == "rejected" else "annotate",
            "lease_expires_at": iso(expires)}


def release(session: Session, image_id: int, user: User) -> dict:
    """Give the image back to the pool (a rejected image stays with its annotator; an agreement copy is dropped)."""
    copy = open_copy(session, image_id, user.id)
    if copy is not None:
        session.delete(copy)
        session.execute(update(Image).where(Image.id == image_id).values(needs_second_annotator=True)
                        .execution_options(synchronize_session=False))
        return {"image_id": image_id, "released": True, "kind": "agreement"}
    image = session.get(Image, image_id)
    if image is None:
        raise not_found("image")
    if image.assignee_id != user.id:
        raise Conflict("not_leased", "You do not hold a lease on this image.")
    if image.status == "rejected":
        image.lock_expires_at = None  # still theirs to fix; nobody else gets it
    else:
        image.assignee_id, image.lock_expires_at = None, None
    return {"image_id": image_id, "released": True, "kind": "rework" if image.status == "rejected" else "annotate"}


def end_lease(session: Session, image: Image) -> None:
    """For whoever changes an image's status (submit, review): the lease ends with it."""
    image.assignee_id, image.lock_expires_at = None, None



def queue_summary(session: Session, user: User, now: Optional[datetime] = None) -> dict:
    """Pool size, what is scored, and what the caller holds: for the queue panel."""
    now = now or utcnow()
    pool = session.scalar(select(func.count()).select_from(Image).where(_pool_filter(now)))
    leased = session.scalar(
        select(func.count()).select_from(Image).where(Image.status.in_(HELD_STATUSES),
                                                      Image.assignee_id.is_not(None), Image.lock_expires_at >= now)
    )
    scored = dict(session.execute(select(ImageScore.strategy, func.count()).group_by(ImageScore.strategy)).all())
    updated = session.scalar(select(func.max(ImageScore.updated_at)))
    mine = session.execute(
        select(Image.id, Image.status, Image.lock_expires_at).where(
            Image.assignee_id == user.id, Image.status.in_(HELD_STATUSES))
    ).all()
    copies = session.execute(
        select(Assignment.image_id, Assignment.lock_expires_at).where(
            Assignment.user_id == user.id, Assignment.kind == "agreement", Assignment.completed_at.is_(None))
    ).all()
    return {
        "pool": pool,
        "leased": leased,
        "awaiting_second_annotator": session.scalar(
            select(func.count()).select_from(Image).where(Image.needs_second_annotator.is_(True),
                                                          Image.status.in_(DONE_STATUSES))),
        "scored": {s: scored.get(s, 0) for s in ("uncertainty", "diversity")},
        "scores_updated_at": iso(updated),
        "mine": [{"image_id": r.id, "kind": "rework" if r.status == "rejected" else "annotate",
                  "lease_expires_at": iso(r.lock_expires_at)} for r in mine]
                + [{"image_id": r.image_id, "kind": "agreement", "lease_expires_at": iso(r.lock_expires_at)}
                   for r in copies],
    }

