"""Statistics of the annotation workflow: throughput, active time, agreement and pre-fill usefulness.

Plain SQLAlchemy on a session the caller passes. The maths (mask IoU, Cohen's kappa, region matching) are small
pure functions so the tests can check them on hand-made pairs.

Definitions
- Throughput: AnnotationRevision rows (saves) grouped by author and UTC day — saves, distinct images, active time
  (the editor's `time_spent_ms`, idle excluded by the editor).
- Agreement: an image of the agreement sample annotated by its first annotator (the image's own document, once
  submitted or accepted) and independently by a second one (a completed agreement copy). Per pair of annotators and
  per annotator: mean mask IoU (both masks rasterised with backend.core.geometry_raster.rasterize, scaled so the
  long side is at most 512 pixels; two empty masks agree perfectly, IoU 1) and style agreement — each annotator's *image style* is
  the style of their largest styled region (else their first image-level style, else "none"), compared with
  Cohen's kappa (None when it is undefined: both used one and the same label throughout) and raw agreement.
- Box regions (``"kind": "box"``, backend/core/boxes.py) are weak labels, not outlines: every mask here (agreement IoU,
  pre-fill IoU) and the tattoo concentration of pre-fill count mask regions only. A box still carries a style, so
  it counts for the image style.
- Pre-fill usefulness, per segmenter version, over the most recently accepted images: an image counts as pre-filled
  when any saved revision holds a region with source "model". For each predicted region of its Prediction: kept
  unchanged (a final region matches it with IoU ≥ 0.98), edited (a final model-sourced region with the same id or
  IoU ≥ 0.5), or deleted. IoU between the whole pre-fill mask and the final accepted mask; style suggestions
  taken (final style of a kept/edited region equals the suggested one); active time per image with vs without
  pre-fill (the sum of time_spent_ms over the image's revisions).
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.boxes import mask_regions
from backend.core.geometry import to_shape
from backend.core.geometry_raster import rasterize
from backend.db.models import (
    IMAGE_STATUSES,
    Annotation,
    AnnotationRevision,
    Assignment,
    Image,
    ImageScore,
    ImageTag,
    ModelVersion,
    Prediction,
    Review,
    User,
    utcnow,
)
from backend.core.workflow import DONE_STATUSES, HELD_STATUSES, iso
from backend.core.workflow.review import credit_order

RASTER_MAX_SIDE = 512
UNCHANGED_IOU = 0.98
EDITED_IOU = 0.5


# --- maths ---------------------------------------------------------------------------------------------------------


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks (non-zero = inside); 1.0 when both are empty."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def cohen_kappa(labels_a: Sequence[Any], labels_b: Sequence[Any]) -> Optional[float]:
    """Cohen's kappa of two raters over the same items: (p_o − p_e) / (1 − p_e).

    None when there are no items or kappa is undefined (p_e = 1: both raters gave one and the same label to
    every item).
    """
    if len(labels_a) != len(labels_b):
        raise ValueError("both raters must label the same items")
    n = len(labels_a)
    if n == 0:
        return None
    observed = sum(1 for x, y in zip(labels_a, labels_b) if x == y) / n
    count_a, count_b = Counter(labels_a), Counter(labels_b)
    expected = sum(count_a[k] * count_b.get(k, 0) for k in count_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def _scale_coords(value: Any, factor: float) -> Any:
    if isinstance(value, list) and value and isinstance(value[0], (int, float)):
        return [value[0] * factor, value[1] * factor]
    return [_scale_coords(v, factor) for v in value]


def document_mask(regions: Iterable[dict], width: int, height: int, max_side: int = RASTER_MAX_SIDE) -> np.ndarray:
    """Union mask of a document's mask regions (boxes left out), scaled so the long side is at most `max_side`."""
    factor = min(1.0, max_side / max(width, height, 1))
    w, h = max(1, round(width * factor)), max(1, round(height * factor))
    geometries = []
    for region in mask_regions(regions):
        geometry = region.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        if factor != 1.0:
            geometry = {"type": geometry["type"], "coordinates": _scale_coords(geometry["coordinates"], factor)}
        geometries.append(geometry)
    return rasterize(geometries, w, h)


