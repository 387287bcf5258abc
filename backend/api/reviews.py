"""/api/v1 reviews routes."""
from flask import Blueprint

bp = Blueprint("reviews", __name__, url_prefix="/api/v1")
