"""Pydantic models shared by several resources."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Request bodies: unknown fields refused, no string→number coercion, no NaN/Infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class QueryModel(BaseModel):
    """Query strings arrive as text, so numbers are coerced from strings here (and only here)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OkResponse(BaseModel):
    ok: bool = True
