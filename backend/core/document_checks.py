"""What a valid annotation document is: its regions (`clean_region`) and image-level tags (`clean_tags`), checked
and normalised before any save (the editor's, an agreement copy's, an import's). A refusal is Invalid (422) naming
the region index and the reason: ``details = {"region": i, "reason": ...}``.
"""
from __future__ import annotations

import math
import re
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import select

from backend.core.boxes import REGION_KINDS, validate_box
from backend.core.errors import Invalid
from backend.core.geometry import DEFAULT_MAX_VERTICES, GeometryError, validate_geometry
from backend.core.taxonomy import flag_keys, load_taxonomy, style_keys
from backend.db.extensions import db
from backend.db.models import REGION_SOURCES, ModelVersion

REGION_KEYS = ("id", "kind", "geometry", "style", "motifs", "source", "model_version", "confidence")
REGION_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"  # also the API schemas' pattern for region ids
REGION_ID = re.compile(REGION_ID_PATTERN)
MAX_MOTIFS = 50
MAX_TAG_LENGTH = 64
MAX_TAGS = 50
MAX_ID = 2**31 - 1  # integer primary keys (PostgreSQL INTEGER): larger ids cannot exist and must not reach SQL


def _region_error(index: int, reason: str) -> Invalid:
    return Invalid("invalid_region", f"Region {index}: {reason}", {"region": index, "reason": reason})


def _string_list(value: Any, what: str, limit: int) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list of strings")
    if len(value) > limit:
        raise ValueError(f"{what} has {len(value)} entries; at most {limit} are allowed")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_TAG_LENGTH:
            raise ValueError(f"{what} entries must be non-empty strings of at most {MAX_TAG_LENGTH} characters")
        item = item.strip()
        if item not in out:
            out.append(item)
    return out


def clean_region(index: int, raw: Any, width: int, height: int, styles: set[str],
                 max_vertices: int = DEFAULT_MAX_VERTICES) -> dict:
    """One region checked and normalised, or Invalid (422) naming `index`.

    id: 1-64 characters of letters, digits and ``_ . : -`` (a uuid hex is assigned when missing); kind: "mask"
    (default) or "box"; geometry: for a mask see geometry.validate_geometry (clipped/repaired, never refused for
    being repairable), for a box boxes.validate_box (an axis-aligned rectangle, clipped, canonical ring); style: a taxonomy key or
    null; motifs: at most 50 strings of at most 64 characters; source: human | model | assist (default human);
    model_version: optional id of a ModelVersion; confidence: optional number in [0, 1].
    """
    if not isinstance(raw, dict):
        raise _region_error(index, "a region must be an object")
    unknown = sorted(set(raw) - set(REGION_KEYS))
    if unknown:
        raise _region_error(index, f"unknown field(s): {', '.join(map(str, unknown))[:200]}")
    region_id = raw.get("id")
    if region_id is None:
        region_id = uuid.uuid4().hex
    elif not isinstance(region_id, str) or not REGION_ID.match(region_id):
        raise _region_error(index, "id must be 1-64 letters, digits, '_', '.', ':' or '-'")
    kind = raw.get("kind", "mask")
    if kind not in REGION_KINDS:
        raise _region_error(index, f"kind must be one of {', '.join(REGION_KINDS)}")
    try:
        if kind == "box":
            geometry = validate_box(raw.get("geometry"), width, height)
        else:
            geometry = validate_geometry(raw.get("geometry"), width, height, max_vertices)
    except GeometryError as err:
        raise _region_error(index, f"geometry: {err}") from None
    style = raw.get("style")
    if style is not None and (not isinstance(style, str) or style not in styles):
        raise _region_error(index, f"unknown style {str(style)[:64]!r}; see GET /api/v1/taxonomy")
    try:
        motifs = _string_list(raw.get("motifs", []), "motifs", MAX_MOTIFS)
    except ValueError as err:
        raise _region_error(index, str(err)) from None
    source = raw.get("source", "human")
    if source not in REGION_SOURCES:
        raise _region_error(index, f"source must be one of {', '.join(REGION_SOURCES)}")
    model_version = raw.get("model_version")
    if model_version is not None and (isinstance(model_version, bool) or not isinstance(model_version, int)
                                      or not 1 <= model_version <= MAX_ID):
        raise _region_error(index, "model_version must be a model version id")
    confidence = raw.get("confidence")
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
                or not math.isfinite(confidence) or not 0 <= confidence <= 1:
            raise _region_error(index, "confidence must be a number from 0 to 1")
        confidence = float(confidence)
    return {
        "id": region_id,
        "kind": kind,
        "geometry": geometry,
        "style": style,
        "motifs": motifs,
        "source": source,
        "model_version": model_version,
        "confidence": confidence,
    }


def clean_tags(tags: Any, taxonomy: dict) -> dict:
    """Image-level tags: known style keys and flag keys only, duplicates dropped (422 otherwise)."""
    if tags is None:
        tags = {}
    if not isinstance(tags, dict) or set(tags) - {"styles", "flags"}:
        raise Invalid("invalid_tags", "tags must be an object with 'styles' and 'flags' lists")
    out = {}
    for key, known, code in (("styles", style_keys(taxonomy), "unknown_style"),
                             ("flags", flag_keys(taxonomy), "unknown_flag")):
        try:
            values = _string_list(tags.get(key, []), f"tags.{key}", MAX_TAGS)
        except ValueError as err:
            raise Invalid("invalid_tags", str(err)) from None
        unknown = [v for v in values if v not in known]
        if unknown:
            raise Invalid(code, f"Unknown {key[:-1]} key(s) in tags: {', '.join(unknown)[:300]}; "
                                "see GET /api/v1/taxonomy", {key: unknown})
        out[key] = values
    return out


def clean_regions(regions: Any, width: int, height: int, taxonomy: dict, max_vertices: int,
                  max_regions: int) -> list[dict]:
    if not isinstance(regions, list):
        raise Invalid("invalid_regions", "regions must be a list")
    if len(regions) > max_regions:
        raise Invalid("too_many_regions", f"{len(regions)} regions; at most {max_regions} per image")
    styles = style_keys(taxonomy)
    cleaned = [clean_region(i, raw, width, height, styles, max_vertices) for i, raw in enumerate(regions)]
    seen: dict[str, int] = {}
    for i, region in enumerate(cleaned):
        if region["id"] in seen:
            raise _region_error(i, f"duplicate id {region['id']!r} (also region {seen[region['id']]})")
        seen[region["id"]] = i
    return cleaned


def check_model_versions(regions: list[dict]) -> None:
    """422 naming the first region whose model_version is not a known ModelVersion id."""
    wanted = {r["model_version"] for r in regions if r["model_version"] is not None}
    if not wanted:
        return
    found = set(db.session.scalars(select(ModelVersion.id).where(ModelVersion.id.in_(wanted))))
    for i, region in enumerate(regions):
        if region["model_version"] is not None and region["model_version"] not in found:
            raise _region_error(i, f"unknown model_version {region['model_version']}")


def clean_document(regions: Any, tags: Any, width: int, height: int) -> tuple[list[dict], dict]:
    """Regions and tags checked and normalised against the taxonomy and the configured limits (Invalid otherwise)."""
    config = current_app.config
    taxonomy = load_taxonomy(config["WORKSPACE"])
    cleaned = clean_regions(regions, width, height, taxonomy, config.get("MAX_REGION_VERTICES", DEFAULT_MAX_VERTICES),
                            config.get("MAX_REGIONS", 5000))
    return cleaned, clean_tags(tags, taxonomy)
