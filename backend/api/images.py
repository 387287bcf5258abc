"""/api/v1 images routes."""
from flask import Blueprint

bp = Blueprint("images", __name__, url_prefix="/api/v1")
