"""One blueprint per resource, all under /api/v1."""
from __future__ import annotations

from importlib import import_module

from werkzeug.routing import IntegerConverter

from backend.web.api.schemas import MAX_DB_INT
from backend.web.policy import ROUTES


class DbIntConverter(IntegerConverter):
    """`<int:...>` in every route: at most MAX_DB_INT, so an id the database cannot hold never reaches a query
    (it simply matches no route: 404)."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(map, fixed_digits, min, MAX_DB_INT if max is None else max, signed)

RESOURCES = ("auth", "images", "annotations", "taxonomy", "queue", "exports", "models", "jobs", "reviews", "review_info",
             "stats", "meta", "dataset")


def register_api(app) -> None:
    app.url_map.converters["int"] = DbIntConverter
    for name in RESOURCES:
        module = import_module(f"{__name__}.{name}")
        app.register_blueprint(module.bp)
    unruled = sorted(name for name, view in app.view_functions.items()
                     if hasattr(view, "endpoint_meta") and name not in ROUTES)
    if unruled:  # the role of an @endpoint comes from its rule: without one it would answer 500s
        raise RuntimeError(f"add these routes to backend/web/policy.py ROUTES: {', '.join(unruled)}")
