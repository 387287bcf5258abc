"""/api/v1/auth: session login for the browser, logout, the current user."""
from __future__ import annotations

from flask import Blueprint, g
from pydantic import BaseModel, Field

from ..auth import authenticate, csrf_token, end_session, start_session
from ..errors import APIError
from .schemas import OkResponse, StrictModel
from .spec import endpoint

bp = Blueprint("auth", __name__, url_prefix="/api/v1")


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


def _me(user, token) -> Me:
    return Me(user=UserOut(id=user.id, username=user.username, role=user.role), csrf_token=token)


@bp.post("/auth/login")
@endpoint("Log in; sets the session cookie and returns the CSRF token for later writes", body=LoginBody,
          response=Me, role=None, errors=(401,))
def login(body: LoginBody):
    user = authenticate(body.username, body.password)
    if user is None:
        raise APIError(401, "invalid_credentials", "Wrong user name or password.")
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
