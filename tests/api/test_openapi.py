"""The OpenAPI document is valid and covers every registered /api/v1 route."""
import re

from openapi_spec_validator import validate

from backend.web.api.spec import API_PREFIX


def _spec(app):
    resp = app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def test_openapi_document_is_valid(sqlite_app):
    validate(_spec(sqlite_app))


def test_every_api_route_is_documented_with_its_methods(sqlite_app):
    spec = _spec(sqlite_app)
    missing = []
    for rule in sqlite_app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX):
            continue
        view = sqlite_app.view_functions[rule.endpoint]
        assert hasattr(view, "endpoint_meta"), f"{rule.rule} is not declared with @endpoint"
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in spec["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing, missing


def test_protected_routes_declare_security_and_roles(sqlite_app):
    spec = _spec(sqlite_app)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["x-role"] in {"public", "annotator", "reviewer", "admin"}
            if op["x-role"] != "public":
                assert op.get("security"), f"{method} {path} lacks security"
                assert "401" in op["responses"] and "403" in op["responses"]
