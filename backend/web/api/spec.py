"""The OpenAPI document, built from the routes' @endpoint declarations (backend/web/api/endpoint.py): the same
pydantic models that validate requests describe them, so the spec can never drift from what the server checks."""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from backend.web.api.endpoint import Endpoint
from backend.web.policy import PUBLIC, ROUTES

API_PREFIX = "/api/v1"

_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_PARAM_TYPES = {"int": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "float": {"type": "number"}, None: {"type": "string"}, "string": {"type": "string"}}


def _schema_ref(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def build_openapi(app) -> dict:
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
                }
            },
        }
    }
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX):
            continue
        view = app.view_functions[rule.endpoint]
        meta: Endpoint | None = getattr(view, "endpoint_meta", None)
        if meta is None:
            continue
        role = ROUTES[rule.endpoint].role
        path = _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        parameters = [
            {"name": m.group(2), "in": "path", "required": True, "schema": _PARAM_TYPES.get(m.group(1), {"type": "string"})}
            for m in _CONVERTER.finditer(rule.rule)
        ]
        if meta.query is not None:
            qschema = meta.query.model_json_schema()
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                prop = {k: v for k, v in prop.items() if k != "title"}
                parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        op: dict[str, Any] = {
            "operationId": rule.endpoint.replace(".", "_"),
            "summary": meta.summary,
            "tags": meta.tags or [rule.endpoint.split(".")[0]],
            "parameters": parameters,
            "responses": {},
            "x-role": role,
        }
        if meta.description:
            op["description"] = meta.description
        if meta.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema_ref(meta.body, components)}}}
        elif meta.multipart is not None:
            props = {name: {"type": "string", "format": "binary", "description": desc} for name, desc in meta.multipart.items()}
            op["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": {"type": "object", "properties": props,
                                                               "required": sorted(props)}}},
            }
        if meta.produces == "application/json":
            schema = _schema_ref(meta.response, components) if meta.response is not None else {"type": "object"}
            ok = {"description": "OK", "content": {"application/json": {"schema": schema}}}
        else:
            ok = {"description": "OK", "content": {meta.produces: {"schema": {"type": "string", "format": "binary"}}}}
        op["responses"][str(meta.status)] = ok
        codes = set(meta.errors) | {400, 404, 405, 413, 415, 422}
        if role != PUBLIC:
            codes |= {401, 403}
            op["security"] = [{"bearer": []}, {"session": []}]
        for code in sorted(codes):
            op["responses"][str(code)] = _error_response("Error")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "inklabel", "version": "1", "description": "Annotation backend for tattoo photos."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "inklabel_session"},
            },
        },
    }
