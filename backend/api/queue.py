"""/api/v1 queue routes."""
from flask import Blueprint

bp = Blueprint("queue", __name__, url_prefix="/api/v1")
