"""Pydantic models shared by several resources."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Database ids are 32-bit integers on PostgreSQL (SQLite: 64-bit): larger numbers are refused as input (422 in
# bodies and queries; the `int` path converter in api/__init__.py does not match them, so 404) instead of failing
# deep in the driver.
MAX_DB_INT = 2**31 - 1
DbId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]


class StrictModel(BaseModel):
    """Request bodies: unknown fields refused, no string→number coercion, no NaN/Infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class QueryModel(BaseModel):
    """Query strings arrive as text, so numbers are coerced from strings here (and only here)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OkResponse(BaseModel):
    ok: bool = True
