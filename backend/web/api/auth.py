"""/api/v1/auth and /api/v1/users: session login (rate limited), logout, the current user, API tokens, users.

    POST   /auth/login              {"username", "password"} -> the user + CSRF token; 429 + Retry-After when limited
    POST   /auth/logout             revokes the session on the server
    GET    /auth/me                 the caller and the CSRF token
    GET    /auth/tokens?user_id=    the caller's tokens (admins: any user's); never the secret, only its prefix
    POST   /auth/tokens             {"name", "user_id"?} -> 201 with the secret, shown this once
    DELETE /auth/tokens/<id>        revoke (own tokens; admins any); someone else's token is a 404
    GET    /users, POST /users, PUT /users/<id>     admins: list, create, change role / activity / password
"""
from __future__ import annotations

from typing import Literal, Optional

from flask import Blueprint, g
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from backend.web.auth import (
    RateLimited,
    check_password,
    create_user,
    csrf_token,
    end_session,
    init_sessions,
    issue_token,
    login as check_login,
    revoke_token as revoke,
    revoke_user_credentials,
    start_session,
    visible_token,
)
from backend.core.errors import not_found
from backend.web.errors import APIError, error_response
from backend.db.extensions import db
from backend.db.models import ROLES, ApiToken, User
from backend.web.api.schemas import DbId, OkResponse, QueryModel, StrictModel
from backend.web.api.endpoint import endpoint

bp = Blueprint("auth", __name__, url_prefix="/api/v1")
bp.record_once(lambda state: init_sessions(state.app))  # cookie flags + Secure on HTTPS, for the whole app

USERNAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class LoginBody(StrictModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: int
    username: str
    role: str


class Me(BaseModel):
    user: UserOut
    csrf_token: str | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the first characters of the token, to tell tokens apart")
    user_id: int
    username: str
    created_at: Optional[str]
    last_used_at: Optional[str] = Field(description="refreshed at most every few minutes")
    revoked_at: Optional[str]


class TokenList(BaseModel):
    items: list[TokenOut]
    total: int


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; it is stored hashed and can never be shown again")


class TokenQuery(QueryModel):
    user_id: Optional[DbId] = Field(None, description="whose tokens (default: the caller's; others: admins)")
    include_revoked: bool = False
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(50, ge=1, le=200)


class TokenIn(StrictModel):
    name: str = Field("", max_length=128, description="what the token is for (shown in listings)")
    user_id: Optional[DbId] = Field(None, description="admins: create the token for this user")


class UserDetail(UserOut):
    active: bool
    created_at: Optional[str]


class UserList(BaseModel):
    items: list[UserDetail]
    total: int


class UserQuery(QueryModel):
    role: Optional[Literal["annotator", "reviewer", "admin"]] = None
    active: Optional[bool] = None
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(50, ge=1, le=200)


class UserIn(StrictModel):
    username: str = Field(pattern=USERNAME_PATTERN, description="1-64 ASCII letters, digits, '.', '-' or '_'")
    password: str = Field(min_length=8, max_length=1024)
    role: Literal["annotator", "reviewer", "admin"] = "annotator"


class UserUpdate(StrictModel):
    role: Optional[Literal["annotator", "reviewer", "admin"]] = None
    active: Optional[bool] = Field(None, description="false: the user can no longer log in; tokens and sessions "
                                                     "are revoked")
    password: Optional[str] = Field(None, min_length=8, max_length=1024, description="a new password; revokes "
                                                                                     "the user's sessions and tokens")


def _iso(value) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _me(user, token) -> Me:
    return Me(user=UserOut(id=user.id, username=user.username, role=user.role), csrf_token=token)


def _token_dict(token: ApiToken, username: str) -> dict:
    return {"id": token.id, "name": token.name or "", "prefix": token.prefix, "user_id": token.user_id,
            "username": username, "created_at": _iso(token.created_at), "last_used_at": _iso(token.last_used_at),
            "revoked_at": _iso(token.revoked_at)}


def _user_dict(user: User) -> dict:
    return {"id": user.id, "username": user.username, "role": user.role, "active": bool(user.active),
            "created_at": _iso(user.created_at)}


def _target_user(user_id: Optional[int]) -> User:
    """The caller, or (admins only) another user; for anyone else another user's id is a 404."""
    if user_id is None or user_id == g.user.id:
        return g.user
    user = db.session.get(User, user_id) if g.user.has_role("admin") else None
    if user is None:
        raise not_found("user")
    return user


# --- session -------------------------------------------------------------------------------------------------------

@bp.post("/auth/login")
@endpoint("Log in; sets the session cookie and returns the CSRF token for later writes", body=LoginBody,
          response=Me, errors=(401, 429),
          description="Failed attempts are limited per user name and per client address (429 with Retry-After "
          "while over the limit; the password is not checked then). Each login rotates the session.")
def login(body: LoginBody):
    try:
        user = check_login(body.username, body.password)
    except RateLimited as err:
        response = error_response(err.status, err.code, err.message, err.details)
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    return _me(user, start_session(user))


@bp.post("/auth/logout")
@endpoint("Log out: the session is revoked on the server", response=OkResponse)
def logout():
    end_session()
    return OkResponse()


@bp.get("/auth/me")
@endpoint("The logged-in user and the CSRF token to send as X-CSRF-Token", response=Me)
def me():
    return _me(g.user, csrf_token())


# --- tokens --------------------------------------------------------------------------------------------------------

@bp.get("/auth/tokens")
@endpoint("API tokens of the caller (admins: of any user), newest first; the secrets are never shown again",
          query=TokenQuery, response=TokenList)
def list_tokens(query: TokenQuery):
    owner = _target_user(query.user_id)
    stmt = select(ApiToken).where(ApiToken.user_id == owner.id)
    if not query.include_revoked:
        stmt = stmt.where(ApiToken.revoked_at.is_(None))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.order_by(ApiToken.id.desc()).limit(query.per_page)
                              .offset((query.page - 1) * query.per_page))
    return {"items": [_token_dict(t, owner.username) for t in rows], "total": total}


