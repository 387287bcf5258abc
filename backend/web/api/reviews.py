"""/api/v1 reviews: reviewers accept or reject submitted images; everyone sees an image's review history.

    GET  /reviews/queue                    (reviewer) submitted images, the longest-waiting first
    POST /images/<id>/review               (reviewer) {"decision": "accept"|"reject", "comment"}
    GET  /images/<id>/reviews              the image's reviews, newest first (the editor shows the comment)

Accepting freezes the image (only reviewers and admins may still change it, and those saves are recorded as
revisions); rejecting needs a comment and sends the image back to its annotator's queue.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from flask import Blueprint, g
from pydantic import BaseModel, Field

from backend.core.workflow import review
from backend.core.errors import not_found
from backend.db.extensions import db
from backend.db.models import Image
from backend.web.api.schemas import QueryModel, StrictModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("reviews", __name__, url_prefix="/api/v1")


class ReviewQueueQuery(QueryModel):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(50, ge=1, le=200)


class ReviewQueueOut(BaseModel):
    items: list[dict[str, Any]]
    total: int


class ReviewIn(StrictModel):
    decision: Literal["accept", "reject"]
    comment: str = Field("", max_length=5000, description="required when rejecting: what the annotator should fix")


class ReviewOut(BaseModel):
    id: int
    image_id: int
    decision: str
    comment: str
    reviewer: Optional[dict[str, Any]]
    annotation_version: int
    created_at: Optional[str]
    status: Optional[str] = None
    annotator_id: Optional[int] = None


class ReviewList(BaseModel):
    items: list[ReviewOut]


@bp.get("/reviews/queue")
@endpoint("Submitted images waiting for review, the longest-waiting first", query=ReviewQueueQuery,
          response=ReviewQueueOut)
def review_queue(query: ReviewQueueQuery):
    return review.review_queue(db.session, query.page, query.per_page)


@bp.post("/images/<int:image_id>/review")
@endpoint("Accept or reject a submitted image", body=ReviewIn, response=ReviewOut, status=201,
          errors=(409,), description="Only submitted images (409 otherwise, also when another reviewer was "
          "first). A rejection needs a comment (422) and returns the image to its annotator; an acceptance "
          "freezes it. Reviewers cannot review their own annotation (403); admins can.")
def review_image(image_id: int, body: ReviewIn):
    try:
        out = review.review_image(db.session, image_id, g.user, body.decision, body.comment)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return out


@bp.get("/images/<int:image_id>/reviews")
@endpoint("Review history of an image, newest first", response=ReviewList)
def image_reviews(image_id: int):
    if db.session.get(Image, image_id) is None:
        raise not_found("image")
    return {"items": review.image_reviews(db.session, image_id)}
