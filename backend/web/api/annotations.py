"""/api/v1 annotation documents: read, save (optimistic versioning), submit, history; brush/eraser geometry.

The pydantic models here type the request strictly (numbers must be JSON numbers, no NaN/Infinity, unknown fields
refused) and document it in the OpenAPI spec; the deep geometry checks (rings, clipping, repair, vertex limit) run
in backend/core/geometry.py through backend/core/annotations.py so that a failure names the region index.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Optional, Union

from flask import Blueprint, current_app, g
from pydantic import BaseModel, Field, PlainValidator, WithJsonSchema
from sqlalchemy import select

from backend.core.annotations import (
    MAX_TIME_SPENT_MS,
    current_document,
    get_revision,
    list_revisions,
    save_document,
    submit_image,
)
from backend.core.document_checks import MAX_MOTIFS, MAX_TAG_LENGTH, MAX_TAGS, REGION_ID_PATTERN
from backend.db.engine import end_read
from backend.core.errors import not_found
from backend.web.errors import APIError
from backend.db.extensions import db
from backend.core.geometry import GeometryError, area_bbox, difference_geometry, union_geometry
from backend.core.geometry_clean import clean_geometry
from backend.core.geometry_bounds import MAX_STROKE_POINTS
from backend.db.models import Image
from backend.core.write_rules import check_not_copy_holder
from backend.web.api.schemas import QueryModel, StrictModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("annotations", __name__, url_prefix="/api/v1")

# --- request models -----------------------------------------------------------------------------------------------



def _finite_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a JSON number")
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        raise ValueError("must be a finite number")
    return value


# A JSON number, strictly: "1", true, null, 1e999 are refused; ints stay ints (an unchanged polygon round-trips
# exactly, coordinate for coordinate).
Number = Annotated[Any, PlainValidator(_finite_number), WithJsonSchema({"type": "number"})]
Position = Annotated[list[Number], Field(min_length=2, max_length=2, description="[x, y] in image pixels")]
_FINITE = 1e300  # the fast check's range: NaN and infinities fail the comparison; larger numbers get the exact one


def _ring_positions(value: Any) -> list:
    """A ring's [x, y] positions checked as Position would check them, in one call per ring instead of one per
    number (a save carries hundreds of numbers: this is its hot path)."""
    if not isinstance(value, list):
        raise ValueError("must be a list of [x, y] positions")
    if len(value) < 3:
        raise ValueError(f"needs at least 3 positions (has {len(value)})")
    for k, position in enumerate(value):
        if type(position) is list and len(position) == 2:
            x, y = position
            if (type(x) is int or type(x) is float) and (type(y) is int or type(y) is float) \
                    and -_FINITE < x < _FINITE and -_FINITE < y < _FINITE:
                continue
        if not isinstance(position, list) or len(position) != 2:
            raise ValueError(f"position {k} must be an [x, y] pair")
        for number in position:  # the exact rules, for what the fast check above leaves (1e305 is fine here)
            try:
                _finite_number(number)
            except ValueError as err:
                raise ValueError(f"position {k}: {err}") from None
    return value


Ring = Annotated[list, PlainValidator(_ring_positions), WithJsonSchema({
    "type": "array", "minItems": 3, "description": "closed or open ring; at least 3 distinct points",
    "items": {"type": "array", "minItems": 2, "maxItems": 2, "description": "[x, y] in image pixels",
              "items": {"type": "number"}},
})]


class PolygonIn(StrictModel):
    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1, description="outer ring first, then holes")]


class MultiPolygonIn(StrictModel):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Annotated[list[Ring], Field(min_length=1)]], Field(min_length=1)]


GeometryIn = Annotated[Union[PolygonIn, MultiPolygonIn], Field(discriminator="type")]


class LineStringIn(StrictModel):
    type: Literal["LineString"]
    coordinates: Annotated[list[Position], Field(min_length=1, max_length=MAX_STROKE_POINTS,
                                                 description="path of the brush centre")]


class PointIn(StrictModel):
    type: Literal["Point"]
    coordinates: Position


StrokeIn = Annotated[Union[PolygonIn, MultiPolygonIn, LineStringIn, PointIn], Field(discriminator="type")]
MAX_BRUSH_RADIUS = 1000  # pixels; the editor's slider stops at 120
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_LENGTH)]


class RegionIn(StrictModel):
    id: Optional[str] = Field(None, pattern=REGION_ID_PATTERN,
                              description="stable id chosen by the client; the server assigns a uuid hex if absent")
    kind: Literal["mask", "box"] = Field(
        "mask", description="mask: the geometry outlines the tattoo; box: a weak label, the geometry is the "
                            "axis-aligned rectangle [[x0,y0],[x1,y0],[x1,y1],[x0,y1],[x0,y0]] around it (clipped "
                            "to the image; 422 if it is not a rectangle or has no area)")
    geometry: GeometryIn
    style: Optional[str] = Field(None, max_length=64, description="a style key of the taxonomy, or null")
    motifs: list[Tag] = Field(default_factory=list, max_length=MAX_MOTIFS)
    source: Literal["human", "model", "assist"] = "human"
    model_version: Optional[int] = Field(None, ge=1, le=2**31 - 1,
                                         description="id of the model version that proposed it")
    confidence: Optional[float] = Field(None, ge=0, le=1)


class TagsIn(StrictModel):
    styles: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    flags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)


class SaveAnnotation(StrictModel):
    base_version: int = Field(ge=0, description="the version the edit started from (409 when it is not current)")
    regions: list[RegionIn] = Field(description="the complete list of regions; it replaces the stored one")
    tags: TagsIn
    time_spent_ms: int = Field(0, ge=0, le=MAX_TIME_SPENT_MS, description="editing time since the last save")


class GeometryOp(StrictModel):
    image_id: int = Field(ge=1, le=2**31 - 1, description="the image drawn on: its stored size bounds the work")
    geometry: Optional[GeometryIn] = Field(None, description="the region so far (null for a new one with union)")
    stroke: StrokeIn = Field(description="a polygon, or a LineString/Point path buffered by `radius`")
    radius: Optional[float] = Field(None, gt=0, le=MAX_BRUSH_RADIUS,
                                    description="brush radius in pixels, for path strokes")


class RevisionQuery(QueryModel):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(50, ge=1, le=200)


# --- response models ----------------------------------------------------------------------------------------------


class GeometryOut(BaseModel):
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class RegionOut(BaseModel):
    id: str
    kind: Literal["mask", "box"] = "mask"
    geometry: GeometryOut
    style: Optional[str]
    motifs: list[str]
    source: str
    model_version: Optional[int] = None
    confidence: Optional[float] = None


class TagsOut(BaseModel):
    styles: list[str]
    flags: list[str]


class AnnotationDocument(BaseModel):
    version: int
    regions: list[RegionOut]
    tags: TagsOut


class SubmitOut(BaseModel):
    id: int
    status: str
    version: int


class Author(BaseModel):
    id: int
    username: Optional[str]


class RevisionOut(BaseModel):
    version: int
    author: Optional[Author]
    time_spent_ms: int
    created_at: Optional[str]


class RevisionList(BaseModel):
    items: list[RevisionOut]
    total: int


class RevisionDetail(RevisionOut):
    document: AnnotationDocument


class GeometryResult(BaseModel):
    geometry: Optional[GeometryOut] = Field(description="null when the eraser removed everything")
    area: float
    bbox: Optional[list[float]]


# --- routes -------------------------------------------------------------------------------------------------------


@bp.get("/images/<int:image_id>/annotation")
@endpoint("The current annotation document of an image", response=AnnotationDocument)
def get_annotation(image_id: int):
    check_not_copy_holder(db.session, image_id, g.caller)
    document = current_document(image_id)
    end_read()  # release SQLite's lock before the response is serialised
    return document


@bp.put("/images/<int:image_id>/annotation")
@endpoint(
    "Save a new version of the annotation document",
    body=SaveAnnotation,
    response=AnnotationDocument,
    errors=(409,),
    reads_first=True,
    description=(
        "Replaces regions and tags in one transaction and returns the new document (version + 1). "
        "409 with `details.current` when `base_version` is not the current version; 422 naming the region index "
        "(`details.region`, `details.reason`) when a region is invalid. Geometry outside the image is clipped and "
        "self-intersecting polygons are repaired (shapely make_valid), not refused. An annotator writes only an "
        "image whose lease is free or theirs (the save takes it; 409 `leased` otherwise), not one that is "
        "submitted (403 `submitted`), accepted (403 `frozen`), rejected back to someone else (403 `not_yours`) or "
        "of which they hold an open agreement copy (403 `agreement_open`); reviewers and admins write any."
    ),
)
def put_annotation(image_id: int, body: SaveAnnotation):
    regions = [r.model_dump(exclude_unset=True) for r in body.regions]
    return save_document(image_id, g.caller, body.base_version, regions, body.tags.model_dump(), body.time_spent_ms)


@bp.post("/images/<int:image_id>/submit")
@endpoint("Submit the image for review (from new, in_progress or rejected)", response=SubmitOut, errors=(409,),
          description="An annotator submits only an image whose lease is free or theirs (as for saves).")
def submit(image_id: int):
    return submit_image(image_id, g.caller)


@bp.get("/images/<int:image_id>/revisions")
@endpoint("The save history of an image, newest first", query=RevisionQuery, response=RevisionList)
def revisions(image_id: int, query: RevisionQuery):
    check_not_copy_holder(db.session, image_id, g.caller)
    return list_revisions(image_id, query.page, query.per_page)


@bp.get("/images/<int:image_id>/revisions/<int:version>")
@endpoint("One saved revision with its full document", response=RevisionDetail)
def revision(image_id: int, version: int):
    check_not_copy_holder(db.session, image_id, g.caller)
    return get_revision(image_id, version)


def _geometry_op(op, body: GeometryOp) -> dict:
    """The work is bounded by the stored image (its size, not one the client names) and geometry_bounds' caps."""
    max_vertices = current_app.config.get("MAX_REGION_VERTICES", 10_000)
    size = db.session.execute(select(Image.width, Image.height).where(Image.id == body.image_id)).first()
    end_read()
    if size is None:
        raise not_found("image")
    geometry = body.geometry.model_dump() if body.geometry is not None else None
    try:
        result = op(geometry, body.stroke.model_dump(), size.width, size.height, max_vertices, body.radius)
    except GeometryError as err:
        raise APIError(422, "invalid_geometry", f"Geometry: {err}", {"reason": str(err)}) from None
    if result is None:
        return {"geometry": None, "area": 0.0, "bbox": None}
    # the stroke's round caps leave vertices a hundredth of a pixel apart: those go, the shape stays exact
    result, _ = clean_geometry(result, 0.0, size.width, size.height, max_vertices)
    if result is None:
        return {"geometry": None, "area": 0.0, "bbox": None}
    area, bbox = area_bbox(result)
    return {"geometry": result, "area": area, "bbox": bbox}


@bp.post("/geometry/union")
@endpoint("Brush: the region grown by a stroke, validated and clipped to the image", body=GeometryOp,
          response=GeometryResult)
def geometry_union(body: GeometryOp):
    return _geometry_op(union_geometry, body)


@bp.post("/geometry/difference")
@endpoint("Eraser: the region with a stroke cut out (geometry null when nothing is left)", body=GeometryOp,
          response=GeometryResult)
def geometry_difference(body: GeometryOp):
    return _geometry_op(difference_geometry, body)
