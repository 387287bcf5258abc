"""Request ids and structured logs, Prometheus metrics, /readyz, and 503 on a lost database connection."""
from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from backend import create_app
from backend.db.extensions import db
from backend.db.models import Job, User
from backend.web.observability import JsonFormatter, mark_model_loaded

from ..support.app import ApiClient, make_user
from .conftest import free_port


def _samples(resp) -> dict:
    out = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _client(app, role="annotator", name="ann"):
    user, token = make_user(app, name, role)
    return ApiClient(app, user, token)


def test_request_id_is_echoed_or_made_and_logged(make_app, caplog):
    app = make_app()
    client = app.test_client()
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123.x"}).headers["X-Request-ID"] == "abc-123.x"
    bad = client.get("/healthz", headers={"X-Request-ID": "no spaces; <script>" + "x" * 80}).headers["X-Request-ID"]
    assert len(bad) == 32 and "<" not in bad
    with caplog.at_level(logging.INFO, logger="inklabel.access"):
        client.get("/api/v1/taxonomy", headers={"X-Request-ID": "req-42"})
    record = next(r for r in caplog.records if r.name == "inklabel.access")
    assert record.request_id == "req-42" and record.status == 401 and record.route == "/api/v1/taxonomy"
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-42" and line["status"] == 401 and line["logger"] == "inklabel.access"


def test_access_log_names_the_user_without_querying_the_database(make_app, caplog):
    from sqlalchemy import event

    app = make_app()
    client = _client(app, name="logged")
    with app.app_context():
        engine = db.engine
        user_id = db.session.scalar(db.select(User.id).where(User.username == "logged"))
    statements = []
    app.after_request(lambda response: statements.clear() or response)  # runs after ours (reverse order)
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with caplog.at_level(logging.INFO, logger="inklabel.access"):
            # the save's rollback expires g.user: reading user.id would reload it
            resp = client.put("/api/v1/images/999/annotation", json={"base_version": 0, "regions": [], "tags": {}})
            assert resp.status_code == 404
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    record = next(r for r in caplog.records if r.name == "inklabel.access")
    assert record.user_id == user_id
    assert statements == []  # nothing between the view's end and the access log line


def test_metrics_count_requests_per_route_saves_and_jobs(make_app):
    app = make_app()
    client = _client(app)
    before = _samples(app.test_client().get("/metrics"))
    for image_id in (1, 2, 3):  # three different ids, one route
        client.get(f"/api/v1/images/{image_id}")
    client.get("/no/such/page/at/all")
    client.put("/api/v1/images/999/annotation", json={"base_version": 0, "regions": [], "tags": {}})
    with app.app_context():
        db.session.add(Job(kind="ops_sleep", status="queued"))
        db.session.commit()
    resp = app.test_client().get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    after = _samples(resp)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("inklabel_http_request_duration_seconds_count", method="GET", route="/api/v1/images/<int:image_id>") == 3
    assert delta("inklabel_http_requests_total", method="GET", route="/api/v1/images/<int:image_id>", status="404") == 3
    assert not any("no/such" in str(labels) for _, labels in after)  # unknown paths do not make new series
    assert delta("inklabel_annotation_saves_total", result="invalid") == 1
    assert after[("inklabel_jobs", (("kind", "ops_sleep"), ("status", "queued")))] == 1
    assert after[("inklabel_database_up", ())] == 1


def test_metrics_token_when_configured(make_app, monkeypatch):
    app = make_app()
    monkeypatch.setenv("INKLABEL_METRICS_TOKEN", "s3cret-token")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_readyz_reports_database_broker_and_models(make_app):
    app = make_app()
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["dialect"] == ("sqlite" if make_app.database == "sqlite" else "postgresql")
    assert body["checks"]["broker"] == {"ok": True, "configured": False, "executor": "eager"}
    assert body["checks"]["models"]["segmenter"] == {"current_version": None, "weights_present": False,
                                                     "loaded_version": None, "device": None}
    mark_model_loaded("classifier", 7, "cpu")
    assert app.test_client().get("/readyz").get_json()["checks"]["models"]["classifier"]["loaded_version"] == 7
    assert app.test_client().get("/healthz").status_code == 200


def test_unreachable_database_is_503_retryable_not_500(tmp_path):
    app = create_app({
        "TESTING": True, "WORKSPACE": str(tmp_path / "ws"), "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}},
    })
    client = app.test_client()
    resp = client.get("/api/v1/taxonomy", headers={"Authorization": "Bearer ink_whatever"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "2"
    error = resp.get_json()["error"]
    assert error["code"] == "database_unavailable" and error["details"]["retryable"] is True
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"]["ok"] is False
    assert client.get("/healthz").status_code == 200
    metrics = _samples(client.get("/metrics"))
    assert metrics[("inklabel_database_up", ())] == 0
