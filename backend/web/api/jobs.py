"""/api/v1/jobs: progress of background jobs, cancellation."""
from __future__ import annotations

from typing import Any, Literal, Optional

from flask import Blueprint, g
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from backend.core.errors import not_found
from backend.db.extensions import db
from backend.jobs.executor import job_dict
from backend.db.models import Job, User
from backend.web.api.schemas import QueryModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")


class JobOut(BaseModel):
    id: str
    kind: str
    status: str
    progress: int
    total: Optional[int]
    message: str
    error: Optional[str]
    result: Optional[dict[str, Any]]
    params: dict[str, Any]
    created_at: Optional[str]
    started_at: Optional[str]
    finished_at: Optional[str]
    created_by: Optional[int] = Field(None, description="the user who started the job")
    created_by_name: Optional[str] = Field(None, description="their user name (null for system jobs)")


class JobList(BaseModel):
    items: list[JobOut]
    total: int


class JobQuery(QueryModel):
    status: Optional[Literal["queued", "running", "succeeded", "failed", "cancelled"]] = None
    kind: Optional[str] = Field(None, pattern=r"^[a-z_]{1,32}$", description="export, import, train, prefill, ...")
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(50, ge=1, le=200)


def _with_names(jobs: list[Job]) -> list[dict]:
    """job_dict plus who started each job (one query for all their names)."""
    ids = {j.created_by for j in jobs if j.created_by is not None}
    names = dict(db.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()) if ids else {}
    return [{**job_dict(j), "created_by": j.created_by, "created_by_name": names.get(j.created_by)} for j in jobs]


def _visible_job(job_id: str) -> Job:
    job = db.session.get(Job, job_id)
    # Jobs are visible to whoever started them and to admins; others get a 404, not a hint that it exists.
    if job is None or (job.created_by != g.user.id and not g.user.has_role("admin")):
        raise not_found("job")
    return job


@bp.get("/jobs/<job_id>")
@endpoint("Status and progress of a background job", response=JobOut)
def get_job(job_id: str):
    return _with_names([_visible_job(job_id)])[0]


@bp.post("/jobs/<job_id>/cancel")
@endpoint("Ask a queued or running job to stop", response=JobOut, status=202)
def cancel_job(job_id: str):
    job = _visible_job(job_id)
    if job.status in ("queued", "running"):
        job.cancel_requested = True
        if job.status == "queued":
            job.status = "cancelled"
        db.session.commit()
    return _with_names([job])[0]


@bp.get("/jobs")
@endpoint("Background jobs, newest first (admins see all, others their own)", query=JobQuery, response=JobList)
def list_jobs(query: JobQuery):
    stmt = select(Job)
    if not g.user.has_role("admin"):
        stmt = stmt.where(Job.created_by == g.user.id)
    if query.status:
        stmt = stmt.where(Job.status == query.status)
    if query.kind:
        stmt = stmt.where(Job.kind == query.kind)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.order_by(Job.created_at.desc()).limit(query.per_page).offset((query.page - 1) * query.per_page))
    return {"items": _with_names(list(rows)), "total": total}
