"""One error shape for every failure: {"error": {"code", "message", "details"}} with a 4xx status."""
from __future__ import annotations

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def not_found(what: str = "resource") -> APIError:
    return APIError(404, "not_found", f"{what} not found")


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


def register_error_handlers(app) -> None:
    @app.errorhandler(APIError)
    def _api_error(err: APIError):
        return error_response(err.status, err.code, err.message, err.details)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code, message = _HTTP_CODES.get(err.code or 400, ("http_error", err.description or "Request failed."))
        if err.code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"The request body is larger than the server accepts ({limit} bytes)."
        response = error_response(err.code or 400, code, message)
        if err.code == 405 and hasattr(err, "valid_methods") and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # a bug: log it, never leak internals
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on the server; it was logged.")
