"""Users, roles, browser sessions and API tokens. Passwords hashed with werkzeug.security; tokens stored hashed."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

from flask import current_app, g, request, session
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import APIError
from .extensions import db
from .models import ROLES, ApiToken, AuthSession, User, utcnow

TOKEN_PREFIX = "ink_"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Checked against when a user name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def create_user(username: str, password: str, role: str = "annotator") -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("user names are 1-64 letters, digits, '.', '-' or '_'")
    if len(password) < 8:
        raise ValueError("passwords need at least 8 characters")
    if db.session.scalar(select(User).where(User.username == username)):
        raise ValueError(f"user {username!r} exists already")
    user = User(username=username, password_hash=generate_password_hash(password), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def create_token(user: User, name: str = "") -> str:
    """Return a new token; only its hash is stored, so this is the one time it can be shown."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_sha256(raw), prefix=raw[:10], name=name))
    db.session.commit()
    return raw


def start_session(user: User) -> str:
    """Rotate the cookie session and record a server-side session row. Returns the CSRF token."""
    session.clear()
    key = secrets.token_urlsafe(32)
    hours = current_app.config["SESSION_HOURS"]
    db.session.add(AuthSession(id=_sha256(key), user_id=user.id, expires_at=utcnow() + timedelta(hours=hours)))
    db.session.commit()
    session["sid"] = key
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = False
    return session["csrf"]


def end_session() -> None:
    key = session.get("sid")
    if key:
        row = db.session.get(AuthSession, _sha256(key))
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
            db.session.commit()
    session.clear()


def csrf_token() -> str | None:
    return session.get("csrf")


def _user_from_token(header: str) -> User:
    raw = header[len("Bearer "):].strip()
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(raw)))
    if token is None or token.revoked_at is not None or not token.user.active:
        raise APIError(401, "invalid_token", "The API token is unknown or revoked; create one with `manage.py create-token`.")
    g.auth_method = "token"
    return token.user


def _user_from_session() -> User | None:
    key = session.get("sid")
    if not key:
        return None
    row = db.session.get(AuthSession, _sha256(key))
    if row is None or row.revoked_at is not None or _aware(row.expires_at) < utcnow() or not row.user.active:
        session.clear()
        return None
    g.auth_method = "session"
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            raise APIError(403, "csrf_failed", "Missing or wrong X-CSRF-Token header; reload the page and try again.")
    return row.user


def current_user() -> User | None:
    if "user" not in g:
        header = request.headers.get("Authorization", "")
        g.user = _user_from_token(header) if header.startswith("Bearer ") else _user_from_session()
    return g.user


def require_user(role: str = "annotator") -> User:
    user = current_user()
    if user is None:
        raise APIError(401, "unauthorized", "Log in or send an API token (Authorization: Bearer <token>).")
    if not user.has_role(role):
        raise APIError(403, "forbidden", f"This needs the {role} role; you are {user.role}.")
    return user
