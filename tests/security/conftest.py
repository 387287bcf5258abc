"""Fixtures of the security tests: the world of tests/support/world.py, and cheap password hashes."""
from __future__ import annotations

import pytest

from ..support.world import build_world


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture(autouse=True)
def _fast_password_hashes(monkeypatch):
    """Users are made by the dozen here: a cheap hash method keeps the tests fast (production keeps scrypt)."""
    from werkzeug.security import generate_password_hash

    monkeypatch.setattr("backend.web.auth.generate_password_hash",
                        lambda password: generate_password_hash(password, method="pbkdf2:sha256:1000"))
