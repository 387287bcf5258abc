"""The OpenAPI document of the API."""
from flask import Blueprint, current_app, jsonify

from backend.web.api.endpoint import endpoint
from backend.web.api.spec import build_openapi

bp = Blueprint("meta", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
@endpoint("The OpenAPI 3.1 document of this API")
def openapi():
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_openapi(current_app)
    return jsonify(current_app.extensions["openapi"])
