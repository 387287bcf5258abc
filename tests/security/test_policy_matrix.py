"""Every route × every kind of caller, generated from the app's route table, checked against backend/web/policy.py.

A route added without a rule in `backend.web.policy.ROUTES` (or with a path parameter this file cannot fill) fails
`test_every_route_has_a_rule`; the matrix then calls every route as anonymous, annotator, reviewer and admin, and
with another annotator's objects, and checks 401 / 403 / 404 (same answer as for a missing id) / allowed.
"""
from __future__ import annotations

import re

import pytest

from backend.web.api.spec import API_PREFIX
from backend.db.models import ROLE_RANK
from backend.web.policy import OBJECTS, PUBLIC, ROUTES, hidden_kind

from ..support.world import build_world

PARAM = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")
MISSING = {"image_id": 999_999, "version": 999, "job_id": "0" * 32, "export_id": "f" * 32, "model_id": 999_999,
           "token_id": 999_999, "user_id": 999_999, "filename": "missing.css"}
# Routes that change or remove the object they name run last, so the other routes still find it.
DESTRUCTIVE = {"DELETE"}


def _value(world, param: str, caller: str, mode: str, scope: str):
    """A path value: the caller's own / a visible object ("own"), another annotator's ("other"), or none."""
    if mode == "missing":
        return MISSING[param]
    if param == "image_id":
        if scope == "agreement":
            return world.image3_id if mode == "other" else world.image2_id
        return world.image_id
    if param == "job_id":
        return world.jobs["other" if mode == "other" else caller]
    if param == "token_id":
        return (world.other if mode == "other" else world.users[caller]).spare_token_id
    return {"version": 1, "export_id": world.export_id, "model_id": world.model_id, "user_id": world.other.id,
            "filename": "app.css"}[param]


def _routes(app):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        meta = getattr(view, "endpoint_meta", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule, method, meta))
    out.sort(key=lambda item: (item[1] in DESTRUCTIVE, item[0].rule, item[1]))
    return out


def _url(rule, world, caller: str, mode: str) -> str:
    scope = ROUTES[rule.endpoint].scope
    return PARAM.sub(lambda m: str(_value(world, m.group(1), caller, mode, scope)), rule.rule)


# Valid bodies where the object lookup comes after body validation (an empty body would be a 422 first).
VALID_BODIES = {
    "queue.put_agreement": {"base_version": 0, "regions": [], "tags": {"styles": [], "flags": []}},
}


def _request(world, who: str, method: str, url: str, meta, endpoint: str = ""):
    kwargs = {}
    if meta is not None and meta.body is not None:
        kwargs["json"] = VALID_BODIES.get(endpoint, {})
    if who == "anonymous":
        return world.app.test_client().open(url, method=method, **kwargs)
    client = world.users[who].client
    if method == "GET":
        return client.get(url)
    if method == "DELETE":
        return client.delete(url)
    if method == "PUT":
        return client.put(url, **kwargs)
    return client.post(url, **kwargs)


def _error(resp) -> dict:
    body = resp.get_json(silent=True)
    assert isinstance(body, dict) and set(body.get("error", {})) == {"code", "message", "details"}, resp.data[:300]
    return body["error"]


# --- the table itself ---------------------------------------------------------------------------------------------

def test_every_route_has_a_rule(sqlite_app):
    spec = sqlite_app.test_client().get("/api/v1/openapi.json").get_json()
    seen, problems = set(), []
    for rule, method, meta in _routes(sqlite_app):
        seen.add(rule.endpoint)
        policy = ROUTES.get(rule.endpoint)
        if policy is None:
            problems.append(f"{method} {rule.rule} ({rule.endpoint}) has no rule in backend/web/policy.py ROUTES")
            continue
        if policy.scope not in OBJECTS and policy.scope not in ("none", "self") and \
                not (policy.scope.startswith("list:") and policy.scope[5:] in OBJECTS):
            problems.append(f"{rule.endpoint}: unknown scope {policy.scope!r}")
        for param in PARAM.findall(rule.rule):
            if param not in MISSING:
                problems.append(f"{rule.rule}: add path parameter {param!r} to this test's MISSING and _value")
        if rule.rule.startswith(API_PREFIX):
            if meta is None:
                problems.append(f"{rule.rule} is not declared with @endpoint")
                continue
            path = PARAM.sub(lambda m: "{" + m.group(1) + "}", rule.rule)
            declared = spec["paths"][path][method.lower()]["x-role"]
            if declared != policy.role:
                problems.append(f"{method} {path}: the spec says x-role {declared}, the policy {policy.role}")
    stale = sorted(set(ROUTES) - seen)
    assert not problems, "\n".join(problems)
    assert not stale, f"rules for routes that no longer exist: {stale}"


# --- the matrix ---------------------------------------------------------------------------------------------------

def test_anonymous_gets_401_everywhere_but_public_routes(app):
    world = build_world(app)
    for rule, method, meta in _routes(app):
        policy = ROUTES[rule.endpoint]
        resp = _request(world, "anonymous", method, _url(rule, world, "admin", "own"), meta)
        label = f"{method} {rule.rule}"
        assert resp.status_code < 500, label
        if policy.role == PUBLIC:
            assert resp.status_code != 401, label
        else:
            assert resp.status_code == 401, f"{label}: {resp.status_code}"
            assert _error(resp)["code"] == "unauthorized", label


