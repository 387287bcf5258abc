"""Pre-fill of the pool: the current segmenter (and classifier) run on many workspace images, batched; results
cached as Prediction rows (backend/jobs/predictions.py, which also pre-fills one image for the API).

    prefill_images(ids, batch_size, progress)  the pool (manage.py prefill, the `prefill` job): batched, all in
                                               this process; on CUDA the previous batch is classified and stored
                                               while the device runs the next
    suggest_on_upload(ids)                     after an upload: a background pre-fill when a current model exists,
                                               so new images get their concentration and a "probably no tattoo" hint
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

import numpy as np
from sqlalchemy import select

from backend.db.extensions import db
from backend.db.models import Image, Prediction
from backend.jobs.executor import submit_job
from backend.jobs.predictions import (CurrentModels, _for_models, _store, _store_predictions, decode_work_image,
                                      load_current)
from backend.jobs.runner import JobContext, register_job
from backend.jobs.training import current_model

log = logging.getLogger(__name__)


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
            traces.append(trace_prefill(prob, models.settings, item["scale"], item["size"], item["rgb"]))
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
