"""/api/v1/queue: the active-learning queue hands out images with a lease; agreement copies of images.

    POST /queue/next?strategy=uncertainty|diversity|random|oldest   lease the next image (backend/core/workflow/queue.py)
    POST /queue/heartbeat {"image_id"}                              extend the caller's lease
    POST /queue/release   {"image_id"}                              give the image back
    GET  /queue                                                     pool size, scores, the caller's leases
    POST /queue/scores                                              (admin) recompute the scores in the background
    GET  /images/<id>/agreement, PUT /images/<id>/agreement         the caller's independent agreement copy
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from flask import Blueprint, current_app, g
from pydantic import BaseModel, Field

from backend.core.annotations import MAX_TIME_SPENT_MS, save_agreement_copy
from backend.core.workflow import agreement, queue
from backend.db.extensions import db
from backend.jobs.executor import submit_job
from backend.web.api.schemas import QueryModel, StrictModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("queue", __name__, url_prefix="/api/v1")


class NextQuery(QueryModel):
    strategy: Literal["uncertainty", "diversity", "random", "oldest"] = Field(
        "uncertainty", description="uncertainty: what the current models are least sure about; diversity: k-center "
        "greedy over encoder embeddings among the most uncertain; random; oldest")


class QueueNextOut(BaseModel):
    image_id: int
    score: Optional[float] = Field(None, description="the strategy's score (higher = more worth labelling)")
    reason: str = Field(description="why this image, for the annotator")
    parts: dict[str, Any] = Field(default_factory=dict, description="the parts the score was made of")
    lease_expires_at: Optional[str]
    strategy: str = Field(description="the strategy that chose the image (a fallback when scores are missing)")
    kind: Literal["annotate", "rework", "agreement"] = Field(
        description="annotate: the image's own document; rework: rejected in review, fix it (see comment); "
        "agreement: an independent second annotation, saved with PUT /images/<id>/agreement")
    comment: Optional[str] = Field(None, description="the reviewer's comment on a rework")


class LeaseIn(StrictModel):
    image_id: int = Field(ge=1, le=2**31 - 1)


class LeaseOut(BaseModel):
    image_id: int
    kind: str
    lease_expires_at: Optional[str]


class ReleaseOut(BaseModel):
    image_id: int
    released: bool
    kind: str


class QueueSummary(BaseModel):
    pool: int = Field(description="images waiting: new or in progress, not flagged, not leased")
    leased: int
    awaiting_second_annotator: int
    scored: dict[str, int]
    scores_updated_at: Optional[str]
    mine: list[dict[str, Any]]


class ScoresIn(StrictModel):
    top_k: int = Field(1000, ge=1, le=100_000, description="how many of the most uncertain images the diversity "
                       "ranking orders")


class JobStarted(BaseModel):
    job_id: str


class AgreementDoc(BaseModel):
    image_id: int
    version: int
    regions: list[dict[str, Any]]
    tags: dict[str, list[str]]
    completed: bool
    completed_at: Optional[str]
    time_spent_ms: int
    lease_expires_at: Optional[str]


class AgreementSave(StrictModel):
    base_version: int = Field(ge=0, description="the version you loaded (0 for a new copy)")
    regions: list[Any] = Field(description="regions as in PUT /images/<id>/annotation")
    tags: dict[str, Any] = Field(default_factory=lambda: {"styles": [], "flags": []})
    time_spent_ms: int = Field(0, ge=0, le=MAX_TIME_SPENT_MS, description="active time since the last save")
    complete: bool = Field(False, description="true when done: the copy is final and counts for agreement")


def _lock_seconds() -> int:
    return int(current_app.config["LOCK_SECONDS"])


@bp.post("/queue/next")
@endpoint("Lease the next image to annotate", query=NextQuery, response=QueueNextOut, errors=(404,), writes=True,
          description="Returns the caller's current image first (lease renewed), then their open agreement copy, "
          "then a second annotation for the agreement sample, then the pool in the strategy's order. Without "
          "precomputed scores, uncertainty and diversity fall back to the oldest image and say so in `reason`. "
          "An empty pool is a 404 with code queue_empty.")
def queue_next(query: NextQuery):
    try:
        item = queue.next_image(db.session, g.user, query.strategy, _lock_seconds(),
                                agreement.agreement_share(current_app.config))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return item.to_dict()


@bp.post("/queue/heartbeat")
@endpoint("Extend the caller's lease on an image", body=LeaseIn, response=LeaseOut, errors=(409,))
def queue_heartbeat(body: LeaseIn):
    try:
        out = queue.heartbeat(db.session, body.image_id, g.user, _lock_seconds())
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return out


@bp.post("/queue/release")
@endpoint("Give a leased image back to the queue", body=LeaseIn, response=ReleaseOut, errors=(409,))
def queue_release(body: LeaseIn):
    try:
        out = queue.release(db.session, body.image_id, g.user)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return out


@bp.get("/queue")
@endpoint("Queue overview: pool size, scored images, the caller's leases", response=QueueSummary)
def queue_overview():
    return queue.queue_summary(db.session, g.user)


@bp.post("/queue/scores")
@endpoint("Recompute the active-learning scores of the unlabelled pool (background job)", body=ScoresIn,
          response=JobStarted, status=202)
def queue_scores(body: ScoresIn):
    job = submit_job("scores", {"top_k": body.top_k}, user_id=g.user.id)
    return {"job_id": job.id}


@bp.get("/images/<int:image_id>/agreement")
@endpoint("The caller's agreement copy of an image", response=AgreementDoc, writes=True)
def get_agreement(image_id: int):
    return agreement.copy_document(agreement.agreement_copy(db.session, image_id, g.user))


@bp.put("/images/<int:image_id>/agreement")
@endpoint("Save the caller's agreement copy (never the image's own document)", body=AgreementSave,
          response=AgreementDoc, errors=(409,),
          description="Checked as PUT /images/<id>/annotation is: 409 `stale_version` with `details.current` (the "
          "copy) when `base_version` is not its version, 422 naming the region index; 409 `already_completed` "
          "once the copy is complete.")
def put_agreement(image_id: int, body: AgreementSave):
    return save_agreement_copy(image_id, g.user, body.base_version, body.regions, body.tags, body.time_spent_ms,
                               body.complete, _lock_seconds())
