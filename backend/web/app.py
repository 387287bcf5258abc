"""The web app factory: `create_app(config=None)`; `config` overrides settings read from the environment.

Also the workspace's folders and secret key (`ensure_workspace`), the front-end pages and the security headers
every response carries. `backend.create_app` is this app plus the command line.
"""
from __future__ import annotations

import logging
import secrets
import sys
from pathlib import Path

from flask import Flask, jsonify, send_from_directory

from backend.config import INSECURE_SECRET_KEYS, SetupError, load_config, normalize_database_url

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
SECRET_KEY_FILE = "secret_key"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def ensure_workspace(workspace: str | Path) -> Path:
    """Create the workspace folders and its secret key if missing (what `init` does; every command may call it)."""
    from backend.core.taxonomy import ensure_taxonomy

    root = Path(workspace)
    for sub in ("", "blobs", "exports", "models", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    key_file = root / SECRET_KEY_FILE
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    ensure_taxonomy(root)
    return root


MIN_SECRET_KEY_LENGTH = 32  # anything shorter can be guessed offline from one signed cookie


def _secret_key(app: Flask) -> str:
    key = app.config.get("SECRET_KEY")
    if key is None:
        key_file = Path(app.config["WORKSPACE"]) / SECRET_KEY_FILE
        key = key_file.read_text().strip() if key_file.exists() else ""
    if (key in INSECURE_SECRET_KEYS or len(key) < MIN_SECRET_KEY_LENGTH) and not app.config.get("TESTING"):
        raise SetupError(
            "No usable secret key: run `python manage.py init` to make one in the workspace, or set "
            f"INKLABEL_SECRET_KEY to a long random value (at least {MIN_SECRET_KEY_LENGTH} characters; "
            "python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    return key or secrets.token_hex(32)


def create_app(config: dict | None = None, full: bool = True) -> Flask:
    """The web app. `backend.create_app` adds the command line (backend/commands) to it. `full=False` leaves out the
    HTTP API and Flask-Migrate (whose imports are most of a command's start-up); upgrades join Flask-Migrate when
    needed."""
    from backend.db import engine as dbsetup
    from backend.web.errors import register_error_handlers
    from backend.db.extensions import db
    from backend.db.migrate import init_migrate
    from backend.web.observability import init_observability

    app = Flask("backend", static_folder=None)  # the name (logger, root path) it had as backend/__init__.py
    app.config.update(load_config())
    app.config.update(config or {})
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if app.config.get("CREATE_WORKSPACE", True):
        ensure_workspace(app.config["WORKSPACE"])
    app.config["SECRET_KEY"] = _secret_key(app)
    _configure_decoding(app)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", dbsetup.engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    if full:
        init_migrate(app)
    with app.app_context():
        dbsetup.setup_engine(db)

    register_error_handlers(app)
    init_observability(app)
    if full:
        from backend.web.api import register_api

        register_api(app)
    _register_pages(app)
    _register_headers(app)
    return app


def _configure_decoding(app: Flask) -> None:
    from backend import media

    slots = Path(app.config["WORKSPACE"]) / "tmp" if app.config.get("CREATE_WORKSPACE", True) else None
    media.DECODE_LIMITS = (app.config["MAX_DECODE_MB"], app.config["MAX_CONCURRENT_DECODES"], slots)
    if "backend.media.imaging" in sys.modules:  # else imaging applies them when imported
        sys.modules["backend.media.imaging"].set_decode_limits(*media.DECODE_LIMITS)


def _register_pages(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/")
    def index():
        return send_from_directory(FRONTEND_DIR, "index.html", max_age=0)

    @app.get("/<path:filename>")
    def frontend_file(filename: str):
        # send_from_directory refuses paths that leave FRONTEND_DIR (traversal → 404).
        if filename.startswith("api/"):
            from backend.core.errors import not_found

            raise not_found("route")
        return send_from_directory(FRONTEND_DIR, filename, max_age=0)


def _register_headers(app: Flask) -> None:
    from backend.db.engine import set_reads_only

    @app.before_request
    def _writes_by_default():
        set_reads_only(False)  # an @endpoint that only reads turns this on for itself

    security_headers = (("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", CSP),
                        ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"))

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        present = {key.lower() for key in headers.keys()}  # one pass instead of a scan per setdefault
        headers.extend([(key, value) for key, value in security_headers if key.lower() not in present])
        if "cache-control" not in present and response.mimetype == "application/json":
            headers["Cache-Control"] = "no-store"
        return response
