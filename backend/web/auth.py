"""Users, roles, browser sessions and API tokens. Passwords hashed with werkzeug.security; tokens stored hashed.

- Sessions: the cookie (HttpOnly, SameSite=Lax, Secure on HTTPS or when INKLABEL_SECURE_COOKIES=1, no lifetime:
  gone when the browser closes) holds only a random key and the CSRF token; the server keeps an AuthSession row per
  login, so logout (or an expiry) invalidates a copied cookie. Every login rotates the key and revokes the
  browser's previous session. Writes from a session need the X-CSRF-Token header.
- Failed logins back off exponentially per (user name, client address) (LoginFailure rows: every worker and host
  counts the same); while waiting the answer is 429 with Retry-After, before the password is even checked.
- API tokens (`Authorization: Bearer ink_…`): shown once, stored as sha256, listed with a prefix, revocable.
- Authorisation follows backend/web/policy.py: `require_user(role)` answers 401/403, or 404 where a 403 would
  confirm that an object the caller may not see exists.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta, timezone
from functools import cache

from flask import current_app, g, has_request_context, request, session
from flask.ctx import _AppCtxGlobals
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import make_transient_to_detached
from werkzeug.security import check_password_hash, generate_password_hash

from backend.db.engine import commit_keeping_loaded, end_read, reads_only
from backend.core.errors import not_found
from backend.web.errors import APIError
from backend.db.extensions import db
from backend.db.models import ROLES, ApiToken, AuthSession, LoginFailure, User, role_allows, utcnow
from backend.db.prepared import Prepared
from backend.web.policy import hidden_kind

TOKEN_PREFIX = "ink_"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
TOKEN_TOUCH_SECONDS = 300  # last_used_at is refreshed at most this often (a write per request would be wasteful)


@cache
def _dummy_hash() -> str:
    """Checked against when a user name is unknown, so a wrong name costs as long as a wrong password (made on first
    use: hashing takes ~0.1 s, which every command importing this module would pay)."""
    return generate_password_hash("not-a-real-password")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# --- users ---------------------------------------------------------------------------------------------------------

def check_username(username: str) -> str:
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum() \
            or not username.isascii():
        raise ValueError("user names are 1-64 ASCII letters, digits, '.', '-' or '_'")
    return username


# The most common passwords of 8+ characters in published leak lists: refused whatever the length rule says.
COMMON_PASSWORDS = frozenset("""
password 12345678 123456789 1234567890 12345678910 qwertyuiop qwerty123 qwertyui 1q2w3e4r 1q2w3e4r5t password1
password! passw0rd iloveyou 11111111 00000000 88888888 87654321 abcd1234 abc12345 abcdefgh 123123123 111111111
sunshine princess football baseball superman trustno1 welcome1 letmein1 changeme administrator asdfghjk
zaq12wsx q1w2e3r4 1qaz2wsx
""".split())


def check_password(password: str, username: str | None = None) -> str:
    if len(password) < 8:
        raise ValueError("passwords need at least 8 characters")
    if len(password) > 1024:
        raise ValueError("passwords are at most 1024 characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) == 1 or (username and lowered == username.lower()):
        raise ValueError("this password is among the first any attacker tries (a common password, one character "
                         "repeated, or the user name); choose another")
    return password


def create_user(username: str, password: str, role: str = "annotator") -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    check_username(username)
    check_password(password, username)
    if db.session.scalar(select(User).where(func.lower(User.username) == username.lower())):
        raise ValueError(f"user {username!r} exists already (user names are compared without case)")
    user = User(username=username, password_hash=generate_password_hash(password), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


# --- login rate limit ----------------------------------------------------------------------------------------------

class RateLimited(APIError):
    def __init__(self, retry_after: int):
        super().__init__(429, "too_many_attempts",
                         f"Too many failed logins; try again in {retry_after} seconds.", {"retry_after": retry_after})
        self.retry_after = retry_after


def client_address() -> str:
    """The client's IP: REMOTE_ADDR, or with PROXY_COUNT trusted proxies in front, the address they recorded."""
    hops = int(current_app.config.get("PROXY_COUNT", 0) or 0)
    if hops > 0:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return (request.remote_addr or "unknown")[:64]


def _login_limits() -> tuple[int, float, int]:
    config = current_app.config
    return (int(config.get("LOGIN_MAX_FAILURES", 5)), float(config.get("LOGIN_BACKOFF_SECONDS", 1.0)),
            int(config.get("LOGIN_WINDOW_SECONDS", 900)))


