"""/api/v1 stats: throughput, active time, agreement and pre-fill usefulness (definitions in
backend/core/workflow_stats.py), and the caller's own day for the editor's home view."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g
from pydantic import BaseModel, Field

from backend.core import workflow_stats
from backend.db.extensions import db
from backend.web.api.schemas import QueryModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("stats", __name__, url_prefix="/api/v1")


class StatsQuery(QueryModel):
    days: int = Field(30, ge=1, le=3660, description="throughput and review counts cover the last N days")
    sample: int = Field(500, ge=1, le=5000, description="agreement and pre-fill usefulness use the newest N images")


class StatsOut(BaseModel):
    generated_at: str
    window: dict[str, Any]
    images: dict[str, Any]
    throughput: dict[str, Any]
    agreement: dict[str, Any]
    prefill: dict[str, Any]


class MeQuery(QueryModel):
    tz_offset_minutes: int = Field(0, ge=-840, le=840, description="the browser's offset from UTC, so 'today' is "
                                   "the annotator's day (e.g. 120 for UTC+2)")


class MeOut(BaseModel):
    date: str
    today: dict[str, int]
    my_images: dict[str, int]
    to_fix: int


@bp.get("/stats")
@endpoint("Workflow statistics: status counts, throughput per annotator and day, agreement, pre-fill usefulness",
          query=StatsQuery, response=StatsOut)
def stats(query: StatsQuery):
    return workflow_stats.workflow_stats(db.session, days=query.days, limit=query.sample)


@bp.get("/stats/me")
@endpoint("The caller's counts for today and their images by status", query=MeQuery, response=MeOut)
def my_stats(query: MeQuery):
    return workflow_stats.my_stats(db.session, g.user, query.tz_offset_minutes)
