"""Pre-fill: the current segmenter (and classifier) run on workspace images; results cached as Prediction rows.

    prefill_image(image_id)                    one image (POST /api/v1/images/<id>/prefill); cached per image and
                                               pair of model versions
    prefill_images(ids, batch_size, progress)  the pool (manage.py prefill, the `prefill` job): batched, all in
                                               this process; on CUDA the previous batch is classified and stored
                                               while the device runs the next
    suggest_on_upload(ids)                     after an upload: a background pre-fill when a current model exists,
                                               so new images get their concentration and a "probably no tattoo" hint

A Prediction row keeps the regions (each region as save_document takes it, plus its `style_probs`, `area`,
`bbox`, `mask_confidence`), image-level style probabilities, the tattoo concentration, the uncertainty parts
(backend.ml.uncertainty.combined_score) and the encoder embedding the active-learning queue uses.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import numpy as np
from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from backend.core.annotations import REGION_KEYS
from backend.web.errors import APIError, not_found
from backend.db.extensions import db
from backend.jobs.executor import JobContext, register_job, submit_job
from backend.ml.cache import ModelCache
from backend.db.models import Image, ModelVersion, Prediction, utcnow
from backend.jobs.training import current_model, models_dir

log = logging.getLogger(__name__)

_MODELS = ModelCache(max_items=4)
TRAIN_HINT = "python manage.py train segmenter --export ID"


def no_model_error() -> APIError:
    return APIError(
        409, "no_model",
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
            raise APIError(409, "model_unavailable", f"model {mv.id} ({mv.kind}) cannot be loaded: {err}") from None
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
    settings = PrefillSettings(
        threshold=seg_runner.threshold,
        work_max_side=max(PrefillSettings.work_max_side, seg_runner.input_size),
        low_concentration=float(current_app.config.get("LOW_CONCENTRATION", 0.25)),
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
        raise APIError(409, "image_file_missing", "the stored file of this image is missing") from None
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


# --- the pool ------------------------------------------------------------------------------------------------------

class _DecodeDataset:
    """Decodes and letterboxes images; no database access in here."""

    def __init__(self, rows: list[tuple], store, max_side: int, input_size: int):
        self.rows, self.store, self.max_side, self.input_size = rows, store, max_side, input_size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        from backend.ml.transforms import letterbox

        image_id, sha, fmt, width, height = self.rows[index]
        try:
            rgb, scale = decode_work_image(self.store, sha, fmt, width, height, self.max_side)
        except Exception as err:  # missing or unreadable file: reported, the batch goes on
            return {"id": image_id, "error": f"{type(err).__name__}: {err}"}
        canvas, lb = letterbox(rgb, self.input_size)
        return {"id": image_id, "rgb": rgb, "work_size": (rgb.shape[1], rgb.shape[0]), "scale": scale,
                "canvas": canvas, "lb": lb, "size": (width, height)}


def _batches(dataset: _DecodeDataset, batch_size: int):
    """The dataset in batches of (decoded items, failed items, the decoded items' canvases stacked: (n, S, S, 3)
    uint8, None when none decoded)."""
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        good = [item for item in items if "error" not in item]
        bad = [item for item in items if "error" in item]
        yield good, bad, (np.stack([item.pop("canvas") for item in good]) if good else None)


def select_pool(statuses: Iterable[str] | None = None, image_ids: Iterable[int] | None = None) -> list[int]:
    stmt = select(Image.id)
    if image_ids is not None:
        stmt = stmt.where(Image.id.in_(list(image_ids)))
    if statuses:
        stmt = stmt.where(Image.status.in_(list(statuses)))
    ids = list(db.session.scalars(stmt.order_by(Image.id)))
    db.session.commit()
    return ids


def _trace_batch(models: CurrentModels, items: list[dict], prob_canvases: np.ndarray) -> list:
    """One trace per image, from its probability map cut out of the letterbox at working size; an image whose trace
    fails gets the exception instead (reported; the batch goes on)."""
    from backend.ml.letterbox import unletterbox
    from backend.ml.prefill import trace_prefill

    traces = []
    for item, prob_canvas in zip(items, prob_canvases):
        try:
            prob = unletterbox(prob_canvas, item["lb"], *item["work_size"])
            traces.append(trace_prefill(prob, models.settings, item["scale"], item["size"]))
        except Exception as err:
            traces.append(err)
    return traces


def _finish_batch(models: CurrentModels, traced: list[tuple]) -> list[dict]:
    """The results of a batch's (item, embedding, TracedImage): all their regions classified in one call, then each
    image finished."""
    from backend.ml.prefill import classify_regions, finish_prefill

    classifier = models.classifier
    classes = classifier.classes if classifier is not None else None
    styles = classify_regions(classifier, [(item["rgb"], image) for item, _, image in traced], models.settings)
    results = []
    for (_, embedding, image), style_probs in zip(traced, styles):
        result = finish_prefill(image, style_probs, classes, models.settings, models.segmenter_id,
                                models.classifier_id)
        result["embedding"] = embedding
        results.append(result)
    return results


def prefill_images(image_ids: list[int], batch_size: int = 8, refresh: bool = False,
                   progress: Callable[[int, int, str], None] | None = None, device=None) -> dict:
    """Pre-fill many images in batches; images already predicted by the current models are skipped unless
    `refresh`. Returns counts (done, skipped, failed: images that could not be decoded or traced) and the seconds
    spent."""
    import time

    started = time.monotonic()
    models = load_current(device)
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    if not refresh and ids:
        done_ids = set()
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            stmt = _for_models(select(Prediction.image_id).where(Prediction.image_id.in_(chunk)), models)
            done_ids.update(db.session.scalars(stmt))
        skipped = len([i for i in ids if i in done_ids])
        ids = [i for i in ids if i not in done_ids]
    else:
        skipped = 0
    rows = []
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        rows += db.session.execute(select(Image.id, Image.sha256, Image.format, Image.width, Image.height)
                                   .where(Image.id.in_(chunk)).order_by(Image.id)).all()
    db.session.commit()
    rows = [tuple(r) for r in rows]
    total = len(rows)
    dataset = _DecodeDataset(rows, _store(), models.settings.work_max_side, models.segmenter.input_size)
    done = failed = 0
    errors: list[dict] = []
    if progress:
        progress(0, total, f"pre-filling {total} image(s)")

    def fail(image_id: int, error: str) -> None:
        nonlocal failed
        failed += 1
        if len(errors) < 20:
            errors.append({"image_id": image_id, "error": error[:300]})

    def finish(items: list[dict], embeddings: list, traces: list) -> None:
        nonlocal done
        traced = []
        for item, embedding, trace in zip(items, embeddings, traces):
            if isinstance(trace, Exception):  # this image's map could not be traced: reported, the batch goes on
                fail(item["id"], f"{type(trace).__name__}: {trace}")
            else:
                traced.append((item, embedding, trace))
        if traced:
            results = _finish_batch(models, traced)
            _store_predictions([(item["id"], result) for (item, _, _), result in zip(traced, results)], models)
            done += len(traced)
        if progress:
            progress(done + failed, total, f"pre-filled {done} of {total}")

    # On CUDA start_forward returns once the batch is queued on the device: the previous batch is classified and
    # stored meanwhile (on the CPU it computes the forward pass at once).
    previous = None
    for good, bad, canvases in _batches(dataset, max(1, batch_size)):
        for item in bad:
            fail(item["id"], item["error"])
        if not good:
            continue
        forward = models.segmenter.start_forward(canvases, embed=True)
        if previous is not None:
            finish(*previous)
        prob_canvases, emb = forward.result()
        embeddings = [emb[k] if emb is not None else None for k in range(len(good))]
        previous = (good, embeddings, _trace_batch(models, good, prob_canvases))
    if previous is not None:
        finish(*previous)
    return {"done": done, "skipped": skipped, "failed": failed, "errors": errors,
            "segmenter_id": models.segmenter_id, "classifier_id": models.classifier_id,
            "seconds": round(time.monotonic() - started, 2)}


@register_job("prefill", queue="gpu")
def prefill_job(ctx: JobContext, image_ids: list[int] | None = None, statuses: list[str] | None = None,
                batch_size: int = 8, refresh: bool = False, reason: str = "") -> dict:
    """Background pre-fill of the given images, or of all images with the given statuses (default: new).

    At the end it queues a scores refresh (backend.jobs.scores.queue_scores_refresh: the active-learning ranking
    is built from these predictions) when it pre-filled anything, and always after a promotion (reason
    "promotion": the ranking must move to the new model even when its predictions were already made) — but not
    for the few images of an upload (reason "upload"), which would rebuild every score per upload; those join the
    ranking at the next refresh. A failure to queue the refresh is logged; the pre-fill stands."""
    ids = select_pool(statuses or (None if image_ids is not None else ["new"]), image_ids)
    if ids:
        result = prefill_images(ids, batch_size=batch_size, refresh=refresh,
                                progress=lambda done, total, message: ctx.progress(done, total, message))
    else:  # an empty pool: nothing to load a model for
        result = {"done": 0, "skipped": 0, "failed": 0, "errors": [], "seconds": 0.0}
    if reason != "upload" and (result["done"] > 0 or reason == "promotion"):
        from backend.jobs.scores import queue_scores_refresh

        try:
            result["scores_job_id"] = queue_scores_refresh(reason=reason or "prefill")
        except Exception as err:  # broker down, database busy: the scores can be refreshed by hand
            db.session.rollback()
            log.warning("pre-fill done, but the scores refresh could not be queued: %s", err)
    return result


def suggest_on_upload(image_ids: list[int], user_id: int | None = None):
    """Queue a pre-fill of freshly uploaded images when a current segmenter exists (else do nothing), so they get
    a concentration, low-concentration and not-tattoo hints without anyone asking. Never raises: an upload must
    not fail because of this. Returns the Job or None."""
    if not image_ids:
        return None
    try:
        if current_model("segmenter") is None:
            return None
        return submit_job("prefill", {"image_ids": [int(i) for i in image_ids], "reason": "upload"}, user_id=user_id)
    except Exception as err:  # broker down, database busy: the images can still be pre-filled on demand later
        db.session.rollback()
        log.warning("could not queue the upload pre-fill of %d image(s): %s", len(image_ids), err)
        return None
