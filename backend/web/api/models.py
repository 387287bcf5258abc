"""/api/v1 model registry (list, train, promote), pre-fill and ink-aware assist.

    GET  /models?kind=             model versions, newest first, with their metrics
    GET  /models/<id>              one model version
    POST /models/train             admin: train a segmenter or classifier on an export (background job, 202)
    POST /models/<id>/promote      admin: make a model version the current one of its kind
    POST /images/<id>/prefill      regions + style suggestions + concentration + uncertainty (not saved; cached)
    GET  /images/<id>/prediction   the cached pre-fill of the current models, 404 when there is none
    POST /images/<id>/assist       assist: box (ink in a box) and click (positive/negative clicks) with the current
                                   segmenter when there is one, else classical; grabcut (box), wand (points)
"""
from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Optional

from flask import Blueprint, current_app, g
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select

from backend.core.errors import DomainError, not_found
from backend.web.errors import APIError
from backend.db.extensions import db
from backend.jobs.executor import submit_job
from backend.db.models import Image, ModelVersion
from backend.jobs.predictions import cached_prediction, decode_work_image, prefill_image
from backend.jobs.training import export_zip, model_dict, promote_model
from backend.ml.defaults import CLASSIFIER_BACKBONE, SEGMENTER_ENCODER
from backend.web.api.schemas import QueryModel, StrictModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("models", __name__, url_prefix="/api/v1")

PREFILL_CHUNK = 2000  # images per pre-fill job when the API pre-fills the pool
ASSIST_MAX_SIDE = 1600  # assist works on the image scaled to this long side; geometry comes back in full pixels


# --- schemas -------------------------------------------------------------------------------------------------------

class Headline(BaseModel):
    metric: str
    value: Optional[float]


class ModelOut(BaseModel):
    id: int
    kind: str
    name: str
    architecture: dict[str, Any]
    export_id: Optional[str]
    is_current: bool
    created_at: Optional[str]
    headline: Headline
    metrics: dict[str, Any] = Field(description="val/test metrics (IoU, Dice; accuracy, per-style F1, confusion), "
                                                "training history, timing")


class ModelList(BaseModel):
    items: list[ModelOut]
    total: int


class ModelQuery(QueryModel):
    kind: Optional[Literal["segmenter", "classifier"]] = None
    current: Optional[bool] = Field(None, description="only the current (promoted) models")
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(50, ge=1, le=200)


class TrainIn(StrictModel):
    kind: Literal["segmenter", "classifier"]
    export_id: str = Field(min_length=1, max_length=64)
    epochs: Optional[int] = Field(None, ge=1, le=1000)
    batch_size: Optional[int] = Field(None, ge=1, le=1024)
    input_size: Optional[int] = Field(None, ge=32, le=2048, description="letterbox side; a multiple of 32 for "
                                                                         "segmenters (default 512; classifier 128)")
    lr: Optional[float] = Field(None, gt=0, le=1)
    arch: Optional[str] = Field(None, max_length=32, description="segmenter architecture (smp), default Unet")
    encoder: Optional[str] = Field(None, max_length=64, description=f"segmenter encoder, default {SEGMENTER_ENCODER}")
    backbone: Optional[str] = Field(None, max_length=64,
                                    description=f"classifier timm backbone, default {CLASSIFIER_BACKBONE}")
    encoder_weights: Optional[Literal["imagenet", "none"]] = Field(
        None, description="imagenet: start from ImageNet weights, which come installed for the encoder "
                          "tu-tf_efficientnet_lite0 and the backbone tf_efficientnet_lite0; other networks download "
                          "them when reachable (offline: random init with a warning). none: random weights. "
                          "Default: imagenet where the weights come installed, else none")
    device: Optional[Literal["auto", "cpu", "cuda"]] = None
    promote: Literal["never", "if_better", "always"] = "if_better"


class TrainStarted(BaseModel):
    job_id: str
    kind: str
    export_id: str


