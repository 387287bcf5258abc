"""/api/v1 annotations routes."""
from flask import Blueprint

bp = Blueprint("annotations", __name__, url_prefix="/api/v1")