# Answers a caller who passes the role check may still get for these test objects (never 401/403).
EXPECTED_REFUSALS = {
    ("models.get_prediction", "GET"): {404},  # no pre-fill cached yet
}


@pytest.mark.parametrize("caller", ["annotator", "reviewer", "admin"])
def test_role_matrix(app, caller):
    world = build_world(app)
    rank = ROLE_RANK[caller]
    failures = []
    for rule, method, meta in _routes(app):
        policy = ROUTES[rule.endpoint]
        if not rule.rule.startswith(API_PREFIX) or policy.role == PUBLIC or rule.endpoint == "auth.logout":
            continue
        label = f"{caller} {method} {rule.rule}"
        resp = _request(world, caller, method, _url(rule, world, caller, "own"), meta)
        if resp.status_code >= 500:
            failures.append(f"{label}: {resp.status_code}")
            continue
        allowed = rank >= ROLE_RANK[policy.role]
        if allowed:
            if resp.status_code in (401, 403):
                failures.append(f"{label}: refused ({resp.status_code} {resp.get_json()}) but the policy allows it")
            elif method == "GET" and resp.status_code != 200 and \
                    resp.status_code not in EXPECTED_REFUSALS.get((rule.endpoint, method), ()):
                failures.append(f"{label}: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
            continue
        kind = hidden_kind(rule.endpoint, caller)
        if kind is None:
            if resp.status_code != 403 or _error(resp)["code"] != "forbidden":
                failures.append(f"{label}: expected 403, got {resp.status_code}")
            continue
        # An object kind the caller may not see: exactly the answer for an id that does not exist.
        missing = _request(world, caller, method, _url(rule, world, caller, "missing"), meta)
        if resp.status_code != 404 or resp.get_json() != missing.get_json():
            failures.append(f"{label}: {resp.status_code} {resp.get_json()} differs from the missing-id answer "
                            f"{missing.status_code} {missing.get_json()}")
    assert not failures, "\n".join(failures)


OWNED = ("job", "token", "agreement")


@pytest.mark.parametrize("caller", ["annotator", "reviewer", "admin"])
def test_other_users_objects_answer_like_missing_ones(app, caller):
    """Another annotator's job, token or agreement copy: 404 exactly as for an id that does not exist (admins see
    jobs and tokens of everyone, but agreement copies only ever their own)."""
    world = build_world(app)
    checked = 0
    for rule, method, meta in _routes(app):
        policy = ROUTES[rule.endpoint]
        if policy.scope not in OWNED:
            continue
        label = f"{caller} {method} {rule.rule}"
        resp = _request(world, caller, method, _url(rule, world, caller, "other"), meta, rule.endpoint)
        admin_sees = caller == "admin" and OBJECTS[policy.scope] == "owner"
        if admin_sees:
            assert resp.status_code not in (401, 403, 404), f"{label}: {resp.status_code}"
            continue
        if policy.scope == "agreement":  # compare with an image nobody has a copy of
            missing_url = rule.rule.replace("<int:image_id>", str(world.image_id))
        else:
            missing_url = _url(rule, world, caller, "missing")
        missing = _request(world, caller, method, missing_url, meta, rule.endpoint)
        assert resp.status_code == 404, f"{label}: {resp.status_code} {resp.get_json()}"
        assert resp.get_json() == missing.get_json(), label
        checked += 1
    assert checked == (2 if caller == "admin" else 5)


def test_lists_show_only_what_the_caller_may_see(app):
    world = build_world(app)
    ann, other, admin = world.annotator, world.other, world.admin
    jobs = ann.client.get("/api/v1/jobs").get_json()
    assert {j["id"] for j in jobs["items"]} == {world.jobs["annotator"]} and jobs["total"] == 1
    assert len(admin.client.get("/api/v1/jobs").get_json()["items"]) == 4
    tokens = ann.client.get("/api/v1/auth/tokens").get_json()["items"]
    assert {t["user_id"] for t in tokens} == {ann.id} and len(tokens) == 2
    assert all("token" not in t and "token_hash" not in t for t in tokens)
    # Another user's tokens: admins only; others get the answer for a user that does not exist.
    refused = ann.client.get(f"/api/v1/auth/tokens?user_id={other.id}")
    assert refused.status_code == 404
    assert refused.get_json() == ann.client.get("/api/v1/auth/tokens?user_id=999999").get_json()
    listed = admin.client.get(f"/api/v1/auth/tokens?user_id={other.id}").get_json()["items"]
    assert {t["user_id"] for t in listed} == {other.id}
    assert ann.client.get("/api/v1/exports").status_code == 403
    assert ann.client.get("/api/v1/users").status_code == 403
    # An annotator cannot create a token for someone else either.
    made = ann.client.post("/api/v1/auth/tokens", json={"name": "x", "user_id": other.id})
    assert made.status_code == 404


def test_docs_list_every_route():
    """docs/security.md carries the route table; a route added to ROUTES must be documented there too."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    missing = [endpoint for endpoint in ROUTES if f"`{endpoint}`" not in text]
    assert not missing, f"add these routes to the table in docs/security.md: {missing}"
