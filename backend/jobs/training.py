"""Training as a service over the workspace: export → train → safetensors + sidecar → ModelVersion → promote.

    result = run_training("segmenter", export_ref, {"epochs": 10}, promote="if_better", progress=cb)

Used by `manage.py train` (tqdm progress), by the `train` background job (POST /api/v1/models/train) and by the
demo. `promote`: "never", "always", or "if_better" — the new model is promoted when there is no current model of
its kind, or when it does at least as well as the current one on the new export's validation split (both models
evaluated there, so the comparison is on the same images).
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from flask import current_app
from sqlalchemy import select, update

from backend.core.errors import Conflict, Invalid, NotFound
from backend.db.extensions import db
from backend.jobs.runner import JobContext, register_job
from backend.db.models import Export, ModelVersion
from backend.core.taxonomy import load_taxonomy, trainable_styles

log = logging.getLogger(__name__)

PROMOTE_CHOICES = ("never", "if_better", "always")


def models_dir() -> Path:
    path = Path(current_app.config["WORKSPACE"]) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_zip(export_id: str) -> Path:
    """The zip of a finished export, or NotFound / Conflict saying what is wrong."""
    from backend.datasets.export import export_file

    export = db.session.get(Export, export_id)
    if export is None:
        raise NotFound("not_found", f"export {export_id!r} not found; list exports with GET /api/v1/exports")
    path = export_file(export, current_app.config["WORKSPACE"])
    if export.status != "succeeded" or path is None:
        raise Conflict("export_not_ready",
                       f"export {export_id} is {export.status}; wait for it to finish (or make a new one)")
    return path


def resolve_export(ref: str, allow_path: bool = False) -> Path:
    """An export id (the usual way) or, for the CLI, a path to an export zip or extracted folder."""
    if allow_path:
        candidate = Path(ref)
        if candidate.exists() and (candidate.is_dir() or candidate.suffix == ".zip"):
            return candidate
    return export_zip(ref)


def current_model(kind: str) -> Optional[ModelVersion]:
    return db.session.scalar(select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.is_current.is_(True))
                             .order_by(ModelVersion.id.desc()).limit(1))


POOL_REFRESH = {"statuses": ["new", "in_progress"], "reason": "promotion"}


def promote_model(model_id: int) -> ModelVersion:
    """Make a model version the current one of its kind (one UPDATE each way, one transaction), then queue a
    pre-fill of the pool (new and in-progress images) with the new models; that job queues a scores refresh when
    it ends (backend.jobs.prefill.prefill_job), so the active-learning ranking follows the promoted model.

    The refresh is best effort: a failure to queue it is logged and the promotion stands. A queued (not yet
    started) promotion pre-fill is reused: it loads whatever models are current when it starts. In a CLI command
    without a broker (manage.py promote / train --promote… / demo) the job queue is this very process: the
    pre-fill then runs once when the command ends (at most one however many models it promoted), so it neither
    competes with the command's own work nor repeats the demo's pre-fill (images already pre-filled by the
    current models are skipped)."""
    from backend.ml.weights import UnsafeModelFile, check_safetensors_header, read_sidecar

    mv = db.session.get(ModelVersion, model_id)
    if mv is None:
        raise NotFound("not_found", "model version not found")
    root = models_dir().resolve()
    weights = (root / mv.weights_path).resolve()
    if root not in weights.parents or weights.suffix != ".safetensors":
        raise Conflict("weights_unsafe", f"the weights path of model {mv.id} ({mv.weights_path!r}) is not a "
                       ".safetensors file inside the models folder; it cannot be promoted")
    if not weights.is_file():
        raise Conflict("weights_missing", f"the weights file of model {mv.id} is missing from the workspace")
    try:  # the file and its sidecar must be what load_bundle accepts, before anyone relies on the promotion
        check_safetensors_header(weights)
        read_sidecar(weights)
    except UnsafeModelFile as err:
        raise Conflict("weights_unsafe", f"model {mv.id} cannot be promoted: {err}") from None
    db.session.execute(update(ModelVersion).where(ModelVersion.kind == mv.kind, ModelVersion.id != mv.id)
                       .values(is_current=False).execution_options(synchronize_session=False))
    mv.is_current = True
    db.session.commit()
    _refresh_pool_after_promotion(mv)
    return mv


def _refresh_pool_after_promotion(mv: ModelVersion) -> None:
    """Queue (or, in a CLI command without a broker, schedule for its end) the pool pre-fill of a promotion."""
    import click

    from backend.jobs.executor import in_command_without_broker, submit_job
    from backend.db.models import Job

    model_id, kind = mv.id, mv.kind
    try:
        if current_model("segmenter") is None:  # a classifier alone cannot pre-fill anything
            db.session.commit()
            return
        if in_command_without_broker():
            db.session.commit()
            cli = click.get_current_context()
            if not cli.meta.get("inklabel.pool_refresh"):
                cli.meta["inklabel.pool_refresh"] = True
                cli.call_on_close(_deferred_pool_refresh(current_app._get_current_object()))
            log.info("%s model %s promoted: the pool pre-fill runs when this command ends", kind, model_id)
            return
        queued = db.session.scalars(select(Job).where(Job.kind == "prefill", Job.status == "queued")).all()
        if any((job.params or {}).get("reason") == "promotion" for job in queued):
            db.session.commit()
            log.info("%s model %s promoted: a queued pool pre-fill will use it", kind, model_id)
            return
        submit_job("prefill", dict(POOL_REFRESH))
    except Exception as err:  # broker down, database busy: the promotion stands; pre-fill and scores can be rerun
        db.session.rollback()
        log.warning("%s model %s promoted, but the pool pre-fill could not be queued: %s", kind, model_id, err)


def _deferred_pool_refresh(app) -> Callable[[], None]:
    import click
    from flask import has_app_context

    def run() -> None:
        from backend.jobs.executor import run_job_inline
        from backend.db.models import Job

        try:
            if has_app_context():  # end the command's own transaction (on SQLite it may hold the write lock)
                try:
                    db.session.commit()
                except Exception:
                    db.session.rollback()
            with app.app_context():
                if current_model("segmenter") is None:
                    return
                click.echo("pre-filling the pool with the promoted model(s) …", err=True)
                job_id = run_job_inline("prefill", dict(POOL_REFRESH), app)
                done = db.session.get(Job, job_id)
                result = done.result or {}
                click.echo(f"pool pre-fill {done.status}: " + (
                    f"{result.get('done', 0)} pre-filled, {result.get('skipped', 0)} already done, "
                    f"{result.get('failed', 0)} failed" if done.status == "succeeded" else str(done.error)), err=True)
                db.session.commit()
        except Exception as err:  # never turn a finished command into a failure
            log.warning("the pool pre-fill after the promotion failed: %s", err)

    return run


def model_dict(mv: ModelVersion, full: bool = True) -> dict:
    metrics = mv.metrics or {}
    headline_key = "iou" if mv.kind == "segmenter" else "accuracy"
    out = {
        "id": mv.id,
        "kind": mv.kind,
        "name": mv.name,
        "architecture": mv.architecture or {},
        "export_id": mv.export_id,
        "is_current": bool(mv.is_current),
        "created_at": mv.created_at.isoformat() if mv.created_at else None,
        "headline": {"metric": f"val_{headline_key}", "value": (metrics.get("val") or {}).get(headline_key)},
        "metrics": metrics if full else {k: v for k, v in metrics.items() if k in ("val", "test", "train_seconds")},
    }
    return out


def _compare_with_current(kind: str, data, result, device: str) -> dict:
    """Evaluate the current model of `kind` on the new export's validation split (the new model's own numbers came
    from the same split), so promote-if-better compares like with like."""
    from backend.ml.device import resolve_device
    from backend.ml.infer import ClassifierRunner, SegmenterRunner
    from backend.ml.train import _cls_splits, _seg_splits, evaluate_segmenter
    from backend.ml.weights import load_bundle
    from backend.ml.data import read_rgb

    current = current_model(kind)
    new_value = result.headline
    if current is None:
        return {"current_id": None, "current_value": None, "new_value": new_value, "better": True}
    try:
        bundle = load_bundle(current.weights_path, root=models_dir())
    except Exception as err:  # the current model cannot be loaded: the new one is better than nothing
        log.warning("current %s %s not loadable for comparison: %s", kind, current.id, err)
        return {"current_id": current.id, "current_value": None, "new_value": new_value, "better": True,
                "note": f"current model not loadable: {err}"}
    dev = resolve_device(device)
    opts = _options_like(result)
    if kind == "segmenter":
        _, val, _ = _seg_splits(data, opts)
        value = evaluate_segmenter(SegmenterRunner.from_bundle(bundle, dev), val)["iou"]
    else:
        _, val, _, _ = _cls_splits(data, opts)
        runner = ClassifierRunner.from_bundle(bundle, dev)
        probs = runner.predict([read_rgb(s.path) for s in val])
        predicted = [runner.classes[i] for i in probs.argmax(axis=1)] if len(val) else []
        value = round(float(np.mean([p == s.style for p, s in zip(predicted, val)])), 4) if val else None
    better = new_value is not None and (value is None or new_value >= value)
    return {"current_id": current.id, "current_value": value, "new_value": new_value, "better": better}


def _options_like(result):
    from backend.ml.train import TrainOptions

    training = result.sidecar.get("training", {})
    return TrainOptions(kind=result.sidecar["kind"], seed=int(training.get("seed", 0)),
                        val_fraction=float(training.get("val_fraction", 0.15)),
                        classes=result.sidecar["classes"] if result.sidecar["kind"] == "classifier" else None)


def run_training(kind: str, export_ref: str, options: dict | None = None, promote: str = "if_better",
                 progress: Callable[[int, int, str], None] | None = None, allow_path: bool = False,
                 on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train one model on an export and register it; returns a summary (model id, metrics, promoted, warnings)."""
    from backend.ml.data import ExportError, open_export
    from backend.ml.train import TrainOptions, train_model
    from backend.ml.weights import save_bundle

    if kind not in ("segmenter", "classifier"):
        raise ValueError("kind must be segmenter or classifier")
    if promote not in PROMOTE_CHOICES:
        raise ValueError(f"promote must be one of {', '.join(PROMOTE_CHOICES)}")
    path = resolve_export(export_ref, allow_path)
    config = current_app.config
    opts = dict(options or {})
    opts.setdefault("device", config.get("DEVICE", "auto"))
    if kind == "classifier":
        opts.setdefault("classes", trainable_styles(load_taxonomy(config["WORKSPACE"])))
    train_options = TrainOptions(kind=kind, **opts)
    db.session.commit()  # end any read transaction: training takes minutes and SQLite holds locks per transaction

    with open_export(path, tmp_dir=Path(config["WORKSPACE"]) / "tmp") as data:
        try:
            result = train_model(data, train_options, progress, on_epoch)
        except ExportError as err:
            raise Invalid("export_unusable", str(err)) from None
        comparison = None
        if promote == "if_better":
            comparison = _compare_with_current(kind, data, result, train_options.device)
    if data.export_id is None and not allow_path:
        result.sidecar["export_id"] = export_ref
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"{kind}-{stamp}-{uuid.uuid4().hex[:6]}"
    weights, _ = save_bundle(result.model, result.sidecar, models_dir(), name)
    architecture = dict(result.sidecar["architecture"], input_size=result.sidecar["input_size"],
                        classes=result.sidecar["classes"])
    mv = ModelVersion(kind=kind, name=name, architecture=architecture, weights_path=weights.name,
                      metrics=result.metrics, export_id=result.sidecar.get("export_id") or None, is_current=False)
    db.session.add(mv)
    db.session.commit()
    promoted = promote == "always" or (promote == "if_better" and comparison is not None and comparison["better"])
    if promoted:
        promote_model(mv.id)
    return {
        "model_version_id": mv.id,
        "kind": kind,
        "name": name,
        "headline": result.headline,
        "val": result.metrics.get("val"),
        "test": result.metrics.get("test"),
        "train_seconds": result.metrics.get("train_seconds"),
        "promoted": promoted,
        "comparison": comparison,
        "warnings": result.warnings,
        "history": result.metrics.get("history", []),
        "prefill_fit": result.metrics.get("prefill_fit"),
    }


@register_job("train", queue="gpu", max_attempts=1)
def train_job(ctx: JobContext, kind: str, export_id: str, options: dict | None = None,
              promote: str = "if_better") -> dict:
    """Background training (POST /api/v1/models/train): progress is optimizer steps over all epochs."""
    ctx.progress(0, None, f"preparing {kind} training on export {export_id}", force=True)
    return run_training(kind, export_id, options or {}, promote,
                        progress=lambda done, total, message: ctx.progress(done, total, message),
                        on_epoch=_live_history(ctx, kind, (options or {}).get("epochs")))


def _live_history(ctx: JobContext, kind: str, epochs: int | None) -> Callable[[dict], None]:
    """An epoch hook that keeps the job's result at {"live": true, "history": [...]} while it trains, so the
    console (GET /jobs/<id>) draws the loss and validation curves epoch by epoch; the final result replaces it."""
    from backend.db.models import Job

    history: list[dict] = []

    def record(entry: dict) -> None:
        history.append(entry)
        job = db.session.get(Job, ctx.job_id)
        if job is None:
            return
        job.result = {"live": True, "kind": kind, "epochs": epochs, "history": list(history)}
        db.session.commit()

    return record
