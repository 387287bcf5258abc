"""/api/v1 stats routes."""
from flask import Blueprint

bp = Blueprint("stats", __name__, url_prefix="/api/v1")