class RegionOut(BaseModel):
    id: str
    geometry: dict[str, Any]
    style: Optional[str]
    motifs: list[str]
    source: str
    model_version: Optional[int]
    confidence: Optional[float] = Field(description="the classifier's probability of the suggested style")


class PrefillOut(BaseModel):
    image_id: int
    segmenter_id: Optional[int]
    classifier_id: Optional[int]
    regions: list[RegionOut] = Field(description="suggested regions, in the shape PUT /annotation accepts")
    details: list[dict[str, Any]] = Field(description="per region (same order, same id): style_probs, area, bbox, "
                                                      "mask_confidence, score (mask confidence lowered for small "
                                                      "regions: how likely the region is a tattoo)")
    concentration: float = Field(description="tattoo pixels / image pixels")
    low_concentration: bool
    low_concentration_threshold: float
    suggested_flags: list[str] = Field(description='["not_tattoo"] when the model finds (almost) no ink')
    style_probs: dict[str, float] = Field(description="image-level style probabilities (area-weighted)")
    uncertainty: dict[str, Any] = Field(description="active-learning scores (backend.ml.uncertainty)")
    cached: bool
    created_at: Optional[str]


class PrefillQuery(QueryModel):
    refresh: bool = Field(False, description="recompute even when a cached prediction exists")


class PrefillPoolIn(StrictModel):
    statuses: Optional[list[Literal["new", "in_progress", "submitted", "accepted", "rejected"]]] = Field(
        None, min_length=1, description="images with these statuses (default: new)")
    image_ids: Optional[list[int]] = Field(None, min_length=1, max_length=100_000)
    batch_size: int = Field(8, ge=1, le=1024)
    refresh: bool = Field(False, description="recompute images the current models already pre-filled")


class PrefillPoolStarted(BaseModel):
    job_ids: list[str] = Field(description="one job per chunk of images (workers share a large pool)")
    images: int


class AssistIn(StrictModel):
    tool: Literal["grabcut", "wand", "box", "click"]
    box: Optional[list[float]] = Field(None, min_length=4, max_length=4, description="[x0, y0, x1, y1] in pixels")
    points: Optional[list[Annotated[list[float], Field(min_length=2, max_length=2)]]] = Field(
        None, min_length=1, max_length=50,
        description="wand: seed points; click: positive clicks (on the tattoo) — [[x, y], ...] in pixels")
    negative_points: Optional[list[Annotated[list[float], Field(min_length=2, max_length=2)]]] = Field(
        None, max_length=50, description="click: negative clicks (not the tattoo), [[x, y], ...] in pixels")
    use_model: bool = Field(True, description="box and click use the current segmenter when there is one; false "
                                              "asks for the model-free assist")
    tolerance: Optional[float] = Field(None, gt=0, le=255, description="wand: Lab distance per channel (default 14)")
    simplify: Optional[float] = Field(None, ge=0, le=20, description="simplification tolerance in image pixels "
                                      "(default 1.0; 0 keeps every traced vertex but near-duplicates)")

    @field_validator("points", "negative_points")
    @classmethod
    def _pairs(cls, value):
        if value is not None and any(len(p) != 2 for p in value):
            raise ValueError("each point must be [x, y]")
        return value


class AssistOut(BaseModel):
    tool: str
    method: Literal["model", "classical"] = Field(
        "classical", description="model: the segmenter's probability map refined with GrabCut; classical: no model")
    model_version: Optional[int] = Field(None, description="the segmenter that answered (method model)")
    geometry: Optional[dict[str, Any]] = Field(description="Polygon/MultiPolygon in image pixels, null when no ink "
                                                           "was found")
    area: float
    bbox: Optional[list[float]]
    region: Optional[RegionOut] = Field(description="the geometry as a draft region (source assist)")
    vertices_before: int = Field(0, description="vertices as traced, before cleaning")
    vertices_after: int = Field(0, description="vertices after near-duplicates went and simplification")
    simplify_tolerance: float = Field(0.0, description="the simplification tolerance used, image pixels")
    note: Optional[str] = Field(None, description="why nothing was found, when geometry is null")


