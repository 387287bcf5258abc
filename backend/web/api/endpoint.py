"""Request handling: the @endpoint decorator authenticates the caller, parses strict JSON, validates the body and
query with pydantic models and encodes the response; it records the same models for the OpenAPI document
(backend/web/api/spec.py), so the spec can never drift from what the server checks.

    @bp.put("/images/<int:image_id>/annotation")
    @endpoint("Save the annotation document", body=SaveAnnotation, response=AnnotationDocument)
    def save_annotation(image_id, body): ...

The role a route needs is not declared here: it is the route's rule in backend/web/policy.py (ROUTES, by endpoint
name), read when a request arrives and written into the OpenAPI document as x-role.

The view gets the validated `body` (and `query`) as keyword arguments; `g.caller` is the caller (id and role) and
`g.user` the caller's User (built on first use). Returning a pydantic model or a dict sends JSON with the declared
status.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Callable

import orjson
from flask import current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError

from backend.db.codecs import ORJSON_OPTIONS
from backend.db.engine import end_read, reads_only, set_reads_only
from backend.db.extensions import db
from backend.web.auth import require_user
from backend.web.errors import APIError
from backend.web.policy import PUBLIC, ROUTES


@dataclass
class Endpoint:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    multipart: dict[str, str] | None = None  # form field -> description, for uploads
    produces: str = "application/json"
    errors: tuple[int, ...] = ()
    description: str = ""
    tags: list[str] = field(default_factory=list)
    writes: bool = False  # a GET that writes to the database (e.g. a lease) must say so: see backend/db/engine.py
    # A writing view that begins with reads of its own and ends them (end_read) before it writes, as save_document
    # does: on SQLite it goes on in the authentication's read transaction (one transaction fewer per request).
    reads_first: bool = False


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_float(text: str):
    """JSON has one number type: 3.0 is the integer 3 (as JSON Schema's "integer" says), so an integer field takes
    it; other numbers stay floats (1e999 becomes inf and is refused by the models)."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def parse_json_body() -> Any:
    """Strict JSON: right content type, size limit, no NaN/Infinity, clear errors."""
    if not request.is_json:
        raise APIError(415, "unsupported_media_type", "Send a JSON body with Content-Type: application/json.")
    limit = current_app.config["MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise APIError(413, "too_large", f"JSON bodies are limited to {limit} bytes.")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise APIError(413, "too_large", f"JSON bodies are limited to {limit} bytes.")
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_parse_float)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise APIError(400, "malformed_json", f"The body is not valid JSON: {err}") from None


def validation_details(err: ValidationError) -> dict:
    return {
        "errors": [
            {"loc": [str(part) for part in e["loc"]], "message": e["msg"], "type": e["type"]}
            for e in err.errors(include_url=False, include_input=False)
        ]
    }


def validate(model: type[BaseModel], data: Any, what: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        details = validation_details(err)
        first = details["errors"][0]
        where = ".".join(first["loc"]) or what
        raise APIError(422, "invalid_" + what, f"Invalid {what} at {where}: {first['message']}", details) from None


def _query_dict() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        out[key] = values if len(values) > 1 else values[0]
    return out


_ORJSON_OPTIONS = ORJSON_OPTIONS | orjson.OPT_SORT_KEYS  # the JSON columns' options; responses sort keys as jsonify


def json_response(result: Any, status: int = 200):
    """The JSON response of a view, encoded with orjson (an annotation document of a few hundred vertices: ~10x
    faster than the json module). The same text as Flask's jsonify (sorted keys, compact); types orjson would
    encode differently (datetimes, dataclasses, subclasses) go through Flask's provider, as do integers beyond
    64 bits (jsonify itself then)."""
    try:
        data = orjson.dumps(result, default=current_app.json.default, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        response = jsonify(result)
    else:
        response = current_app.response_class(data + b"\n", mimetype="application/json")
    response.status_code = status
    return response


def endpoint(summary: str, **options) -> Callable:
    meta = Endpoint(summary=summary, **options)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            read_request = request.method in ("GET", "HEAD") and not meta.writes
            set_reads_only(read_request)
            role = ROUTES[request.endpoint].role  # (register_api checked that every route has a rule)
            if role != PUBLIC:
                # Authentication is a read (on SQLite DEFERRED: a WAL snapshot, no write lock). A read-only request
                # goes on in that transaction; on SQLite any other ends it before the body is parsed and validated,
                # and its writes begin a transaction of their own (IMMEDIATE: never a read upgraded to a write).
                # PostgreSQL has no such lock, and a commit there is one more round trip: the view goes on in it.
                with reads_only():
                    g.caller = require_user(role)
                    if not read_request and not meta.reads_first and db.engine.dialect.name == "sqlite":
                        end_read()
            if meta.query is not None:
                kwargs["query"] = validate(meta.query, _query_dict(), "query")
            if meta.body is not None:
                kwargs["body"] = validate(meta.body, parse_json_body(), "body")
            result = view(*args, **kwargs)
            if isinstance(result, BaseModel):
                result = result.model_dump(mode="json")
            if isinstance(result, (dict, list)):
                return json_response(result, meta.status)
            return result

        wrapper.endpoint_meta = meta
        return wrapper

    return decorate
