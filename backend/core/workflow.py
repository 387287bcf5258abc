"""The annotation workflow: queue leases, the review state machine and agreement copies.

Plain SQLAlchemy on a session the caller passes (routes pass `db.session`; scripts and benchmarks their own), no
request objects, so every rule here can be tested and benchmarked without HTTP. Statistics live in
backend/core/workflow_stats.py.

Image states and who moves them:

    new ──(annotator saves)──> in_progress ──(annotator submits)──> submitted ──(reviewer accepts)──> accepted
                                    ^                                   │
                                    └──────── rejected <──(reviewer rejects, comment required)┘

A *lease* is `Image.assignee_id` + `Image.lock_expires_at`: `next_image` hands an image to one annotator for
LOCK_SECONDS, the editor's heartbeat extends it, release ends it (and a submitted image leaves the pool). A lease is taken with one conditional
UPDATE (… WHERE the image is still free), and on PostgreSQL the candidate rows are read with FOR UPDATE SKIP
LOCKED, so two annotators never hold one image even when they ask at the same instant; SQLite serialises writers
(every transaction begins IMMEDIATE). A rejected image stays assigned to its annotator (the assignee without a
live lease means "owner") and comes back to them first; nobody else gets it.

Agreement: a configurable share of images (chosen by a hash of their content, so the choice is stable) is marked
`needs_second_annotator` when first leased. Once the first annotator has submitted it, the queue offers it to a
different annotator as an *agreement copy* (an Assignment of kind "agreement" with its own document and lease);
their saves go to `PUT /images/<id>/agreement` and never touch the image's own document.
"""
from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from backend.core.boxes import with_kinds
from backend.web.errors import APIError
from backend.db.models import (
    AnnotationRevision,
    Assignment,
    Image,
    ImageScore,
    ImageTag,
    Review,
    User,
    empty_document,
    utcnow,
)

STRATEGIES = ("uncertainty", "diversity", "random", "oldest")
POOL_STATUSES = ("new", "in_progress")  # what the queue hands out (plus a caller's own rejected images)
HELD_STATUSES = ("new", "in_progress", "rejected")  # statuses in which a lease means something
DONE_STATUSES = ("submitted", "accepted")  # the first annotation is finished: agreement copies may start
CANDIDATES_PER_ROUND = 8
CLAIM_ROUNDS = 6
DEFAULT_AGREEMENT_SHARE = 0.05


class WorkflowError(APIError):
    """A request the workflow refuses (an APIError, so a route that lets it through answers with its status)."""


