"""The "scores" job: precompute the active-learning priority of every unlabelled image (ImageScore rows).

`POST /api/v1/queue/next` then reads the best free image through the (strategy, score) index instead of scoring
anything per request. It is queued on its own (`queue_scores_refresh`) at the end of every pool pre-fill job that
pre-filled something, and of every pre-fill that follows a promotion (backend.jobs.training.promote_model queues
a pool pre-fill), but not after the small pre-fill of each upload (that would rebuild every row per upload; those
images join the ranking at the next refresh). By hand:

    submit_job("scores", {"top_k": 1000})            # or POST /api/v1/queue/scores (admin), manage.py scores

Input: the Prediction rows of the current segmenter (Prediction.uncertainty, a dict with a "score" made by
backend.ml.uncertainty.combined_score, and Prediction.embedding) for images that are new or in progress.
Output, replacing the previous rows:
- strategy "uncertainty": score = Prediction.uncertainty["score"], parts = that dict;
- strategy "diversity": the `top_k` most uncertain images ordered by k-center greedy over their L2-normalised
  embeddings, starting from the labelled images' embeddings (core-set selection), so consecutive hand-outs are far
  apart; score = 1 − rank / top_k, parts = {"rank", "uncertainty"}. Uncertain images without an embedding follow
  in uncertainty order.
With no current segmenter the rows are removed, and the queue falls back to the oldest images (saying so).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from backend.db.extensions import db
from backend.jobs.runner import JobContext, register_job
from backend.ml.uncertainty import k_center_greedy
from backend.db.models import Image, ImageScore, ModelVersion, Prediction, utcnow
from backend.core.workflow import POOL_STATUSES

SCORED_STRATEGIES = ("uncertainty", "diversity")
LABELLED_STATUSES = ("submitted", "accepted")
LABELLED_CONTEXT = 2000  # at most this many labelled embeddings seed the k-center selection
CHUNK = 1000


def _current(session: Session, kind: str) -> Optional[ModelVersion]:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.is_current.is_(True))
        .order_by(ModelVersion.created_at.desc()).limit(1)
    )


def _embeddings(session: Session, prediction_ids: list[int]) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for start in range(0, len(prediction_ids), CHUNK):
        for pid, emb in session.execute(
            select(Prediction.id, Prediction.embedding).where(Prediction.id.in_(prediction_ids[start:start + CHUNK]))
        ):
            if isinstance(emb, list) and emb:
                vec = np.asarray(emb, dtype=np.float64).ravel()
                if np.all(np.isfinite(vec)):
                    norm = np.linalg.norm(vec)
                    out[pid] = vec / norm if norm > 0 else vec
    return out


def _best_predictions(session: Session, segmenter_id: int, classifier_id: Optional[int], statuses) -> dict:
    """image id -> (prediction id, uncertainty dict): the current classifier's row if any, else the newest."""
    best: dict[int, tuple] = {}
    rows = session.execute(
        select(Prediction.id, Prediction.image_id, Prediction.classifier_id, Prediction.uncertainty,
               Prediction.created_at)
        .join(Image, Image.id == Prediction.image_id)
        .where(Prediction.segmenter_id == segmenter_id, Image.status.in_(statuses))
        .order_by(Prediction.created_at, Prediction.id)
    )
    for pid, image_id, cid, uncertainty, _created in rows:
        preferred = classifier_id is not None and cid == classifier_id
        held = best.get(image_id)
        if held is None or preferred or not held[2]:
            best[image_id] = (pid, uncertainty or {}, preferred)
    return {k: (v[0], v[1]) for k, v in best.items()}