def image_style(document: dict) -> str:
    """The style an annotator gave an image: of the largest styled region, else the first image-level style."""
    best, best_area = None, -1.0
    for region in document.get("regions") or []:
        style = region.get("style")
        if not style:
            continue
        try:
            area = to_shape(region["geometry"]).area
        except Exception:  # unreadable geometry: counts as zero area
            area = 0.0
        if area > best_area:
            best, best_area = style, area
    if best:
        return best
    styles = (document.get("tags") or {}).get("styles") or []
    return styles[0] if styles else "none"


def region_iou(a: dict, b: dict) -> float:
    try:
        sa, sb = to_shape(a), to_shape(b)
        if not sa.is_valid:
            sa = sa.buffer(0)
        if not sb.is_valid:
            sb = sb.buffer(0)
        union = sa.union(sb).area
        return float(sa.intersection(sb).area / union) if union > 0 else 0.0
    except Exception:  # a geometry shapely cannot handle counts as no overlap
        return 0.0


def suggested_style(region: dict) -> Optional[str]:
    """The style a predicted region suggests: its `style`, else the most probable of its `style_probs`."""
    style = region.get("style")
    if isinstance(style, str) and style:
        return style
    probs = region.get("style_probs")
    if isinstance(probs, dict) and probs:
        return max(probs, key=lambda k: probs[k] if isinstance(probs[k], (int, float)) else -1)
    return None


def region_fates(predicted: list[dict], final: list[dict]) -> list[dict]:
    """For each predicted region: {"fate": unchanged|edited|deleted, "iou", "suggested", "final_style"}.

    A predicted region's match is the final region with the same id (the editor keeps a suggestion's id), else the
    unused final region overlapping it most, if that IoU is at least 0.5. Matched with IoU ≥ 0.98: unchanged;
    matched otherwise: edited; no match: deleted. Each final region matches at most one suggestion.
    """
    out: list[dict] = []
    used: set[int] = set()
    for pred in predicted:
        geometry = pred.get("geometry")
        if not isinstance(geometry, dict):
            continue
        match, match_iou = None, 0.0
        if pred.get("id") is not None:
            for i, region in enumerate(final):
                if i not in used and region.get("id") == pred["id"]:
                    match, match_iou = i, region_iou(geometry, region["geometry"])
                    break
        if match is None:
            for i, region in enumerate(final):
                iou = region_iou(geometry, region["geometry"]) if i not in used else 0.0
                if iou >= EDITED_IOU and iou > match_iou:
                    match, match_iou = i, iou
        if match is None:
            fate = "deleted"
        else:
            used.add(match)
            fate = "unchanged" if match_iou >= UNCHANGED_IOU else "edited"
        out.append({
            "fate": fate,
            "iou": round(match_iou, 4),
            "suggested": suggested_style(pred),
            "final_style": final[match].get("style") if match is not None else None,
        })
    return out


def _summary(values: list[float], digits: int = 4) -> dict:
    if not values:
        return {"n": 0, "mean": None, "median": None}
    return {"n": len(values), "mean": round(statistics.fmean(values), digits),
            "median": round(statistics.median(values), digits)}


# --- queries ---------------------------------------------------------------------------------------------------------


def _usernames(session: Session) -> dict[int, str]:
    return dict(session.execute(select(User.id, User.username)).all())


def _day_expression(session: Session, column):
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def status_counts(session: Session) -> dict:
    counts = dict(session.execute(select(Image.status, func.count()).group_by(Image.status)).all())
    return {status: counts.get(status, 0) for status in IMAGE_STATUSES}


