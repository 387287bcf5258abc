"""The review state machine: a reviewer accepts a submitted image or rejects it with a comment (back to its
annotator); who gets the credit for an image."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from backend.core.errors import Conflict, Forbidden, Invalid, not_found
from backend.core.workflow import iso
from backend.db.models import AnnotationRevision, Assignment, Image, ImageScore, Review, User, empty_document, utcnow


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


def latest_review(session: Session, image_id: int) -> Optional[Review]:
    return session.scalar(
        select(Review).where(Review.image_id == image_id).order_by(Review.created_at.desc(), Review.id.desc()).limit(1)
    )


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
        raise not_found("image")
    if decision == "reject" and not comment:
        raise Invalid("comment_required", "Say what to fix: a rejection needs a comment for the annotator.")
    annotator = primary_annotator(session, image_id)
    if not reviewer.has_role("admin") and (annotator == reviewer.id or wrote_revision(session, image_id, reviewer.id)):
        raise Forbidden("own_work", "You wrote a revision of this image; another reviewer has to review it.")
    if image.status != "submitted":
        raise Conflict("not_submitted", f"Only submitted images can be reviewed; this one is {image.status}.",
                       {"status": image.status})
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
        raise Conflict("not_submitted", "Another reviewer decided on this image a moment ago.")
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