def refresh_scores(session: Session, top_k: int = 1000,
                   progress: Optional[Callable[[int, int, str], None]] = None) -> dict:
    """Rebuild the uncertainty and diversity ImageScore rows (see the module docstring). Commits."""
    report = progress or (lambda done, total, message: None)
    segmenter = _current(session, "segmenter")
    session.execute(delete(ImageScore).where(ImageScore.strategy.in_(SCORED_STRATEGIES)))
    if segmenter is None:
        session.commit()
        return {"scored": 0, "diversity": 0, "segmenter_id": None,
                "message": "no current segmenter: train and promote one first; the queue serves the oldest images"}
    classifier = _current(session, "classifier")
    pool = _best_predictions(session, segmenter.id, classifier.id if classifier else None, POOL_STATUSES)
    now = utcnow()
    scored: list[tuple[int, int, float, dict]] = []
    for image_id, (pid, uncertainty) in pool.items():
        score = uncertainty.get("score") if isinstance(uncertainty, dict) else None
        if isinstance(score, (int, float)) and not isinstance(score, bool) and np.isfinite(score):
            scored.append((image_id, pid, float(score), uncertainty))
    scored.sort(key=lambda row: (-row[2], row[0]))
    total = len(scored)
    report(0, total, "writing uncertainty scores")
    for start in range(0, total, CHUNK):
        session.execute(insert(ImageScore), [
            {"image_id": image_id, "strategy": "uncertainty", "score": score, "parts": parts,
             "model_version_id": segmenter.id, "updated_at": now}
            for image_id, _pid, score, parts in scored[start:start + CHUNK]
        ])
        report(min(start + CHUNK, total), total, "writing uncertainty scores")

    top = scored[:top_k]
    vectors = _embeddings(session, [pid for _i, pid, _s, _p in top])
    with_emb = [row for row in top if row[1] in vectors]
    without = [row for row in top if row[1] not in vectors]
    labelled = _best_predictions(session, segmenter.id, classifier.id if classifier else None, LABELLED_STATUSES)
    context_ids = [pid for pid, _u in list(labelled.values())[-LABELLED_CONTEXT:]]
    context = _embeddings(session, context_ids)
    dims = {v.shape[0] for v in vectors.values()} | {v.shape[0] for v in context.values()}
    order: list[tuple[int, int, float, dict]] = []
    if with_emb and len(dims) == 1:
        matrix = np.stack([vectors[row[1]] for row in with_emb] + list(context.values()))
        already = range(len(with_emb), matrix.shape[0])
        picks = k_center_greedy(matrix, len(with_emb), already_selected=already)
        order = [with_emb[i] for i in picks]
    else:  # embeddings missing or of mixed sizes: diversity degrades to uncertainty order
        without = top
    order += without
    n = max(1, len(order))
    if order:
        session.execute(insert(ImageScore), [
            {"image_id": image_id, "strategy": "diversity", "score": round(1.0 - rank / n, 6),
             "parts": {"rank": rank + 1, "of": n, "uncertainty": round(score, 6), "embedding": pid in vectors},
             "model_version_id": segmenter.id, "updated_at": now}
            for rank, (image_id, pid, score, _parts) in enumerate(order)
        ])
    pool_size = session.scalar(select(func.count()).select_from(Image).where(Image.status.in_(POOL_STATUSES)))
    session.commit()
    return {"scored": total, "diversity": len(order), "with_embedding": len(with_emb),
            "labelled_context": len(context), "unscored_pool_images": pool_size - total,
            "segmenter_id": segmenter.id, "classifier_id": classifier.id if classifier else None}


def queue_scores_refresh(top_k: int = 1000, reason: str = "") -> Optional[str]:
    """Queue a scores refresh unless one is already queued and not started (it will read the newest predictions
    when it starts); returns the job id (or None when one was waiting already). In a CLI command without a broker
    the refresh runs here and now, since this process is the job queue and may be about to exit."""
    from backend.jobs.executor import in_command_without_broker, run_job_inline, submit_job
    from backend.db.models import Job

    waiting = db.session.scalar(select(Job.id).where(Job.kind == "scores", Job.status == "queued").limit(1))
    if waiting is not None:
        db.session.commit()
        return None
    params = {"top_k": int(top_k), **({"reason": reason} if reason else {})}
    if in_command_without_broker():
        return run_job_inline("scores", params)
    return submit_job("scores", params).id


@register_job("scores", queue="cpu")
def run_scores(ctx: JobContext, top_k: int = 1000, reason: str = "") -> dict:
    return refresh_scores(db.session, top_k=int(top_k),
                          progress=lambda done, total, message: ctx.progress(done, total, message))
