"""What the dataset looks like, for the ML console's dashboard and its low-concentration gallery (no Flask).

    dataset_overview(session, threshold=0.25)   counts by status / style / flag, the concentration histogram,
                                                queue depth
    concentration_page(session, ...)            images with their latest predicted concentration, lowest first

Concentration is the share of an image's pixels the segmenter calls tattoo; each image's newest cached prediction
(table predictions) gives it. Search demotes photos under the threshold (25 % by default, INKLABEL_LOW_CONCENTRATION):
artists' portraits, store fronts.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from backend.db.models import Image, ImageScore, ImageTag, Prediction, Region
from backend.core.workflow_stats import status_counts

HISTOGRAM_BINS = 20


def latest_concentration():
    """A subquery (image_id, concentration) from each image's newest prediction that has one."""
    newest = (select(Prediction.image_id, func.max(Prediction.id).label("pid"))
              .where(Prediction.concentration.is_not(None)).group_by(Prediction.image_id).subquery())
    return (select(Prediction.image_id, Prediction.concentration)
            .join(newest, Prediction.id == newest.c.pid).subquery())


def concentration_histogram(session: Session, threshold: float, bins: int = HISTOGRAM_BINS) -> dict:
    conc = latest_concentration()
    bucket = func.floor(conc.c.concentration * bins)  # 1.0 lands in bin `bins`: folded into the last below
    rows = session.execute(select(bucket, func.count()).group_by(bucket)).all()
    counts = [0] * bins
    for index, n in rows:
        counts[max(0, min(bins - 1, int(index)))] += n
    below = session.scalar(select(func.count()).select_from(conc).where(conc.c.concentration < threshold)) or 0
    return {"bins": [round(i / bins, 4) for i in range(bins + 1)], "counts": counts, "threshold": threshold,
            "below_threshold": below, "with_prediction": sum(counts)}


def dataset_overview(session: Session, threshold: float) -> dict:
    total = session.scalar(select(func.count()).select_from(Image)) or 0
    tag_counts = session.execute(select(ImageTag.kind, ImageTag.key, func.count())
                                 .group_by(ImageTag.kind, ImageTag.key)).all()
    images_by_style = {key: n for kind, key, n in tag_counts if kind == "style"}
    by_flag = {key: n for kind, key, n in tag_counts if kind == "flag"}
    regions_by_style = {key or "(no style)": n for key, n in session.execute(
        select(Region.style, func.count()).group_by(Region.style)).all()}
    new_free = session.scalar(select(func.count()).select_from(Image).where(
        Image.status == "new", Image.assignee_id.is_(None))) or 0
    rework = session.scalar(select(func.count()).select_from(Image).where(Image.status == "rejected")) or 0
    review = session.scalar(select(func.count()).select_from(Image).where(Image.status == "submitted")) or 0
    scored = session.scalar(select(func.count(func.distinct(ImageScore.image_id)))) or 0
    return {
        "images": {"total": total, "by_status": status_counts(session),
                   "flagged": session.scalar(select(func.count(func.distinct(ImageTag.image_id)))
                                             .where(ImageTag.kind == "flag")) or 0},
        "styles": {"images": dict(sorted(images_by_style.items())), "regions": dict(sorted(regions_by_style.items()))},
        "flags": dict(sorted(by_flag.items())),
        "regions": sum(regions_by_style.values()),
        "concentration": concentration_histogram(session, threshold),
        "queue": {"to_annotate": new_free, "to_review": review, "to_fix": rework, "scored": scored},
    }


def concentration_page(session: Session, threshold: Optional[float], flag: Optional[str], order: str,
                       page: int, per_page: int) -> dict:
    """Images for the review gallery. order "concentration": lowest first (images without a prediction last);
    "flag": flagged images first, then by concentration. `threshold`: only images under it; `flag`: only images
    with that flag."""
    conc = latest_concentration()
    stmt = select(Image, conc.c.concentration).outerjoin(conc, conc.c.image_id == Image.id)
    if threshold is not None:
        stmt = stmt.where(conc.c.concentration < threshold)
    if flag:
        stmt = stmt.where(Image.id.in_(select(ImageTag.image_id).where(ImageTag.kind == "flag", ImageTag.key == flag)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    missing_last = case((conc.c.concentration.is_(None), 1), else_=0)
    keys = [missing_last, conc.c.concentration, Image.id]
    if order == "flag":
        flagged = select(ImageTag.image_id).where(ImageTag.kind == "flag")
        keys.insert(0, case((Image.id.in_(flagged), 0), else_=1))
    rows = session.execute(stmt.order_by(*keys).limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": [{"id": img.id, "status": img.status, "flags": list(img.flags or []),
                       "styles": list(img.styles or []), "width": img.width, "height": img.height,
                       "original_filename": img.original_filename, "concentration": value,
                       "thumb_url": f"/api/v1/images/{img.id}/file?size=thumb"} for img, value in rows],
            "total": total, "page": page, "per_page": per_page}