def check_login_rate(username: str, address: str) -> None:
    """Raise RateLimited while this user name, from this address, must wait: after LOGIN_MAX_FAILURES free
    failures in the window, each further attempt waits LOGIN_BACKOFF_SECONDS x 2^(failures beyond the free ones)
    after the last failure, up to the window. Only the (name, address) pair waits: the same user from another
    address, and other users from this one, are not held up (no lock a stranger can put on an account or on
    everyone behind one address)."""
    free, base, window = _login_limits()
    if free <= 0:
        return
    now = utcnow()
    count, last = db.session.execute(
        select(func.count(), func.max(LoginFailure.created_at))
        .where(LoginFailure.username == username.lower()[:64], LoginFailure.address == address,
               LoginFailure.created_at > now - timedelta(seconds=window))
    ).one()
    if count < free:
        return
    wait = min(float(window), base * 2 ** min(count - free, 30))
    remaining = (_aware(last) + timedelta(seconds=wait) - now).total_seconds()
    if remaining > 0:
        raise RateLimited(max(1, math.ceil(remaining)))


def record_login_failure(username: str, address: str) -> None:
    _free, _base, window = _login_limits()
    now = utcnow()
    db.session.execute(delete(LoginFailure).where(LoginFailure.created_at < now - timedelta(seconds=window)))
    db.session.add(LoginFailure(username=username.lower()[:64], address=address, created_at=now))
    db.session.commit()


def login(username: str, password: str) -> User:
    """Check the rate limit, then the password. Returns the user, or raises 429 / 401."""
    address = client_address()
    check_login_rate(username, address)
    user = authenticate(username, password)
    if user is None:
        record_login_failure(username, address)
        raise APIError(401, "invalid_credentials", "Wrong user name or password.")
    db.session.execute(delete(LoginFailure).where(LoginFailure.username == username.lower()[:64],
                                                  LoginFailure.address == address))
    return user


# --- API tokens ----------------------------------------------------------------------------------------------------

def issue_token(user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token row and its secret; only the hash is stored, so this is the one time the secret can be shown."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, token_hash=_sha256(raw), prefix=raw[:10], name=name)
    db.session.add(token)
    db.session.commit()
    return token, raw


def create_token(user: User, name: str = "") -> str:
    return issue_token(user, name)[1]


def visible_token(token_id: int, actor: User) -> ApiToken:
    """The token if `actor` owns it or is an admin; otherwise the same 404 as for a token that does not exist."""
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != actor.id and not actor.has_role("admin")):
        raise not_found("token")
    return token


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    db.session.commit()


def revoke_user_credentials(user: User) -> None:
    """Revoke every token and browser session of a user (deactivation, role change)."""
    now = utcnow()
    for model, column in ((ApiToken, ApiToken.user_id), (AuthSession, AuthSession.user_id)):
        for row in db.session.scalars(select(model).where(column == user.id, model.revoked_at.is_(None))):
            row.revoked_at = now


# --- browser sessions ----------------------------------------------------------------------------------------------

