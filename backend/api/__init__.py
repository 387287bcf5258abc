"""One blueprint per resource, all under /api/v1."""
from __future__ import annotations

from importlib import import_module

RESOURCES = ("auth", "images", "annotations", "taxonomy", "queue", "exports", "models", "jobs", "reviews", "stats", "meta")


def register_api(app) -> None:
    for name in RESOURCES:
        module = import_module(f"{__name__}.{name}")
        app.register_blueprint(module.bp)
