"""/api/v1/taxonomy: styles, motifs and flags."""
from __future__ import annotations

from flask import Blueprint, current_app

from backend.core.taxonomy import load_taxonomy
from backend.web.api.endpoint import endpoint

bp = Blueprint("taxonomy", __name__, url_prefix="/api/v1")


@bp.get("/taxonomy")
@endpoint("Styles (key, label, colour, shortcut, trainable), the motif vocabulary and the image flags")
def get_taxonomy():
    return load_taxonomy(current_app.config["WORKSPACE"])
