"""Shared fixtures: a fresh app on a temporary workspace, on SQLite and (when TEST_DATABASE_URL answers) PostgreSQL.

`app` is parametrised over both databases; tests that only make sense on one use `sqlite_app`.
Users and API clients: `make_client("annotator")` returns an ApiClient that sends a Bearer token.
"""
from __future__ import annotations

import os
import time

import pytest

from backend.db.extensions import db

from .support.app import ApiClient, build_app, make_user


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, tmp_path):
    app = build_app(tmp_path, request.param, **getattr(request, "overrides", {}))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def sqlite_app(tmp_path):
    app = build_app(tmp_path, "sqlite")
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def fresh_pg_database():
    """A new, empty PostgreSQL database on the TEST_DATABASE_URL server for tests whose subprocesses build their own
    schema with `manage.py init`; dropped at the end. Skips without TEST_DATABASE_URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from backend.config import normalize_database_url

    raw = os.environ.get("TEST_DATABASE_URL")
    if not raw:
        pytest.skip("TEST_DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    base = make_url(normalize_database_url(raw))
    name = f"{base.database}_ops_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    try:
        admin = create_engine(base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:
        pytest.skip(f"cannot create a PostgreSQL database next to TEST_DATABASE_URL: {err}")
    url = base.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def make_client(app):
    counter = {"n": 0}

    def factory(role: str = "annotator", username: str | None = None, target=None) -> ApiClient:
        target_app = target or app
        counter["n"] += 1
        name = username or f"{role}{counter['n']}"
        user, token = make_user(target_app, name, role)
        return ApiClient(target_app, user, token)

    return factory


@pytest.fixture
def admin(make_client):
    return make_client("admin")


@pytest.fixture
def annotator(make_client):
    return make_client("annotator")


@pytest.fixture
def reviewer(make_client):
    return make_client("reviewer")


@pytest.fixture
def one_torch_thread():
    """Two spinning OpenMP threads on a busy 2-core machine are many times slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_bundles(tmp_path_factory):
    """A tiny trained segmenter and classifier (tests/support/models.py), trained once per test module."""
    import torch

    from .support.models import train_tiny_bundles

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_tiny_bundles(tmp_path_factory.mktemp("tiny"))
    finally:
        torch.set_num_threads(before)