# --- model registry ------------------------------------------------------------------------------------------------

@bp.get("/models")
@endpoint("Model versions, newest first", query=ModelQuery, response=ModelList, tags=["models"])
def list_models(query: ModelQuery):
    stmt = select(ModelVersion)
    if query.kind:
        stmt = stmt.where(ModelVersion.kind == query.kind)
    if query.current is not None:
        stmt = stmt.where(ModelVersion.is_current.is_(query.current))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.order_by(ModelVersion.id.desc()).limit(query.per_page)
                              .offset((query.page - 1) * query.per_page))
    return {"items": [model_dict(m) for m in rows], "total": total}


@bp.get("/models/<int:model_id>")
@endpoint("One model version with its metrics", response=ModelOut, tags=["models"])
def get_model(model_id: int):
    mv = db.session.get(ModelVersion, model_id)
    if mv is None:
        raise not_found("model version")
    return model_dict(mv)


@bp.post("/models/train")
@endpoint("Train a segmenter or style classifier on an export (background job; follow it at /jobs/<id>)",
          body=TrainIn, response=TrainStarted, status=202, errors=(409,), tags=["models"])
def train_model(body: TrainIn):
    export_zip(body.export_id)  # 404 / 409 now rather than a failed job later
    options = body.model_dump(exclude_none=True, exclude={"kind", "export_id", "promote"})
    if body.kind == "segmenter":
        options.pop("backbone", None)
        if options.get("input_size", 32) % 32:
            raise APIError(422, "invalid_body", "input_size of a segmenter must be a multiple of 32",
                           {"errors": [{"loc": ["input_size"], "message": "not a multiple of 32"}]})
    else:
        for key in ("arch", "encoder"):
            options.pop(key, None)
    _check_names(body)
    job = submit_job("train", {"kind": body.kind, "export_id": body.export_id, "options": options,
                               "promote": body.promote}, user_id=g.user.id)
    return {"job_id": job.id, "kind": body.kind, "export_id": body.export_id}


def _check_names(body: TrainIn) -> None:
    from backend.ml.nets import classifier_architecture, segmenter_architecture

    try:
        if body.kind == "segmenter":
            segmenter_architecture(body.arch or "Unet", body.encoder or SEGMENTER_ENCODER)
        else:
            classifier_architecture(body.backbone or CLASSIFIER_BACKBONE, 2)
    except ValueError as err:
        raise APIError(422, "invalid_body", str(err)) from None


class SampleQuery(QueryModel):
    limit: int = Field(4, ge=1, le=12)


class SampleOut(BaseModel):
    image_id: int
    version: int
    width: int
    height: int
    display_url: str
    iou: Optional[float]
    predicted: Optional[dict[str, Any]] = Field(description="the model's mask as GeoJSON in image pixels")
    truth: list[dict[str, Any]] = Field(description="the pinned annotation's region geometries")


class SamplesOut(BaseModel):
    model_id: int
    export_id: Optional[str]
    items: list[SampleOut]
    note: Optional[str] = Field(description="why there are no samples, when there are none")


@bp.get("/models/<int:model_id>/samples")
@endpoint("A few validation images of a segmenter: predicted vs true masks (GeoJSON) and their IoU",
          query=SampleQuery, response=SamplesOut, errors=(409,), tags=["models"])
def model_samples(model_id: int, query: SampleQuery):
    from backend.jobs.model_samples import validation_samples

    mv = db.session.get(ModelVersion, model_id)
    if mv is None:
        raise not_found("model version")
    return validation_samples(mv, query.limit)


@bp.post("/models/<int:model_id>/promote")
@endpoint("Make a model version the current one of its kind", response=ModelOut, errors=(409,),
          tags=["models"])