def throughput(session: Session, since: datetime) -> dict:
    users = _usernames(session)
    day = _day_expression(session, AnnotationRevision.created_at).label("day")
    rows = session.execute(
        select(AnnotationRevision.author_id, day, func.count(), func.count(func.distinct(AnnotationRevision.image_id)),
               func.coalesce(func.sum(AnnotationRevision.time_spent_ms), 0))
        .where(AnnotationRevision.created_at >= since, AnnotationRevision.author_id.is_not(None))
        .group_by(AnnotationRevision.author_id, day)
        .order_by(day, AnnotationRevision.author_id)
    ).all()
    per_day = []
    totals: dict[int, dict] = {}
    for author, day_value, saves, images, active in rows:
        per_day.append({"date": day_value, "user_id": author, "username": users.get(author), "saves": saves,
                        "images": images, "active_ms": int(active)})
        total = totals.setdefault(author, {"user_id": author, "username": users.get(author), "saves": 0,
                                           "active_ms": 0, "days": 0})
        total["saves"] += saves
        total["active_ms"] += int(active)
        total["days"] += 1
    images = dict(session.execute(
        select(AnnotationRevision.author_id, func.count(func.distinct(AnnotationRevision.image_id)))
        .where(AnnotationRevision.created_at >= since, AnnotationRevision.author_id.is_not(None))
        .group_by(AnnotationRevision.author_id)
    ).all())
    decisions = _decisions_by_annotator(session, since)
    per_annotator = []
    for author, total in sorted(totals.items()):
        total["images"] = images.get(author, 0)
        total["active_ms_per_image"] = round(total["active_ms"] / total["images"]) if total["images"] else None
        total["images_per_active_hour"] = (round(total["images"] / (total["active_ms"] / 3_600_000), 2)
                                           if total["active_ms"] else None)
        total.update(decisions.get(author, {"accepted": 0, "rejected": 0}))
        per_annotator.append(total)
    return {"per_annotator": per_annotator, "per_day": per_day}


def _primary_annotators(session: Session, image_ids: Iterable[int]) -> dict[int, int]:
    """image id -> who gets the credit (as workflow.primary_annotator: revision authors, annotators first; the
    queue's primary assignment only for an image nobody saved)."""
    ids = list(set(image_ids))
    out: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for image_id, user_id in session.execute(
            select(Assignment.image_id, Assignment.user_id)
            .where(Assignment.image_id.in_(chunk), Assignment.kind == "primary")
            .order_by(Assignment.created_at, Assignment.id)
        ):
            out[image_id] = user_id
        for image_id, user_id in session.execute(  # the last one wins
            select(AnnotationRevision.image_id, AnnotationRevision.author_id)
            .join(User, User.id == AnnotationRevision.author_id)
            .where(AnnotationRevision.image_id.in_(chunk))
            .order_by(*credit_order())
        ):
            out[image_id] = user_id
    return out


def _decisions_by_annotator(session: Session, since: datetime) -> dict[int, dict]:
    rows = session.execute(select(Review.image_id, Review.decision).where(Review.created_at >= since)).all()
    owners = _primary_annotators(session, (r.image_id for r in rows))
    out: dict[int, dict] = defaultdict(lambda: {"accepted": 0, "rejected": 0})
    for image_id, decision in rows:
        owner = owners.get(image_id)
        if owner is not None:
            out[owner]["accepted" if decision == "accept" else "rejected"] += 1
    return dict(out)


def agreement(session: Session, limit: int = 500) -> dict:
    """Mask IoU and style kappa per pair and per annotator over completed agreement copies (newest `limit`)."""
    users = _usernames(session)
    rows = session.execute(
        select(Assignment.image_id, Assignment.user_id, Assignment.document, Image.width, Image.height,
               Annotation.document, Assignment.completed_at)
        .join(Image, Image.id == Assignment.image_id)
        .join(Annotation, Annotation.image_id == Image.id)
        .where(Assignment.kind == "agreement", Assignment.completed_at.is_not(None),
               Image.status.in_(DONE_STATUSES))
        .order_by(Assignment.completed_at.desc())
        .limit(limit)
    ).all()
    owners = _primary_annotators(session, (r[0] for r in rows))
    items = []
    for image_id, second, copy_doc, width, height, main_doc, completed_at in rows:
        first = owners.get(image_id)
        if first is None or first == second:
            continue
        copy_doc, main_doc = copy_doc or {}, main_doc or {}
        iou = mask_iou(document_mask(main_doc.get("regions") or [], width, height),
                       document_mask(copy_doc.get("regions") or [], width, height))
        items.append({"image_id": image_id, "first": first, "second": second, "iou": iou,
                      "style_first": image_style(main_doc), "style_second": image_style(copy_doc),
                      "week": _week_start(completed_at)})

    def block(selected: list[dict], as_rater: Optional[int] = None) -> dict:
        if as_rater is None:
            a = [it["style_first"] for it in selected]
            b = [it["style_second"] for it in selected]
        else:  # the annotator's label first, the other's second
            a = [it["style_first"] if it["first"] == as_rater else it["style_second"] for it in selected]
            b = [it["style_second"] if it["first"] == as_rater else it["style_first"] for it in selected]
        kappa = cohen_kappa(a, b)
        return {
            "images": len(selected),
            "mean_iou": round(statistics.fmean(it["iou"] for it in selected), 4) if selected else None,
            "style_agreement": round(sum(x == y for x, y in zip(a, b)) / len(a), 4) if a else None,
            "kappa": round(kappa, 4) if kappa is not None else None,
        }

    pairs: dict[tuple[int, int], list[dict]] = defaultdict(list)
    people: dict[int, list[dict]] = defaultdict(list)
    weeks: dict[str, list[dict]] = defaultdict(list)
    for it in items:
        weeks[it["week"]].append(it)
        pairs[tuple(sorted((it["first"], it["second"])))].append(it)
        people[it["first"]].append(it)
        people[it["second"]].append(it)
    return {
        "overall": block(items),
        "pairs": [{"annotators": [{"id": a, "username": users.get(a)}, {"id": b, "username": users.get(b)}],
                   **block(sel, as_rater=a)} for (a, b), sel in sorted(pairs.items())],
        "per_annotator": [{"user_id": u, "username": users.get(u), **block(sel, as_rater=u)}
                          for u, sel in sorted(people.items())],
        "per_week": [{"week": week, **block(sel)} for week, sel in sorted(weeks.items())],  # over time (UTC weeks)
        "images": [{"image_id": it["image_id"], "first": it["first"], "second": it["second"],
                    "iou": round(it["iou"], 4), "styles": [it["style_first"], it["style_second"]]}
                   for it in items[:50]],
    }


