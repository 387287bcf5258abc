"""Auth: sessions with CSRF, Bearer tokens, roles, and the error shape."""
from datetime import timedelta

from sqlalchemy import select, text

from backend.db.extensions import db
from backend.db.models import ApiToken, AuthSession, utcnow
from backend.web.auth import _sha256

from ..support.app import make_user


def _error(resp):
    body = resp.get_json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_no_credentials_is_401(app):
    resp = app.test_client().get("/api/v1/taxonomy")
    assert resp.status_code == 401
    assert _error(resp)["code"] == "unauthorized"


def test_unknown_token_is_401(app):
    resp = app.test_client().get("/api/v1/taxonomy", headers={"Authorization": "Bearer ink_nope"})
    assert resp.status_code == 401


def test_wrong_password_does_not_reveal_user(app):
    make_user(app, "alice", "annotator")
    client = app.test_client()
    wrong_pw = client.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong-password"})
    no_user = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "wrong-password"})
    assert wrong_pw.status_code == no_user.status_code == 401
    assert _error(wrong_pw) == _error(no_user)


def test_session_login_needs_csrf_for_writes(app):
    make_user(app, "alice", "annotator")
    client = app.test_client()
    resp = client.post("/api/v1/auth/login", json={"username": "alice", "password": "password123"})
    assert resp.status_code == 200
    token = resp.get_json()["csrf_token"]
    assert client.get("/api/v1/auth/me").get_json()["user"]["username"] == "alice"
    # A state-changing request from the session without the header is refused, and the session still works.
    refused = client.post("/api/v1/auth/logout")
    assert refused.status_code == 403 and _error(refused)["code"] == "csrf_failed"
    assert client.get("/api/v1/auth/me").status_code == 200
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token}).status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 401
    with app.app_context():
        rows = db.session.scalars(select(AuthSession)).all()
        assert len(rows) == 1 and rows[0].revoked_at is not None


def test_logout_revokes_a_copied_cookie(app):
    make_user(app, "alice", "annotator")
    client = app.test_client()
    token = client.post("/api/v1/auth/login", json={"username": "alice", "password": "password123"}).get_json()["csrf_token"]
    cookie = client.get_cookie("inklabel_session").value
    client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token})
    thief = app.test_client()
    thief.set_cookie("inklabel_session", cookie)
    assert thief.get("/api/v1/auth/me").status_code == 401


def test_session_rotates_on_login(app):
    make_user(app, "alice", "annotator")
    client = app.test_client()
    client.post("/api/v1/auth/login", json={"username": "alice", "password": "password123"})
    first = client.get_cookie("inklabel_session").value
    client.post("/api/v1/auth/login", json={"username": "alice", "password": "password123"})
    assert client.get_cookie("inklabel_session").value != first


def test_annotator_on_admin_route_is_403(make_client):
    annotator = make_client("annotator")
    resp = annotator.get("/api/v1/jobs/unknown")
    assert resp.status_code == 404
    assert annotator.get("/api/v1/auth/me").get_json()["user"]["role"] == "annotator"


def test_login_body_validation(app):
    client = app.test_client()
    assert client.post("/api/v1/auth/login", data="{not json", content_type="application/json").status_code == 400
    assert client.post("/api/v1/auth/login", json={"username": 5, "password": "x"}).status_code == 422
    assert client.post("/api/v1/auth/login", data="x", content_type="text/plain").status_code == 415


def test_security_headers(app):
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 200
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


def test_json_answers_are_not_cached_and_no_security_header_is_doubled(app, make_client):
    client = make_client("annotator")
    resp = client.get("/api/v1/taxonomy")
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert len(resp.headers.getlist("X-Content-Type-Options")) == 1


def test_the_callers_user_object_is_built_only_when_read(app, make_client, monkeypatch):
    """Authentication gives g.caller (id, role) from its one query; the persistent User behind g.user is built from
    the same row only by the views that read it: an annotation save never does, /auth/me does, once."""
    import backend.web.auth as auth

    from ..support.images import make_image
    from .test_annotations import region, save, square

    built = []
    real_attach = auth._attach_user
    monkeypatch.setattr(auth, "_attach_user", lambda row: built.append(row.id) or real_attach(row))
    client = make_client("annotator", username="lazy-user")
    image_id = make_image(app)
    assert client.get(f"/api/v1/images/{image_id}/annotation").status_code == 200
    assert save(client, image_id, [region(square(0, 0, 10, 10))]).status_code == 200
    assert built == []
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.get_json()["user"]["username"] == "lazy-user"
    assert built == [me.get_json()["user"]["id"]]


def test_token_use_is_recorded_at_most_every_few_minutes(app, make_client):
    client = make_client("annotator")
    assert client.get("/api/v1/images").status_code == 200
    with app.app_context():
        token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(client.token)))
        first = token.last_used_at
        assert first is not None
        token.last_used_at = utcnow() - timedelta(hours=1)
        db.session.commit()
    assert client.put("/api/v1/images/999/annotation",
                      json={"base_version": 0, "regions": [], "tags": {}}).status_code == 404
    with app.app_context():
        refreshed = db.session.scalar(select(ApiToken.last_used_at).where(ApiToken.token_hash == _sha256(client.token)))
        assert refreshed.replace(tzinfo=None) > (utcnow() - timedelta(minutes=1)).replace(tzinfo=None)
        db.session.execute(text("UPDATE api_tokens SET revoked_at = last_used_at"))
        db.session.commit()
    assert client.get("/api/v1/images").status_code == 401
