"""Apps on a temporary workspace, on SQLite or on the PostgreSQL database named by TEST_DATABASE_URL, their users,
and an API client that sends a Bearer token. The fixtures built on these are in tests/conftest.py."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from backend import create_app
from backend.config import normalize_database_url
from backend.db.extensions import db
from backend.db.models import Base

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL_TATTOOS = SHARED_DATA / "real-tattoos"

_pg_state: dict = {}


def postgres_url() -> str | None:
    """The PostgreSQL test database URL, or None (with the reason kept for the skip message)."""
    if "url" in _pg_state:
        return _pg_state["url"]
    raw = os.environ.get("TEST_DATABASE_URL")
    if not raw:
        _pg_state.update(url=None, reason="TEST_DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
        return None
    url = normalize_database_url(raw)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        Base.metadata.create_all(engine)
        engine.dispose()
    except Exception as err:  # unreachable server: skip with the reason
        _pg_state.update(url=None, reason=f"PostgreSQL at TEST_DATABASE_URL is not reachable: {err}")
        return None
    _pg_state["url"] = url
    return url


def postgres_url_or_skip() -> str:
    """The PostgreSQL test database URL; skips the test (with the reason) without one."""
    url = postgres_url()
    if url is None:
        pytest.skip(_pg_state["reason"])
    return url


def _truncate_postgres(app) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def build_app(tmp_path: Path, database: str = "sqlite", **overrides):
    workspace = tmp_path / "workspace"
    config = {
        "TESTING": True,
        "WORKSPACE": str(workspace),
        "SECRET_KEY": "test-secret-key-not-for-production",
        "JOBS_EAGER": True,
        "SCHEMA_CREATE_ALL": True,
    }
    if database == "postgresql":
        config["SQLALCHEMY_DATABASE_URI"] = postgres_url_or_skip()
    else:
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{workspace / 'inklabel.db'}"
    config.update(overrides)
    # Model versions are cached per process by id, and every test database numbers them from 1 again.
    from backend.jobs.predictions import clear_model_cache

    clear_model_cache()
    app = create_app(config)
    if database == "postgresql":
        _truncate_postgres(app)
    else:
        with app.app_context():
            db.create_all()
    return app


class ApiClient:
    """A Flask test client that authenticates with a Bearer token and speaks JSON."""

    def __init__(self, app, user, token: str):
        self.app, self.user, self.token = app, user, token
        self.client = app.test_client()

    def _headers(self, headers=None):
        out = {"Authorization": f"Bearer {self.token}"}
        out.update(headers or {})
        return out

    def get(self, url, **kw):
        return self.client.get(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, url, **kw):
        return self.client.delete(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, url, json=None, **kw):
        return self.client.post(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, url, json=None, **kw):
        return self.client.put(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def upload(self, files: list[tuple[bytes, str]], url="/api/v1/images"):
        data = {"file": [(io.BytesIO(content), name) for content, name in files]}
        return self.client.post(url, data=data, headers=self._headers(), content_type="multipart/form-data")


def make_user(app, username: str, role: str, password: str = "password123"):
    from backend.web.auth import create_token, create_user

    with app.app_context():
        user = create_user(username, password, role)
        token = create_token(user)
        db.session.expunge(user)
    return user, token