def _week_start(moment: Optional[datetime]) -> str:
    """The Monday (UTC) of the week a moment falls in, as YYYY-MM-DD."""
    day = (moment.astimezone(timezone.utc) if moment.tzinfo else moment).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def _model_regions(document: dict) -> list[dict]:
    return [r for r in (document or {}).get("regions") or [] if r.get("source") == "model"]


def prefill_usefulness(session: Session, limit: int = 500) -> dict:
    """Pre-fill usefulness per segmenter version over the newest `limit` accepted images (see module docstring)."""
    images = session.execute(
        select(Image.id, Image.width, Image.height, Annotation.document)
        .join(Annotation, Annotation.image_id == Image.id)
        .where(Image.status == "accepted")
        .order_by(Image.updated_at.desc(), Image.id.desc())
        .limit(limit)
    ).all()
    ids = [r.id for r in images]
    revisions: dict[int, list] = defaultdict(list)
    for start in range(0, len(ids), 500):
        for image_id, document, spent in session.execute(
            select(AnnotationRevision.image_id, AnnotationRevision.document, AnnotationRevision.time_spent_ms)
            .where(AnnotationRevision.image_id.in_(ids[start:start + 500]))
        ):
            revisions[image_id].append((document or {}, spent or 0))
    names = dict(session.execute(select(ModelVersion.id, ModelVersion.name)).all())

    per_model: dict[Optional[int], dict] = {}
    without: list[float] = []
    for image_id, width, height, final_doc in images:
        revs = revisions.get(image_id, [])
        spent = float(sum(s for _, s in revs))
        used = [r for doc, _ in revs for r in _model_regions(doc)]
        if not used:
            if revs:
                without.append(spent)
            continue
        versions = [r.get("model_version") for r in used if r.get("model_version")]
        version = Counter(versions).most_common(1)[0][0] if versions else None
        stmt = select(Prediction).where(Prediction.image_id == image_id)
        if version is not None:
            stmt = stmt.where(Prediction.segmenter_id == version)
        prediction = session.scalar(stmt.order_by(Prediction.created_at.desc(), Prediction.id.desc()).limit(1))
        if version is None and prediction is not None:
            version = prediction.segmenter_id
        entry = per_model.setdefault(version, {"ious": [], "times": [], "fates": Counter(), "suggested_styles": 0,
                                               "styles_taken": 0, "images": 0, "without_prediction": 0})
        entry["images"] += 1
        entry["times"].append(spent)
        final_regions = (final_doc or {}).get("regions") or []
        predicted = list(prediction.regions or []) if prediction is not None else []
        if prediction is None:
            # The Prediction row is gone (e.g. model deleted): judge against the first pre-filled revision.
            entry["without_prediction"] += 1
            first = next((doc for doc, _ in revs if _model_regions(doc)), {})
            predicted = _model_regions(first)
        entry["ious"].append(mask_iou(document_mask(predicted, width, height),
                                      document_mask(final_regions, width, height)))
        for fate in region_fates(predicted, final_regions):
            entry["fates"][fate["fate"]] += 1
            if fate["suggested"] and fate["fate"] != "deleted":
                entry["suggested_styles"] += 1
                entry["styles_taken"] += int(fate["final_style"] == fate["suggested"])

    out = []
    for version, entry in sorted(per_model.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        fates = entry["fates"]
        suggested = sum(fates.values())
        out.append({
            "model_version_id": version,
            "model_name": names.get(version) if version is not None else None,
            "images": entry["images"],
            "mask_iou": _summary(entry["ious"]),
            "regions": {
                "suggested": suggested,
                **{k: fates.get(k, 0) for k in ("unchanged", "edited", "deleted")},
                **{f"share_{k}": round(fates.get(k, 0) / suggested, 4) if suggested else None
                   for k in ("unchanged", "edited", "deleted")},
            },
            "styles": {"suggested": entry["suggested_styles"], "taken": entry["styles_taken"],
                       "share_taken": round(entry["styles_taken"] / entry["suggested_styles"], 4)
                       if entry["suggested_styles"] else None},
            "active_ms_per_image": _summary(entry["times"], 1),
            "images_without_prediction": entry["without_prediction"],
        })
    with_all = [t for e in per_model.values() for t in e["times"]]
    return {
        "sampled_accepted_images": len(images),
        "per_model_version": out,
        "active_ms_per_image": {"with_prefill": _summary(with_all, 1), "without_prefill": _summary(without, 1)},
    }


def workflow_stats(session: Session, days: int = 30, limit: int = 500, now: Optional[datetime] = None) -> dict:
    """Everything GET /api/v1/stats returns."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    counts = status_counts(session)
    flagged = session.scalar(select(func.count(func.distinct(ImageTag.image_id))).where(ImageTag.kind == "flag"))
    return {
        "generated_at": iso(now),
        "window": {"days": days, "since": iso(since), "sample": limit},
        "images": {"total": sum(counts.values()), "by_status": counts, "flagged": flagged,
                   "leased": session.scalar(select(func.count()).select_from(Image).where(
                       Image.status.in_(HELD_STATUSES), Image.assignee_id.is_not(None),
                       Image.lock_expires_at >= now)),
                   "scored": dict(session.execute(
                       select(ImageScore.strategy, func.count()).group_by(ImageScore.strategy)).all())},
        "throughput": throughput(session, since),
        "agreement": agreement(session, limit),
        "prefill": prefill_usefulness(session, limit),
    }


def my_stats(session: Session, user: User, tz_offset_minutes: int = 0, now: Optional[datetime] = None) -> dict:
    """The caller's day (in their time zone) for the editor's home view."""
    now = now or utcnow()
    offset = timedelta(minutes=tz_offset_minutes)
    local_today: date = (now + offset).date()
    start = datetime(local_today.year, local_today.month, local_today.day, tzinfo=timezone.utc) - offset
    saves, images, active = session.execute(
        select(func.count(), func.count(func.distinct(AnnotationRevision.image_id)),
               func.coalesce(func.sum(AnnotationRevision.time_spent_ms), 0))
        .where(AnnotationRevision.author_id == user.id, AnnotationRevision.created_at >= start)
    ).one()
    mine = select(Assignment.image_id).where(Assignment.user_id == user.id, Assignment.kind == "primary")
    by_status = dict(session.execute(
        select(Image.status, func.count()).where(Image.id.in_(mine)).group_by(Image.status)).all())
    reviews_today = dict(session.execute(
        select(Review.decision, func.count())
        .where(Review.image_id.in_(mine), Review.created_at >= start)
        .group_by(Review.decision)).all())
    copies_today = session.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.user_id == user.id, Assignment.kind == "agreement", Assignment.completed_at >= start))
    return {
        "date": local_today.isoformat(),
        "today": {"saves": saves, "images": images, "active_ms": int(active),
                  "accepted": reviews_today.get("accept", 0), "rejected": reviews_today.get("reject", 0),
                  "agreement_copies": copies_today},
        "my_images": {status: by_status.get(status, 0) for status in IMAGE_STATUSES},
        "to_fix": session.scalar(select(func.count()).select_from(Image).where(
            Image.assignee_id == user.id, Image.status == "rejected")),
    }