def promote(model_id: int):
    return model_dict(promote_model(model_id))


# --- pre-fill ------------------------------------------------------------------------------------------------------

@bp.post("/images/<int:image_id>/prefill")
@endpoint("Pre-fill an image with the current models: regions, style suggestions, concentration, uncertainty "
          "(not saved into the annotation; cached per image and model versions)",
          query=PrefillQuery, response=PrefillOut, errors=(409,), tags=["models"])
def prefill(image_id: int, query: PrefillQuery):
    return prefill_image(image_id, refresh=query.refresh)


@bp.post("/models/prefill")
@endpoint("Pre-fill the pool with the current models in the background (jobs; follow them at /jobs/<id>)",
          body=PrefillPoolIn, response=PrefillPoolStarted, status=202, errors=(409,), tags=["models"])
def prefill_pool(body: PrefillPoolIn):
    from backend.jobs.executor import submit_chunked
    from backend.jobs.prefill import select_pool
    from backend.jobs.predictions import no_model_error
    from backend.jobs.training import current_model

    if current_model("segmenter") is None:
        raise no_model_error()
    ids = select_pool(body.statuses or (None if body.image_ids else ["new"]), body.image_ids)
    if not ids:
        return {"job_ids": [], "images": 0}
    params = {"batch_size": body.batch_size, "refresh": body.refresh}
    jobs = submit_chunked("prefill", ids, PREFILL_CHUNK, params, item_key="image_ids", user_id=g.user.id)
    return {"job_ids": [job.id for job in jobs], "images": len(ids)}


@bp.get("/images/<int:image_id>/prediction")
@endpoint("The cached pre-fill of an image by the current models (made at upload or by a pre-fill run)",
          response=PrefillOut, tags=["models"])
def get_prediction(image_id: int):
    if db.session.get(Image, image_id) is None:
        raise not_found("image")
    payload = cached_prediction(image_id)
    if payload is None:
        raise APIError(404, "no_prediction", "no pre-fill for this image yet: POST /api/v1/images/<id>/prefill")
    return payload


# --- assist --------------------------------------------------------------------------------------------------------

def _assist_segmenter():
    """(model version id, SegmenterRunner) of the current segmenter, or (None, None) without a usable one."""
    from backend.jobs.predictions import load_current

    try:
        models = load_current()
    except DomainError:  # no model yet, or its file cannot be loaded: the model-free assist answers
        db.session.rollback()
        return None, None
    return models.segmenter_id, models.segmenter


