"""Settings from the environment (INKLABEL_*, DATABASE_URL) with embedded defaults.

The defaults give the embedded setup: a workspace folder `annotations/` holding a SQLite database, the blob store,
exports and models. `load_config()` returns a plain dict that `create_app` merges into `app.config`.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_WORKSPACE = "annotations"


class SetupError(RuntimeError):
    """The tool cannot start as configured; the message says what to do (manage.py prints it without a traceback)."""

INSECURE_SECRET_KEYS = {"", "dev", "changeme", "secret", "change-me", "default"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def normalize_database_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the driver in requirements.txt)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def workspace_path() -> Path:
    return Path(os.environ.get("INKLABEL_WORKSPACE", DEFAULT_WORKSPACE)).resolve()


def load_config() -> dict:
    workspace = workspace_path()
    return {
        "WORKSPACE": str(workspace),
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(
            os.environ.get("DATABASE_URL") or f"sqlite:///{workspace / 'inklabel.db'}"
        ),
        "SECRET_KEY": os.environ.get("INKLABEL_SECRET_KEY"),  # None: read from the workspace (made by `init`)
        # Whole request bodies (uploads included); larger requests get a 413 before any parsing.
        "MAX_CONTENT_LENGTH": _int("INKLABEL_MAX_REQUEST_BYTES", 200 * 1024 * 1024),
        "MAX_FORM_MEMORY_SIZE": _int("INKLABEL_MAX_FORM_MEMORY_BYTES", 1024 * 1024),
        "MAX_FORM_PARTS": _int("INKLABEL_MAX_FORM_PARTS", 200),
        "MAX_UPLOAD_BYTES": _int("INKLABEL_MAX_UPLOAD_BYTES", 50 * 1024 * 1024),
        "MAX_JSON_BYTES": _int("INKLABEL_MAX_JSON_BYTES", 8 * 1024 * 1024),
        "MAX_IMAGE_PIXELS": _int("INKLABEL_MAX_IMAGE_PIXELS", 100_000_000),
        # Image decoding (backend/media/imaging.py, decode_slots.py): memory a decode may need, large decodes at once.
        "MAX_DECODE_MB": _int("INKLABEL_MAX_DECODE_MB", 512),
        "MAX_CONCURRENT_DECODES": _int("INKLABEL_MAX_CONCURRENT_DECODES", 2),
        "MAX_REGION_VERTICES": _int("INKLABEL_MAX_REGION_VERTICES", 10_000),
        "MAX_REGIONS": _int("INKLABEL_MAX_REGIONS", 5_000),
        "DISPLAY_MAX_SIDE": _int("INKLABEL_DISPLAY_MAX_SIDE", 2048),
        "THUMB_MAX_SIDE": _int("INKLABEL_THUMB_MAX_SIDE", 256),
        "LOW_CONCENTRATION": _float("INKLABEL_LOW_CONCENTRATION", 0.25),
        # pre-fill regions only on the body in photos with skin (backend/ml/skin.py); 0 for photos of other things
        "PREFILL_ON_BODY": os.environ.get("INKLABEL_PREFILL_ON_BODY", "1") != "0",
        "LOCK_SECONDS": _int("INKLABEL_LOCK_SECONDS", 15 * 60),
        "SESSION_HOURS": _int("INKLABEL_SESSION_HOURS", 12),
        # Login back-off (backend/web/auth.py), per (user name, client address): free failures in the window, then
        # a wait that doubles with each further failure, from LOGIN_BACKOFF_SECONDS up to the window.
        "LOGIN_MAX_FAILURES": _int("INKLABEL_LOGIN_MAX_FAILURES", 5),
        "LOGIN_BACKOFF_SECONDS": _float("INKLABEL_LOGIN_BACKOFF_SECONDS", 1.0),
        "LOGIN_WINDOW_SECONDS": _int("INKLABEL_LOGIN_WINDOW_SECONDS", 15 * 60),
        "PROXY_COUNT": _int("INKLABEL_PROXY_COUNT", 0),  # reverse proxies in front that append X-Forwarded-For
        "BROKER_URL": os.environ.get("INKLABEL_BROKER_URL") or None,
        "JOB_WORKERS": _int("INKLABEL_JOB_WORKERS", 1),
        "DEVICE": os.environ.get("INKLABEL_DEVICE", "auto"),
        # load the current models in the background when a server (serve, gunicorn worker) starts, so the first
        # pre-fill of the process does not wait seconds for them
        "WARM_MODELS": os.environ.get("INKLABEL_WARM_MODELS", "1") == "1",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("INKLABEL_SECURE_COOKIES", "0") == "1",
        "SESSION_COOKIE_NAME": "inklabel_session",
        "JSON_SORT_KEYS": False,
        "TESTING": False,
    }
