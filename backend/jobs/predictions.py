"""Pre-fill of one image, now: the promoted models (loaded once per process), their predictions cached as Prediction
rows per image and pair of model versions, and the API's synchronous calls:

    prefill_image(image_id)      POST /api/v1/images/<id>/prefill: cached unless refreshed
    cached_prediction(image_id)  the newest stored prediction for the current segmenter, or None
    load_current()               the promoted segmenter (409 no_model without one) and classifier

A Prediction row keeps the regions (each region as save_document takes it, plus its `style_probs`, `area`,
`bbox`, `mask_confidence`, `score`), image-level style probabilities, the tattoo concentration, the uncertainty parts
(backend.ml.uncertainty.combined_score) and the encoder embedding the active-learning queue uses. The batch
pre-fill of the pool (a job kind) is backend/jobs/prefill.py.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from backend.core.document_checks import REGION_KEYS
from backend.db.extensions import db
from backend.db.models import Image, ModelVersion, Prediction, utcnow
from backend.jobs.training import current_model, models_dir
from backend.ml.cache import ModelCache
from backend.core.errors import Conflict, not_found

log = logging.getLogger(__name__)

_MODELS = ModelCache(max_items=4)
TRAIN_HINT = "python manage.py train segmenter --export ID"


def no_model_error() -> Conflict:
    return Conflict(
        "no_model",
        f"No segmentation model yet: train a model first ({TRAIN_HINT}, or POST /api/v1/models/train) "
        "and promote it; then pre-fill works.",
        {"train": TRAIN_HINT},
    )


@dataclass
class CurrentModels:
    segmenter_id: int
    segmenter: object  # SegmenterRunner
    classifier_id: Optional[int]
    classifier: object | None  # ClassifierRunner
    settings: object  # PrefillSettings


def _device():
    from backend.ml.device import resolve_device

    return resolve_device(current_app.config.get("DEVICE", "auto"))


def _load_runner(mv: ModelVersion, device):
    from backend.ml.infer import ClassifierRunner, SegmenterRunner
    from backend.ml.weights import UnsafeModelFile, load_bundle

    def load():
        try:
            bundle = load_bundle(mv.weights_path, root=models_dir())
        except (UnsafeModelFile, FileNotFoundError) as err:
            raise Conflict("model_unavailable", f"model {mv.id} ({mv.kind}) cannot be loaded: {err}") from None
        runner_cls = SegmenterRunner if mv.kind == "segmenter" else ClassifierRunner
        runner = runner_cls.from_bundle(bundle, device)
        runner.sidecar = bundle.sidecar
        return runner

    return _MODELS.get((mv.id, str(device)), load)


def load_current(device=None) -> CurrentModels:
    """The promoted segmenter (required: 409 no_model otherwise) and classifier (optional), loaded once."""
    from backend.ml.prefill import PrefillSettings

    seg = current_model("segmenter")
    if seg is None:
        raise no_model_error()
    cls = current_model("classifier")
    seg_id, cls_id = seg.id, (cls.id if cls else None)
    device = device or _device()
    seg_runner = _load_runner(seg, device)
    cls_runner = _load_runner(cls, device) if cls is not None else None
    db.session.commit()  # end the read transaction before the slow part (SQLite holds the write lock in one)
    training = cls_runner.sidecar.training if cls_runner is not None else {}
    fitted = seg_runner.sidecar.training.get("prefill") or {}  # fitted to the export's boxes (train.fit_prefill)
    settings = PrefillSettings(
        threshold=float(fitted.get("threshold", seg_runner.threshold)),
        group_gap=float(fitted.get("group_gap", PrefillSettings.group_gap)),
        min_score=float(fitted.get("min_score", PrefillSettings.min_score)),
        work_max_side=max(PrefillSettings.work_max_side, seg_runner.input_size),
        low_concentration=float(current_app.config.get("LOW_CONCENTRATION", 0.25)),
        on_body=bool(current_app.config.get("PREFILL_ON_BODY", True)),
        crop_margin=float(training.get("crop_margin", 0.1)),
        crop_mask_background=bool(training.get("crop_mask_background", False)),
    )
    return CurrentModels(seg_id, seg_runner, cls_id, cls_runner, settings)


def clear_model_cache() -> None:
    _MODELS.clear()


# --- decoding ------------------------------------------------------------------------------------------------------

def _store():
    from backend.media.storage import BlobStore

    return BlobStore.from_config(current_app.config)


def decode_work_image(store, sha256: str, fmt: str, width: int, height: int, max_side: int):
    """The image at pre-fill working resolution (long side ≤ max_side) and the scale back to original pixels."""

    class _Row:  # BlobStore.open_rgb reads sha256 and format only
        pass

    import cv2

    from backend.ml.prefill import work_size

    row = _Row()
    row.sha256, row.format = sha256, fmt
    rgb = np.asarray(store.open_rgb(row, max_side=max_side).convert("RGB"))
    work_w, work_h, _ = work_size(rgb.shape[1], rgb.shape[0], max_side)
    if (work_w, work_h) != (rgb.shape[1], rgb.shape[0]):
        # area averaging, as the training images were letterboxed (and ~5x the speed of Pillow's Lanczos)
        rgb = cv2.resize(rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)
    scale = max(width, height) / max(rgb.shape[:2])
    return rgb, scale


# --- one image -----------------------------------------------------------------------------------------------------

def _for_models(stmt, models: CurrentModels):
    stmt = stmt.where(Prediction.segmenter_id == models.segmenter_id)
    return stmt.where(Prediction.classifier_id.is_(None) if models.classifier_id is None
                      else Prediction.classifier_id == models.classifier_id)


def _cached(image_id: int, models: CurrentModels) -> Optional[Prediction]:
    stmt = _for_models(select(Prediction).where(Prediction.image_id == image_id), models)
    return db.session.scalar(stmt.order_by(Prediction.id.desc()).limit(1))


def _rounded(embedding) -> list[float]:
    """[round(float(v), 5) for v in embedding], vectorised for float32 (the model's; ~15x faster on 512 values)
    with the very same floats: a float32 times 10⁵ is exact in float64 (24 + 12 significant bits), so np.round's
    rint(x · 10⁵) is Python's round-half-even of the exact value, and the division by 10⁵ is correctly rounded
    as the decimal's conversion back is (checked on 2.5 M values, ties included; tests/unit/test_prefill_handover.py
    keeps 290 k of them)."""
    if isinstance(embedding, np.ndarray) and embedding.dtype == np.float32:
        return np.round(embedding.astype(np.float64), 5).tolist()
    return [round(float(v), 5) for v in embedding]


def _prediction_values(result: dict, embedding) -> dict:
    regions = [dict(region, **{k: v for k, v in detail.items() if k != "id"})
               for region, detail in zip(result["regions"], result["details"])]
    return dict(regions=regions, style_probs=result["style_probs"], concentration=result["concentration"],
                uncertainty=result["uncertainty"],
                embedding=_rounded(embedding) if embedding is not None else None,
                created_at=utcnow())


def _stage(image_id: int, models: CurrentModels, values: dict, existing: Optional[Prediction]) -> Prediction:
    if existing is None:
        existing = Prediction(image_id=image_id, segmenter_id=models.segmenter_id,
                              classifier_id=models.classifier_id, **values)
        db.session.add(existing)
    else:
        for key, value in values.items():
            setattr(existing, key, value)
    return existing


def _store_prediction(image_id: int, models: CurrentModels, result: dict, embedding) -> Prediction:
    pred = _stage(image_id, models, _prediction_values(result, embedding), _cached(image_id, models))
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent pre-fill of the same image stored it first: keep that one
        db.session.rollback()
        pred = _cached(image_id, models)
        if pred is None:
            raise
    return pred


def _store_predictions(entries: list[tuple[int, dict]], models: CurrentModels) -> None:
    """A batch of (image id, result) in one transaction (one commit, one lookup; the new rows in one bulk insert);
    should another pre-fill have stored one of them meanwhile, the batch is stored one image at a time instead."""
    ids = [image_id for image_id, _ in entries]
    try:
        existing = {p.image_id: p for p in db.session.scalars(
            _for_models(select(Prediction).where(Prediction.image_id.in_(ids)), models).order_by(Prediction.id))}
        new_rows = []
        for image_id, result in entries:
            values = _prediction_values(result, result["embedding"])
            if image_id in existing:
                _stage(image_id, models, values, existing[image_id])
            else:
                new_rows.append(dict(values, image_id=image_id, segmenter_id=models.segmenter_id,
                                     classifier_id=models.classifier_id))
        if new_rows:  # one executemany, without an ORM object a row (nothing here reads them back)
            db.session.execute(insert(Prediction), new_rows)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        for image_id, result in entries:
            _store_prediction(image_id, models, result, result["embedding"])


def prediction_payload(pred: Prediction, cached: bool = True, low_concentration: float | None = None) -> dict:
    """The API shape: regions ready for save_document, their details, concentration and its flags, uncertainty."""
    from backend.ml.prefill import NOT_TATTOO_BELOW

    threshold = float(current_app.config.get("LOW_CONCENTRATION", 0.25)) if low_concentration is None \
        else low_concentration
    stored = list(pred.regions or [])
    regions = [{**{k: r.get(k) for k in REGION_KEYS}, "kind": "mask"} for r in stored]  # predictions are masks
    details = [{"id": r.get("id"), **{k: v for k, v in r.items() if k not in REGION_KEYS}} for r in stored]
    concentration = pred.concentration if pred.concentration is not None else 0.0
    return {
        "image_id": pred.image_id,
        "segmenter_id": pred.segmenter_id,
        "classifier_id": pred.classifier_id,
        "regions": regions,
        "details": details,
        "concentration": concentration,
        "low_concentration": concentration < threshold,
        "low_concentration_threshold": threshold,
        "suggested_flags": ["not_tattoo"] if concentration < NOT_TATTOO_BELOW else [],
        "style_probs": pred.style_probs or {},
        "uncertainty": pred.uncertainty or {},
        "cached": cached,
        "created_at": pred.created_at.isoformat() if pred.created_at else None,
    }


def _predict(models: CurrentModels, rgbs: list[np.ndarray], scales: list[float],
             sizes: list[tuple[int, int]]) -> list[dict]:
    from backend.ml.prefill import build_prefill

    probs, embeddings = models.segmenter.predict(rgbs, embed=True)
    out = []
    for i, (rgb, prob, scale, size) in enumerate(zip(rgbs, probs, scales, sizes)):
        result = build_prefill(rgb, prob, models.classifier, models.settings, scale,
                               models.segmenter_id, models.classifier_id, image_size=size)
        result["embedding"] = embeddings[i] if embeddings is not None else None
        out.append(result)
    return out


def prefill_image(image_id: int, refresh: bool = False) -> dict:
    """Pre-fill one image with the current models (cached unless `refresh`); 404 unknown image, 409 no model."""
    image = db.session.get(Image, image_id)
    if image is None:
        raise not_found("image")
    models = load_current()
    if not refresh:
        pred = _cached(image_id, models)
        if pred is not None:
            return prediction_payload(pred, cached=True, low_concentration=models.settings.low_concentration)
    sha, fmt, width, height = image.sha256, image.format, image.width, image.height
    db.session.commit()
    try:
        rgb, scale = decode_work_image(_store(), sha, fmt, width, height, models.settings.work_max_side)
    except FileNotFoundError:
        raise Conflict("image_file_missing", "the stored file of this image is missing") from None
    result = _predict(models, [rgb], [scale], [(width, height)])[0]
    pred = _store_prediction(image_id, models, result, result["embedding"])
    return prediction_payload(pred, cached=False, low_concentration=models.settings.low_concentration)


def cached_prediction(image_id: int) -> Optional[dict]:
    """The newest stored prediction of an image for the current models (None if there is none)."""
    seg = current_model("segmenter")
    if seg is None:
        return None
    pred = db.session.scalar(select(Prediction).where(Prediction.image_id == image_id,
                                                      Prediction.segmenter_id == seg.id)
                             .order_by(Prediction.id.desc()).limit(1))
    return prediction_payload(pred, cached=True) if pred is not None else None