def aware(value: Optional[datetime]) -> Optional[datetime]:
    """Datetimes read back from SQLite are naive UTC; make them aware."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def iso(value: Optional[datetime]) -> Optional[str]:
    value = aware(value)
    return value.isoformat() if value else None


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


# --- helpers -----------------------------------------------------------------------------------------------------


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


def credit_order():
    """ORDER BY for an image's revisions so that the credited author comes LAST: revisions by annotators after
    those by reviewers/admins (who fix or check work), each by version."""
    return (User.role == "annotator").asc(), AnnotationRevision.version.asc()


def primary_annotator(session: Session, image_id: int) -> Optional[int]:
    """Who gets the credit for an image: the author of its latest revision by an annotator, else of its latest
    revision; only an image nobody saved falls back to the queue's latest primary assignment (a lease alone is
    no work: 'A leased, B saved' credits B)."""
    author = session.scalar(
        select(AnnotationRevision.author_id)
        .join(User, User.id == AnnotationRevision.author_id)
        .where(AnnotationRevision.image_id == image_id)
        .order_by(*(c.desc() for c in (User.role == "annotator", AnnotationRevision.version)))
        .limit(1)
    )
    if author is not None:
        return author
    return session.scalar(
        select(Assignment.user_id)
        .where(Assignment.image_id == image_id, Assignment.kind == "primary")
        .order_by(Assignment.created_at.desc(), Assignment.id.desc())
        .limit(1)
    )


def wrote_revision(session: Session, image_id: int, user_id: int) -> bool:
    return session.scalar(
        select(AnnotationRevision.id)
        .where(AnnotationRevision.image_id == image_id, AnnotationRevision.author_id == user_id)
        .limit(1)
    ) is not None


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


def latest_review(session: Session, image_id: int) -> Optional[Review]:
    return session.scalar(
        select(Review).where(Review.image_id == image_id).order_by(Review.created_at.desc(), Review.id.desc()).limit(1)
    )


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
    Raises WorkflowError(404, "queue_empty") when nothing is left. The caller commits.
    """
    if strategy not in STRATEGIES:
        raise WorkflowError(422, "invalid_strategy", f"strategy must be one of {', '.join(STRATEGIES)}")
    now = now or utcnow()
    expires = now + timedelta(seconds=lock_seconds)

    item = _own_image(session, user, strategy, expires, now)
    if item is None:
        item = _own_agreement(session, user, expires, now)
    if item is None:
        item = _new_agreement(session, user, expires, now)
    if item is None:
        item = _from_pool(session, user, strategy, expires, now, share, rng or random)
    if item is None:
        raise WorkflowError(
            404,
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


def _own_agreement(session, user, expires, now) -> Optional[QueueItem]:
    row = session.scalar(
        select(Assignment)
        .where(Assignment.user_id == user.id, Assignment.kind == "agreement", Assignment.completed_at.is_(None))
        .order_by(Assignment.created_at)
        .limit(1)
    )
    if row is None:
        return None
    row.lock_expires_at = expires
    return QueueItem(row.image_id, None, AGREEMENT_REASON, {}, iso(expires), "agreement", "agreement")


def _new_agreement(session, user, expires, now) -> Optional[QueueItem]:
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
            return QueueItem(row.image_id, None, AGREEMENT_REASON, {}, iso(expires), "agreement", "agreement")

    per_round, rounds = _batching(session)
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
                return QueueItem(image_id, None, AGREEMENT_REASON, {}, iso(expires), "agreement", "agreement")
    return None


def _batching(session: Session) -> tuple[int, int]:
    """(candidates per query, rounds). PostgreSQL locks each candidate it reads (FOR UPDATE SKIP LOCKED) until the
    transaction ends, so it reads one at a time and leaves the others to concurrent callers; SQLite runs one writer
    at a time and reads a few per query."""
    if session.get_bind().dialect.name == "postgresql":
        return 1, CLAIM_ROUNDS * CANDIDATES_PER_ROUND
    return CANDIDATES_PER_ROUND, CLAIM_ROUNDS


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
    per_round, rounds = _batching(session)
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
    copy = _open_copy(session, image_id, user.id)
    if copy is not None:
        copy.lock_expires_at = expires
        return {"image_id": image_id, "kind": "agreement", "lease_expires_at": iso(expires)}
    image = session.get(Image, image_id)
    if image is None:
        raise WorkflowError(404, "not_found", "image not found")
    if image.assignee_id != user.id or image.status not in HELD_STATUSES:
        raise WorkflowError(409, "lease_lost", "You do not hold this image any more (the lease ran out and someone "
                            "else took it, or it was submitted); ask the queue for the next image.",
                            {"status": image.status})
    if not _claim(session, image_id, user.id, expires, now):
        raise WorkflowError(409, "lease_lost", "The lease could not be extended; ask the queue for the next image.")
    return {"image_id": image_id, "kind": "rework" if image.status == "rejected" else "annotate",
            "lease_expires_at": iso(expires)}


def release(session: Session, image_id: int, user: User) -> dict:
    """Give the image back to the pool (a rejected image stays with its annotator; an agreement copy is dropped)."""
    copy = _open_copy(session, image_id, user.id)
    if copy is not None:
        session.delete(copy)
        session.execute(update(Image).where(Image.id == image_id).values(needs_second_annotator=True)
                        .execution_options(synchronize_session=False))
        return {"image_id": image_id, "released": True, "kind": "agreement"}
    image = session.get(Image, image_id)
    if image is None:
        raise WorkflowError(404, "not_found", "image not found")
    if image.assignee_id != user.id:
        raise WorkflowError(409, "not_leased", "You do not hold a lease on this image.")
    if image.status == "rejected":
        image.lock_expires_at = None  # still theirs to fix; nobody else gets it
    else:
        image.assignee_id, image.lock_expires_at = None, None
    return {"image_id": image_id, "released": True, "kind": "rework" if image.status == "rejected" else "annotate"}


def end_lease(session: Session, image: Image) -> None:
    """For whoever changes an image's status (submit, review): the lease ends with it."""
    image.assignee_id, image.lock_expires_at = None, None


def _open_copy(session: Session, image_id: int, user_id: int) -> Optional[Assignment]:
    return session.scalar(
        select(Assignment).where(
            Assignment.image_id == image_id, Assignment.user_id == user_id, Assignment.kind == "agreement",
            Assignment.completed_at.is_(None),
        )
    )


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


# --- agreement copies ----------------------------------------------------------------------------------------------


def agreement_copy(session: Session, image_id: int, user: User) -> Assignment:
    """The caller's (latest) agreement copy of an image, or a 404."""
    row = session.scalar(
        select(Assignment)
        .where(Assignment.image_id == image_id, Assignment.user_id == user.id, Assignment.kind == "agreement")
        .order_by(Assignment.created_at.desc(), Assignment.id.desc())
        .limit(1)
    )
    if row is None:
        raise WorkflowError(404, "not_found", "You have no agreement copy of this image; the queue hands them out.")
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


def save_copy(session: Session, row: Assignment, base_version: int, regions: list[dict], tags: dict,
              time_spent_ms: int, complete: bool, lock_seconds: int, now: Optional[datetime] = None) -> dict:
    """Store a new version of an agreement copy (validated regions); 409 on a stale base_version or when done."""
    now = now or utcnow()
    if row.completed_at is not None:
        raise WorkflowError(409, "already_completed", "This agreement copy was completed; it can no longer change.")
    current = int((row.document or {}).get("version", 0))
    if base_version != current:
        raise WorkflowError(409, "version_conflict", f"base_version {base_version} is stale; the copy is at "
                            f"version {current}.", {"current": copy_document(row)})
    row.document = {"version": current + 1, "regions": regions, "tags": tags}
    row.time_spent_ms = (row.time_spent_ms or 0) + time_spent_ms
    row.lock_expires_at = now + timedelta(seconds=lock_seconds)
    if complete:
        row.completed_at = now
        row.lock_expires_at = None
    return copy_document(row)


# --- review ----------------------------------------------------------------------------------------------------------


def review_queue(session: Session, page: int, per_page: int) -> dict:
    """Submitted images, the longest-waiting first."""
    where = Image.status == "submitted"
    total = session.scalar(select(func.count()).select_from(Image).where(where))
    images = session.scalars(
        select(Image).where(where).order_by(Image.updated_at, Image.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    ids = [im.id for im in images]
    users = _usernames(session)
    reviews = dict(session.execute(
        select(Review.image_id, func.count()).where(Review.image_id.in_(ids)).group_by(Review.image_id)
    ).all()) if ids else {}
    items = []
    for im in images:
        annotator = primary_annotator(session, im.id)
        doc = im.annotation.document if im.annotation is not None else empty_document()
        items.append({
            "image_id": im.id,
            "width": im.width,
            "height": im.height,
            "original_filename": im.original_filename,
            "annotator": {"id": annotator, "username": users.get(annotator)} if annotator else None,
            "submitted_at": iso(im.updated_at),
            "version": im.annotation.version if im.annotation is not None else 0,
            "regions": len(doc.get("regions", [])),
            "styles": list(im.styles or []),
            "previous_reviews": reviews.get(im.id, 0),
        })
    return {"items": items, "total": total}


def review_image(session: Session, image_id: int, reviewer: User, decision: str, comment: str,
                 now: Optional[datetime] = None) -> dict:
    """Accept or reject a submitted image; race-free (a second reviewer of the same image gets a 409)."""
    now = now or utcnow()
    comment = (comment or "").strip()
    image = session.get(Image, image_id)
    if image is None:
        raise WorkflowError(404, "not_found", "image not found")
    if decision == "reject" and not comment:
        raise WorkflowError(422, "comment_required", "Say what to fix: a rejection needs a comment for the annotator.")
    annotator = primary_annotator(session, image_id)
    if not reviewer.has_role("admin") and (annotator == reviewer.id or wrote_revision(session, image_id, reviewer.id)):
        raise WorkflowError(403, "own_work", "You wrote a revision of this image; another reviewer has to review it.")
    if image.status != "submitted":
        raise WorkflowError(409, "not_submitted", f"Only submitted images can be reviewed; this one is "
                            f"{image.status}.", {"status": image.status})
    new_status = "accepted" if decision == "accept" else "rejected"
    # The owner of a rejected image is its annotator (assignee without a live lease): it comes back to them first.
    owner = annotator if decision == "reject" else None
    changed = session.execute(
        update(Image)
        .where(Image.id == image_id, Image.status == "submitted")
        .values(status=new_status, assignee_id=owner, lock_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        raise WorkflowError(409, "not_submitted", "Another reviewer decided on this image a moment ago.")
    version = image.annotation.version if image.annotation is not None else 0
    review = Review(image_id=image_id, reviewer_id=reviewer.id, decision=decision, comment=comment,
                    annotation_version=version, created_at=now)
    session.add(review)
    if annotator is not None and session.scalar(select(Assignment.id).where(
            Assignment.image_id == image_id, Assignment.user_id == annotator,
            Assignment.kind == "primary").limit(1)) is None:
        # Annotated without the queue, or by someone other than who leased it: record who did it.
        session.add(Assignment(image_id=image_id, user_id=annotator, kind="primary", created_at=now))
        session.flush()
    if decision == "accept":
        session.execute(delete(ImageScore).where(ImageScore.image_id == image_id))
        session.execute(
            update(Assignment)
            .where(Assignment.image_id == image_id, Assignment.kind == "primary", Assignment.user_id == annotator,
                   Assignment.completed_at.is_(None))
            .values(completed_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    session.refresh(image)
    return {**review_dict(review, {reviewer.id: reviewer.username}), "status": new_status,
            "annotator_id": annotator}


def review_dict(review: Review, usernames: dict[int, str]) -> dict:
    return {
        "id": review.id,
        "image_id": review.image_id,
        "decision": review.decision,
        "comment": review.comment,
        "reviewer": {"id": review.reviewer_id, "username": usernames.get(review.reviewer_id)}
        if review.reviewer_id else None,
        "annotation_version": review.annotation_version,
        "created_at": iso(review.created_at),
    }


def image_reviews(session: Session, image_id: int) -> list[dict]:
    rows = session.scalars(
        select(Review).where(Review.image_id == image_id).order_by(Review.created_at.desc(), Review.id.desc())
    ).all()
    users = _usernames(session)
    return [review_dict(r, users) for r in rows]


def _usernames(session: Session) -> dict[int, str]:
    return dict(session.execute(select(User.id, User.username)).all())
