"""/api/v1 what a reviewer needs beside the image (issue 19): who annotated it, when, for how long; the submit-time
checks the annotator overrode and why; the document at the last rejection and the pre-fill, for a diff overlay.

    POST /images/<id>/submit-checks    {"overrides": [{"check", "count", "reason"}]}  before submitting
    POST /images/<id>/region-comments  {"region_id", "text"}  a comment pinned to one region
    GET  /images/<id>/review-info      annotators, times, overrides, region comments, previous (at the last
                                       rejection), prefill
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from flask import Blueprint, g
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from backend.core.document_checks import REGION_ID_PATTERN
from backend.core.errors import not_found
from backend.web.errors import APIError
from backend.db.extensions import db
from backend.db.models import Annotation, AnnotationRevision, Image, RegionComment, Review, SubmitNote, User
from backend.web.api.images import _iso
from backend.web.api.schemas import StrictModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("review_info", __name__, url_prefix="/api/v1")

CHECKS = ("flag_with_regions", "unstyled_regions", "unanswered_suggestions")


class Override(StrictModel):
    check: Literal[CHECKS] = Field(description="flag_with_regions | unstyled_regions | unanswered_suggestions")
    count: int = Field(0, ge=0, le=1_000_000, description="how many regions (or flags) the check found")
    reason: str = Field(min_length=3, max_length=1000, description="why it is right as it is (the reviewer reads it)")


class SubmitChecksIn(StrictModel):
    overrides: list[Override] = Field(min_length=1, max_length=len(CHECKS))


class SubmitNoteOut(BaseModel):
    id: int
    author: Optional[str]
    annotation_version: int
    overrides: list[dict[str, Any]]
    created_at: Optional[str]


class RegionCommentIn(StrictModel):
    region_id: str = Field(pattern=REGION_ID_PATTERN,
                           description="the id of a region of the image's current document")
    text: str = Field(min_length=1, max_length=2000)


class RegionCommentOut(BaseModel):
    id: int
    region_id: str
    author: Optional[str]
    text: str
    annotation_version: int
    created_at: Optional[str]


class ReviewInfoOut(BaseModel):
    image_id: int
    status: str
    annotators: list[str] = Field(description="everyone who saved the document, first editor first")
    time_spent_ms: int = Field(description="active editing time over all saves")
    saves: int
    first_saved_at: Optional[str]
    last_saved_at: Optional[str]
    status_since: Optional[str]
    note: Optional[SubmitNoteOut] = Field(description="the latest overridden submit checks, if any")
    comments: list[RegionCommentOut] = Field(description="comments pinned to regions, oldest first")
    previous: Optional[dict[str, Any]] = Field(
        description="the document at the last rejection: {version, regions, comment, reviewer, reviewed_at}")
    prefill: Optional[dict[str, Any]] = Field(description="the cached pre-fill of the current models: {regions}")


def _image(image_id: int) -> Image:
    image = db.session.get(Image, image_id)
    if image is None:
        raise not_found("image")
    return image


def _note_dict(note: SubmitNote, names: dict[int, str]) -> dict:
    return {"id": note.id, "author": names.get(note.author_id), "annotation_version": note.annotation_version,
            "overrides": list(note.overrides or []), "created_at": _iso(note.created_at)}


@bp.post("/images/<int:image_id>/submit-checks")
@endpoint("Record the submit-time checks the annotator overrode, with reasons, before submitting",
          body=SubmitChecksIn, response=SubmitNoteOut, status=201, tags=["reviews"])
def record_submit_checks(image_id: int, body: SubmitChecksIn):
    _image(image_id)
    version = db.session.scalar(select(Annotation.version).where(Annotation.image_id == image_id)) or 0
    note = SubmitNote(image_id=image_id, author_id=g.user.id, annotation_version=version,
                      overrides=[o.model_dump() for o in body.overrides])
    db.session.add(note)
    db.session.commit()
    return _note_dict(note, {g.user.id: g.user.username})


def _comment_dict(c: RegionComment, names: dict[int, str]) -> dict:
    return {"id": c.id, "region_id": c.region_id, "author": names.get(c.author_id), "text": c.text,
            "annotation_version": c.annotation_version, "created_at": _iso(c.created_at)}


@bp.post("/images/<int:image_id>/region-comments")
@endpoint("Pin a comment to one region of the image (what to fix there); 422 for a region the document lacks",
          body=RegionCommentIn, response=RegionCommentOut, status=201, tags=["reviews"])
def add_region_comment(image_id: int, body: RegionCommentIn):
    from backend.core.annotations import current_document

    document = current_document(image_id)  # 404 for an unknown image
    if body.region_id not in {r.get("id") for r in document.get("regions", [])}:
        raise APIError(422, "unknown_region", f"the image's current document has no region {body.region_id!r}; "
                                              "save the region first, then comment on it")
    comment = RegionComment(image_id=image_id, region_id=body.region_id, author_id=g.user.id, text=body.text.strip(),
                            annotation_version=document.get("version", 0))
    db.session.add(comment)
    db.session.commit()
    return _comment_dict(comment, {g.user.id: g.user.username})


@bp.get("/images/<int:image_id>/review-info")
@endpoint("Who annotated an image, when and for how long; overridden checks; the document at the last rejection "
          "and the pre-fill (for a diff overlay)", response=ReviewInfoOut, tags=["reviews"])
def review_info(image_id: int):
    from backend.jobs.predictions import cached_prediction

    image = _image(image_id)
    revisions = db.session.execute(
        select(AnnotationRevision.author_id, func.sum(AnnotationRevision.time_spent_ms), func.count(),
               func.min(AnnotationRevision.created_at), func.max(AnnotationRevision.created_at))
        .where(AnnotationRevision.image_id == image_id).group_by(AnnotationRevision.author_id)
        .order_by(func.min(AnnotationRevision.created_at))).all()
    note = db.session.scalar(select(SubmitNote).where(SubmitNote.image_id == image_id)
                             .order_by(SubmitNote.id.desc()).limit(1))
    comments = db.session.scalars(select(RegionComment).where(RegionComment.image_id == image_id)
                                  .order_by(RegionComment.id)).all()
    rejection = db.session.scalar(select(Review).where(Review.image_id == image_id, Review.decision == "reject")
                                  .order_by(Review.id.desc()).limit(1))
    user_ids = ({r[0] for r in revisions} | {note.author_id if note else None}
                | {rejection.reviewer_id if rejection else None} | {c.author_id for c in comments})
    names = dict(db.session.execute(select(User.id, User.username).where(User.id.in_(user_ids - {None})))
                 .tuples().all())
    previous = None
    if rejection is not None:
        doc = db.session.scalar(select(AnnotationRevision.document).where(
            AnnotationRevision.image_id == image_id, AnnotationRevision.version == rejection.annotation_version))
        previous = {"version": rejection.annotation_version, "regions": (doc or {}).get("regions", []),
                    "comment": rejection.comment, "reviewer": names.get(rejection.reviewer_id),
                    "reviewed_at": _iso(rejection.created_at)}
    prediction = cached_prediction(image_id)
    return {
        "image_id": image_id,
        "status": image.status,
        "annotators": [names[r[0]] for r in revisions if r[0] in names],
        "time_spent_ms": int(sum(r[1] or 0 for r in revisions)),
        "saves": int(sum(r[2] for r in revisions)),
        "first_saved_at": _iso(min((r[3] for r in revisions), default=None)),
        "last_saved_at": _iso(max((r[4] for r in revisions), default=None)),
        "status_since": _iso(image.updated_at),
        "note": _note_dict(note, names) if note is not None else None,
        "comments": [_comment_dict(c, names) for c in comments],
        "previous": previous,
        "prefill": {"regions": prediction["regions"]} if prediction else None,
    }
