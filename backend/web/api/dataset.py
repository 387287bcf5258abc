"""/api/v1/dataset: the ML console's view of the data (backend/core/dataset_stats.py) and bulk curation.

    GET  /dataset/overview        counts by status, style (images and regions), flag; concentration histogram with
                                  the low-concentration threshold; queue depth
    GET  /dataset/concentration   images by predicted concentration (lowest first) or flagged first, paged
    POST /dataset/bulk            flag images as bad training examples / not tattoos, or send them back to the queue
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from flask import Blueprint, current_app, g
from pydantic import BaseModel, Field
from sqlalchemy import select

from backend.core import dataset_stats
from backend.core.annotations import current_document, save_document
from backend.core.errors import Conflict
from backend.db.extensions import db
from backend.db.models import Image
from backend.core.workflow.queue import end_lease
from backend.web.api.images import KEY_PATTERN
from backend.web.api.schemas import DbId, QueryModel, StrictModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("dataset", __name__, url_prefix="/api/v1")

BULK_FLAGS = {"bad_example": "bad_example", "not_tattoo": "not_tattoo"}


class OverviewOut(BaseModel):
    images: dict[str, Any]
    styles: dict[str, Any] = Field(description="images and regions per style")
    flags: dict[str, int]
    regions: int
    concentration: dict[str, Any] = Field(description="histogram: bins (edges), counts, threshold, below_threshold")
    queue: dict[str, int]


class GalleryQuery(QueryModel):
    order: Literal["concentration", "flag"] = "concentration"
    below: Optional[float] = Field(None, ge=0, le=1, description="only images whose concentration is under this")
    flag: Optional[str] = Field(None, pattern=KEY_PATTERN, description="only images with this flag")
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(60, ge=1, le=200)


class GalleryItem(BaseModel):
    id: int
    status: str
    flags: list[str]
    styles: list[str]
    width: int
    height: int
    original_filename: str
    concentration: Optional[float]
    thumb_url: str


class GalleryOut(BaseModel):
    items: list[GalleryItem]
    total: int
    page: int
    per_page: int
    threshold: float


class BulkIn(StrictModel):
    image_ids: list[DbId] = Field(min_length=1, max_length=500)
    action: Literal["bad_example", "not_tattoo", "requeue"] = Field(
        description="bad_example / not_tattoo: add that flag (a new annotation version, so nothing is lost); "
                    "requeue: status back to new, lease cleared")


class BulkOut(BaseModel):
    action: str
    changed: list[int]
    unchanged: list[int]
    missing: list[int]


def _threshold() -> float:
    return float(current_app.config.get("LOW_CONCENTRATION", 0.25))


@bp.get("/dataset/overview")
@endpoint("The dataset at a glance: counts by status, style and flag, the concentration histogram, queue depth",
          response=OverviewOut, tags=["dataset"])
def overview():
    return dataset_stats.dataset_overview(db.session, _threshold())


@bp.get("/dataset/concentration")
@endpoint("Images by predicted tattoo concentration, lowest first (or flagged first), for curation",
          query=GalleryQuery, response=GalleryOut, tags=["dataset"])
def concentration_gallery(query: GalleryQuery):
    page = dataset_stats.concentration_page(db.session, query.below, query.flag, query.order, query.page,
                                            query.per_page)
    return {**page, "threshold": _threshold()}


@bp.post("/dataset/bulk")
@endpoint("Flag many images at once (bad training example / not a tattoo) or send them back to the queue",
          body=BulkIn, response=BulkOut, tags=["dataset"])
def bulk(body: BulkIn):
    ids = sorted(set(body.image_ids))
    found = set(db.session.scalars(select(Image.id).where(Image.id.in_(ids))))
    changed, unchanged = [], []
    for image_id in (i for i in ids if i in found):
        if body.action == "requeue":
            image = db.session.get(Image, image_id)
            if image.status == "new" and image.assignee_id is None:
                unchanged.append(image_id)
                continue
            image.status = "new"
            end_lease(db.session, image)
            db.session.commit()
            changed.append(image_id)
            continue
        flag = BULK_FLAGS[body.action]
        doc = current_document(image_id)
        tags = doc.get("tags") or {}
        if flag in (tags.get("flags") or []):
            unchanged.append(image_id)
            continue
        try:
            save_document(image_id, g.user, doc["version"], doc.get("regions") or [],
                          {**tags, "flags": [*(tags.get("flags") or []), flag]}, allow_frozen=True)
        except Conflict:  # saved by someone meanwhile: leave that image for a second try
            unchanged.append(image_id)
            continue
        changed.append(image_id)
    return {"action": body.action, "changed": changed, "unchanged": unchanged,
            "missing": [i for i in ids if i not in found]}
