"""/api/v1 exports routes."""
from flask import Blueprint

bp = Blueprint("exports", __name__, url_prefix="/api/v1")