@bp.post("/auth/tokens")
@endpoint("Create an API token (for oneself; admins also for another user); the secret is in this answer only",
          body=TokenIn, response=TokenCreated, status=201)
def create_token_route(body: TokenIn):
    owner = _target_user(body.user_id)
    if not owner.active:
        raise APIError(409, "user_inactive", "This user is deactivated; activate them before creating a token.")
    token, raw = issue_token(owner, body.name)
    return {**_token_dict(token, owner.username), "token": raw}


@bp.delete("/auth/tokens/<int:token_id>")
@endpoint("Revoke an API token (own tokens; admins any). Requests with it answer 401 from now on",
          response=TokenOut)
def revoke_token(token_id: int):
    token = visible_token(token_id, g.user)
    revoke(token)
    return _token_dict(token, token.user.username)


# --- users (admins) ------------------------------------------------------------------------------------------------

@bp.get("/users")
@endpoint("Users, by id", query=UserQuery, response=UserList, tags=["users"])
def list_users(query: UserQuery):
    stmt = select(User)
    if query.role:
        stmt = stmt.where(User.role == query.role)
    if query.active is not None:
        stmt = stmt.where(User.active.is_(query.active))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.order_by(User.id).limit(query.per_page).offset((query.page - 1) * query.per_page))
    return {"items": [_user_dict(u) for u in rows], "total": total}


@bp.post("/users")
@endpoint("Create a user", body=UserIn, response=UserDetail, status=201, errors=(409,), tags=["users"])
def create_user_route(body: UserIn):
    if db.session.scalar(select(User.id).where(func.lower(User.username) == body.username.lower())):
        raise APIError(409, "user_exists", f"A user named {body.username!r} exists already.")
    try:
        user = create_user(body.username, body.password, body.role)
    except ValueError as err:
        raise APIError(422, "invalid_body", str(err)) from None
    return _user_dict(user)


@bp.put("/users/<int:user_id>")
@endpoint("Change a user's role, activity or password (deactivating or a new password revokes their sessions and "
          "tokens)", body=UserUpdate, response=UserDetail, errors=(409,), tags=["users"])
def update_user(user_id: int, body: UserUpdate):
    from werkzeug.security import generate_password_hash

    user = db.session.get(User, user_id)
    if user is None:
        raise not_found("user")
    if user.id == g.user.id and (body.active is False or (body.role is not None and body.role != "admin")):
        raise APIError(409, "self_lockout", "Admins cannot deactivate or demote themselves; ask another admin.")
    if body.role is not None:
        assert body.role in ROLES
        user.role = body.role
    revoke = False
    if body.active is not None:
        revoke = revoke or (user.active and not body.active)
        user.active = body.active
    if body.password is not None:
        try:
            check_password(body.password, user.username)
        except ValueError as err:
            raise APIError(422, "invalid_body", str(err)) from None
        user.password_hash = generate_password_hash(body.password)
        revoke = True
    if revoke:
        revoke_user_credentials(user)
    db.session.commit()
    return _user_dict(user)
