"""One error shape for every failure: {"error": {"code", "message", "details"}} with a 4xx status.

Services raise backend.core.errors (DomainError kinds without a status); `STATUS` below is where each kind gets
its HTTP status. APIError is for what only HTTP has: the request's format, authentication, rate limits.
"""
from __future__ import annotations

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException

from backend.core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable

log = logging.getLogger(__name__)

STATUS: dict[type[DomainError], int] = {Invalid: 422, NotFound: 404, Forbidden: 403, Conflict: 409,
                                        Unavailable: 503}


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def http_status(err: DomainError) -> int:
    return next((STATUS[kind] for kind in type(err).__mro__ if kind in STATUS), 400)


def error_response(status: int, code: str, message: str, details: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Log in or send an API token (Authorization: Bearer <token>)."),
    403: ("forbidden", "Your role does not allow this."),
    404: ("not_found", "Not found: no such route, or no object with this id."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("too_large", "The request body is larger than the server accepts."),
    415: ("unsupported_media_type", "Send JSON (Content-Type: application/json)."),
}


def _too_large_message(config) -> str:
    """Which limit a 413 from the request parser hit: the body size, or (a body within it) the number of
    multipart parts or the size of a non-file form field."""
    from flask import request

    limit = config.get("MAX_CONTENT_LENGTH")
    length = request.content_length
    if limit is None or length is None or length > limit:
        return f"The request body is larger than the server accepts ({limit:,} bytes)." if limit else \
            "The request body is larger than the server accepts."
    parts, memory = config.get("MAX_FORM_PARTS"), config.get("MAX_FORM_MEMORY_SIZE")
    return (f"The upload has too many parts: at most {parts:,} files and fields per request (send the rest in "
            f"another request), each form field other than a file at most {memory:,} bytes.")


def register_error_handlers(app) -> None:
    @app.errorhandler(APIError)
    def _api_error(err: APIError):
        return error_response(err.status, err.code, err.message, err.details)

    @app.errorhandler(DomainError)
    def _domain_error(err: DomainError):
        return error_response(http_status(err), err.code, err.message, err.details)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code, message = _HTTP_CODES.get(err.code or 400, ("http_error", err.description or "Request failed."))
        if err.code == 413:
            message = _too_large_message(app.config)
        response = error_response(err.code or 400, code, message)
        if err.code == 405 and hasattr(err, "valid_methods") and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # a bug: log it, never leak internals
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on the server; it was logged.")