def start_session(user: User) -> str:
    """Rotate the cookie session and record a server-side session row. Returns the CSRF token.

    The browser's previous session (if any) is revoked, so a cookie planted before login (session fixation) or
    kept from an earlier login stops working."""
    old = session.get("sid")
    if old:
        row = db.session.get(AuthSession, _sha256(old))
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
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


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, with the Secure flag also set whenever the request came over HTTPS (directly,
    or through a proxy that gunicorn trusts for X-Forwarded-Proto) — not only when INKLABEL_SECURE_COOKIES=1."""

    def open_session(self, app, request):
        # A call without the cookie (API tokens) gets an empty session without building the cookie signer.
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return has_request_context() and request.is_secure


class Caller:
    """Who is calling: id and role from the authentication lookup's row, without an ORM object (`g.caller`).

    Most API calls need no more; building the persistent User costs about 5 % of an annotation save's CPU, so
    `g.user` builds it from the same row only when first read (RequestGlobals)."""

    __slots__ = ("id", "role", "row")

    def __init__(self, row) -> None:
        self.id, self.role, self.row = row.id, row.role, row

    def has_role(self, role: str) -> bool:
        return role_allows(self.role, role)


class RequestGlobals(_AppCtxGlobals):
    """flask.g whose `user` is the caller's User (persistent in the request's session), made on first use."""

    @property
    def user(self) -> User | None:
        user = self.__dict__.get("_user")
        if user is None and (caller := self.__dict__.get("caller")) is not None:
            user = self.__dict__["_user"] = _attach_user(caller.row)
        return user


def init_sessions(app) -> None:
    app.session_interface = SessionInterface()
    app.app_ctx_globals_class = RequestGlobals
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config.get("SESSION_COOKIE_SAMESITE") not in ("Lax", "Strict"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"


# --- who is calling ------------------------------------------------------------------------------------------------

# One Core query each, joining the user (no lazy load of token.user / session.user): the lookup runs on every API
# call, and an ORM query of the User entity costs about twice as much CPU as the Core query plus `_attach_user`.
# Prepared (backend/db/prepared.py): on SQLite they run on the cursor.
_users, _tokens, _auth_sessions = User.__table__, ApiToken.__table__, AuthSession.__table__
_USER_COLUMNS = tuple(column.key for column in _users.columns)
_TOKEN_LOOKUP = Prepared(
    select(*_users.columns, _tokens.c.id.label("token_id"), _tokens.c.revoked_at.label("token_revoked_at"),
           _tokens.c.last_used_at.label("token_last_used_at"))
    .select_from(_tokens.join(_users, _users.c.id == _tokens.c.user_id))
    .where(_tokens.c.token_hash == bindparam("token_hash"))
)
_TOKEN_TOUCH = Prepared(
    update(_tokens).where(_tokens.c.id == bindparam("b_token_id")).values(last_used_at=bindparam("last_used_at"))
)
_SESSION_LOOKUP = Prepared(
    select(*_users.columns, _auth_sessions.c.revoked_at.label("session_revoked_at"),
           _auth_sessions.c.expires_at.label("session_expires_at"))
    .select_from(_auth_sessions.join(_users, _users.c.id == _auth_sessions.c.user_id))
    .where(_auth_sessions.c.id == bindparam("session_id"))
)


def _attach_user(row) -> User:
    """The User of a looked-up row as a persistent object of the current session, without a second query: the
    copy already in the session's identity map, or one built from the row's columns (as a query would load it)."""
    session = db.session()
    key = session.identity_key(User, (row.id,))
    user = session.identity_map.get(key)
    if user is not None:
        return user
    user = User(**{name: getattr(row, name) for name in _USER_COLUMNS})
    make_transient_to_detached(user)  # attribute history reset: as if loaded, nothing to flush
    session.add(user)
    return user


def _user_from_token(header: str) -> Caller:
    raw = header[len("Bearer "):].strip()
    row = _TOKEN_LOOKUP.first(db.session.connection(), {"token_hash": _sha256(raw)})
    if row is None or row.token_revoked_at is not None or not row.active:
        raise APIError(401, "invalid_token",
                       "The API token is unknown or revoked; create one with `manage.py create-token`.")
    now = utcnow()
    if row.token_last_used_at is None or _aware(row.token_last_used_at) < now - timedelta(seconds=TOKEN_TOUCH_SECONDS):
        # A write, at most once per TOKEN_TOUCH_SECONDS: in a transaction of its own that begins as a write (on
        # SQLite, a read transaction must not upgrade itself to a writer).
        end_read()
        with reads_only(False):
            _TOKEN_TOUCH.execute(db.session.connection(), {"b_token_id": row.token_id, "last_used_at": now})
            commit_keeping_loaded()
    g.auth_method = "token"
    return Caller(row)


def _user_from_session() -> Caller | None:
    key = session.get("sid")
    if not key:
        return None
    row = _SESSION_LOOKUP.first(db.session.connection(), {"session_id": _sha256(key)})
    if row is None or row.session_revoked_at is not None or _aware(row.session_expires_at) < utcnow() \
            or not row.active:
        session.clear()
        return None
    g.auth_method = "session"
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            raise APIError(403, "csrf_failed", "Missing or wrong X-CSRF-Token header; reload the page and try again.")
    return Caller(row)


def current_user() -> Caller | None:
    if "caller" not in g:
        header = request.headers.get("Authorization", "")
        g.caller = _user_from_token(header) if header.startswith("Bearer ") else _user_from_session()
    return g.caller


def require_user(role: str = "annotator") -> Caller:
    user = current_user()
    if user is None:
        raise APIError(401, "unauthorized", "Log in or send an API token (Authorization: Bearer <token>).")
    if not user.has_role(role):
        kind = hidden_kind(request.endpoint, user.role)
        if kind is not None:
            raise not_found(kind)  # the same answer as for an id that does not exist
        raise APIError(403, "forbidden", f"This needs the {role} role; you are {user.role}.")
    return user