@bp.post("/images/<int:image_id>/assist")
@endpoint(
    "Ink-aware assist: box → the ink inside it, click → the tattoo under positive clicks, grabcut from a box, "
    "wand from points (Lab flood fill)",
    body=AssistIn, response=AssistOut, tags=["models"],
    description=(
        "`box` and `click` use the current segmenter when there is one (its probability map on a window around the "
        "request, refined by GrabCut seeded from it; parts that run on past the box as solid areas — clothing, hair "
        "— are dropped) and fall back to the model-free assist otherwise (`method` says which answered). `box` "
        "answers with a mask inside the box: of the model's and the model-free mask, the one whose bounding box fits "
        "the drawn box best. `click` takes positive `points` and optional `negative_points`; send all clicks so "
        "far with each request."
    ),
)
def assist(image_id: int, body: AssistIn):
    from backend.core.geometry import GeometryError, area_bbox, validate_geometry
    from backend.core.geometry_clean import ASSIST_TOLERANCE, clean_assist_mask, clean_geometry
    from backend.ml.assist import run_tool
    from backend.ml.model_assist import box_assist, click_segment
    from backend.ml.prefill import image_mask_geometry
    from backend.media.storage import BlobStore

    image = db.session.get(Image, image_id)
    if image is None:
        raise not_found("image")
    width, height = image.width, image.height
    if body.tool in ("grabcut", "box"):
        if body.box is None:
            raise APIError(422, "invalid_body", f"{body.tool} needs a box [x0, y0, x1, y1]")
        x0, y0, x1, y1 = body.box
        if min(x1, width) - max(x0, 0) < 2 or min(y1, height) - max(y0, 0) < 2:
            raise APIError(422, "invalid_box", "the box must cover at least 2×2 pixels of the image "
                                               "(x0 < x1, y0 < y1, inside the image)")
    if body.tool in ("wand", "click"):
        if not body.points:
            what = " (positive clicks, on the tattoo)" if body.tool == "click" else ""
            raise APIError(422, "invalid_body", f"{body.tool} needs points{what} [[x, y], ...]")
        for x, y in body.points + (body.negative_points or []):
            if not (0 <= x < width and 0 <= y < height):
                raise APIError(422, "invalid_point", f"point [{x}, {y}] lies outside the {width}×{height} image")
    sha, fmt = image.sha256, image.format
    model_id, runner = _assist_segmenter() if body.use_model and body.tool in ("box", "click") else (None, None)
    db.session.commit()
    try:
        rgb, scale = decode_work_image(BlobStore.from_config(current_app.config), sha, fmt, width, height,
                                       ASSIST_MAX_SIDE)
    except FileNotFoundError:
        raise APIError(409, "image_file_missing", "the stored file of this image is missing") from None
    box = [v / scale for v in body.box] if body.box else None
    points = [[x / scale, y / scale] for x, y in body.points] if body.points else None
    negatives = [[x / scale, y / scale] for x, y in body.negative_points or []]
    mask = None
    try:
        if body.tool == "click":
            mask = click_segment(rgb, points, negatives, runner)
        elif body.tool == "box":  # the mask stays inside the box; see model_assist.box_assist
            mask, answered = box_assist(rgb, box, runner)
            runner = runner if answered == "model" else None
        else:
            mask = run_tool(rgb, body.tool, box, points, body.tolerance)
    except ValueError as err:
        raise APIError(422, "invalid_assist", str(err)) from None
    mask, note = clean_assist_mask(mask, rgb, body.tool, box, points)
    method = {"method": "model" if runner is not None else "classical",
              "model_version": model_id if runner is not None else None}
    geometry = image_mask_geometry(mask, scale, bounds=(width, height))
    if geometry is not None:
        try:
            geometry = validate_geometry(geometry, width, height, current_app.config.get("MAX_REGION_VERTICES", 10000))
        except GeometryError:
            geometry = image_mask_geometry(mask, scale, simplify_tolerance=2.5, bounds=(width, height))
            try:
                geometry = validate_geometry(geometry, width, height) if geometry else None
            except GeometryError:
                geometry = None
    stats = {"vertices_before": 0, "vertices_after": 0, "tolerance": 0.0}
    if geometry is not None:
        tolerance = ASSIST_TOLERANCE if body.simplify is None else body.simplify
        geometry, stats = clean_geometry(geometry, tolerance, width, height,
                                         current_app.config.get("MAX_REGION_VERTICES", 10000))
    cleaning = {"vertices_before": stats["vertices_before"], "vertices_after": stats["vertices_after"],
                "simplify_tolerance": stats["tolerance"]}
    if geometry is None:
        return {"tool": body.tool, **method, "geometry": None, "area": 0.0, "bbox": None, "region": None, **cleaning,
                "note": note or "Nothing found: no ink stands out from the skin there. Try a tighter box, or draw it."}
    area, bbox = area_bbox(geometry)
    region = {"id": uuid.uuid4().hex, "kind": "mask", "geometry": geometry, "style": None, "motifs": [],
              "source": "assist", "model_version": method["model_version"], "confidence": None}
    return {"tool": body.tool, **method, "geometry": geometry, "area": round(area, 1), "bbox": bbox, "region": region,
            **cleaning, "note": None}
