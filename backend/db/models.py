"""The data model, on plain SQLAlchemy 2 (no Flask imports: scripts, workers and benchmarks use it directly).

Flask-SQLAlchemy is given `Base` as its model class, so `db.session` works with these classes unchanged.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship

JSONType = JSON().with_variant(JSONB(), "postgresql")

ROLES = ("annotator", "reviewer", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
IMAGE_STATUSES = ("new", "in_progress", "submitted", "accepted", "rejected")
REGION_SOURCES = ("human", "model", "assist")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
MODEL_KINDS = ("segmenter", "classifier")


def role_allows(held: str, needed: str) -> bool:
    """Roles are ranked: a reviewer may do what an annotator may, an admin what a reviewer may."""
    return ROLE_RANK[held] >= ROLE_RANK[needed]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_uuid() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    registry = registry(type_annotation_map={dict[str, Any]: JSONType, list[Any]: JSONType})


def empty_document() -> dict:
    return {"regions": [], "tags": {"styles": [], "flags": []}}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="annotator")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def has_role(self, role: str) -> bool:
        return role_allows(self.role, role)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to tell tokens apart in listings
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class AuthSession(Base):
    """A browser login. The cookie holds only the random id; logout revokes the row."""

    __tablename__ = "auth_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the random session key
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class LoginFailure(Base):
    """A failed login, kept for the rate limit (backend/web/auth.py): counted per user name and per client address
    over a sliding window, so every gunicorn worker and host sees the same count. Old rows are pruned."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)  # lower-cased, as typed (may not exist)
    address: Mapped[str] = mapped_column(String(64), index=True)  # client IP (request.remote_addr)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Image(Base):
    __tablename__ = "images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)  # after EXIF transpose
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(8))  # jpeg | png | webp, of the stored original
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    original_filename: Mapped[str] = mapped_column(String(255), default="")  # display only, never a path
    source: Mapped[str] = mapped_column(String(32), default="upload")  # upload | import | synthetic | ...
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    flags: Mapped[list[Any]] = mapped_column(default=list)  # denormalised from the document's tags
    styles: Mapped[list[Any]] = mapped_column(default=list)  # image-level styles plus region styles
    phash: Mapped[Optional[str]] = mapped_column(String(16))  # perceptual hash, hex, for leak-free splits
    assignee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    lock_expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    # Chosen for a second, independent annotation (agreement); cleared when a second annotator claims it.
    needs_second_annotator: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    uploaded_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    annotation: Mapped["Annotation"] = relationship(back_populates="image", uselist=False)

    __table_args__ = (Index("ix_images_status_id", "status", "id"),)


class ImageTag(Base):
    """One row per entry of Image.styles (kind "style") and Image.flags (kind "flag"), so the image list can filter
    by style or flag through an index on SQLite and PostgreSQL alike. Kept in sync by backend.core.tags: automatically
    on every ORM flush that changes Image.styles or Image.flags; write_image_tags / sync_image_tags after Core
    UPDATEs; rebuild_image_tags after bulk inserts."""

    __tablename__ = "image_tags"
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # style | flag
    key: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_image_tags_kind_key_image", "kind", "key", "image_id"),)


class Annotation(Base):
    """The current annotation document of an image; `version` grows by one on every save."""

    __tablename__ = "annotations"
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    document: Mapped[dict[str, Any]] = mapped_column(default=empty_document)
    updated_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    image: Mapped[Image] = relationship(back_populates="annotation")


class AnnotationRevision(Base):
    __tablename__ = "annotation_revisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column()
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    time_spent_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("image_id", "version", name="uq_revision_image_version"),)


class Region(Base):
    """A region of the current document, denormalised for queries and exports."""

    __tablename__ = "regions"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(String(64), index=True)  # client-chosen uuid, unique per image
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    geometry: Mapped[dict[str, Any]] = mapped_column()
    style: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    motifs: Mapped[list[Any]] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(String(16), default="human")
    kind: Mapped[str] = mapped_column(String(8), default="mask", server_default="mask")  # mask | box
    model_version_id: Mapped[Optional[int]] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    area: Mapped[float] = mapped_column(Float, default=0.0)
    bbox: Mapped[list[Any]] = mapped_column(default=list)  # [x0, y0, x1, y1]

    __table_args__ = (UniqueConstraint("image_id", "id", name="uq_region_image_id"),)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # segmenter | classifier
    name: Mapped[str] = mapped_column(String(128))
    architecture: Mapped[dict[str, Any]] = mapped_column(default=dict)
    weights_path: Mapped[str] = mapped_column(String(512))  # relative to the workspace models/ folder
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    export_id: Mapped[Optional[str]] = mapped_column(String(64))
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Prediction(Base):
    """Model output cached per image and pair of model versions."""

    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    segmenter_id: Mapped[Optional[int]] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    classifier_id: Mapped[Optional[int]] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    regions: Mapped[list[Any]] = mapped_column(default=list)
    style_probs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    concentration: Mapped[Optional[float]] = mapped_column(Float)
    uncertainty: Mapped[dict[str, Any]] = mapped_column(default=dict)
    embedding: Mapped[Optional[list[Any]]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("image_id", "segmenter_id", "classifier_id", name="uq_prediction_models"),)


class ImageScore(Base):
    """Active-learning priority of an unlabelled image, precomputed so queue/next is an index lookup."""

    __tablename__ = "image_scores"
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(16), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    parts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_version_id: Mapped[Optional[int]] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_image_scores_strategy_score", "strategy", "score"),)


class Export(Base):
    __tablename__ = "exports"
    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_uuid)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manifest: Mapped[Optional[dict[str, Any]]] = mapped_column()
    path: Mapped[Optional[str]] = mapped_column(String(512))  # relative to the workspace exports/ folder
    size_bytes: Mapped[Optional[int]] = mapped_column(BigInteger)
    job_id: Mapped[Optional[str]] = mapped_column(String(64))
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[Optional[int]] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(512), default="")
    error: Mapped[Optional[str]] = mapped_column(Text)
    result: Mapped[Optional[dict[str, Any]]] = mapped_column()
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # starts so far; a dead worker's job is retried
    worker: Mapped[Optional[str]] = mapped_column(String(128))
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision: Mapped[str] = mapped_column(String(16))  # accept | reject
    comment: Mapped[str] = mapped_column(Text, default="")
    annotation_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SubmitNote(Base):
    """Submit-time checks an annotator overrode, with their reasons (the reviewer sees them)."""

    __tablename__ = "submit_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    annotation_version: Mapped[int] = mapped_column(Integer, default=0)
    overrides: Mapped[list[Any]] = mapped_column(default=list)  # [{"check", "count", "reason"}]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegionComment(Base):
    """A review comment pinned to one region of an image (the region's id in the document)."""

    __tablename__ = "region_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    region_id: Mapped[str] = mapped_column(String(64))
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    annotation_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Assignment(Base):
    """Who has worked on an image (agreement pairs give one image to two annotators)."""

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="primary")  # primary | agreement
    document: Mapped[Optional[dict[str, Any]]] = mapped_column()  # the independent document of an agreement copy
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    lock_expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))  # lease of an agreement copy
    time_spent_ms: Mapped[int] = mapped_column(Integer, default=0)  # active time on an agreement copy

    # the queue looks up open agreement copies on every request
    __table_args__ = (Index("ix_assignments_kind_completed_lock", "kind", "completed_at", "lock_expires_at"),)
