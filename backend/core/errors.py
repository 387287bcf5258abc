"""What a service refuses, and why, without HTTP: `code` (stable, machine-readable), `message` (for a person),
`details` (structured, e.g. the region index or the current document).

The kind of refusal is the class; backend/web/errors.py maps each kind to its HTTP status, the CLI prints the
message. Services in core/, media/, db/, jobs/, datasets/ and ml/ raise these, never web errors.
"""
from __future__ import annotations


class DomainError(Exception):
    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class Invalid(DomainError):
    """The request names things that exist but its content is not acceptable (a region, a tag, a parameter)."""


class NotFound(DomainError):
    """No such object, or one the caller may not see (the same answer, so that it does not leak existence)."""


class Forbidden(DomainError):
    """The object exists and the caller may see it, but may not do this to it (an accepted image, own work)."""


class Conflict(DomainError):
    """The object's state does not allow this now (a stale version, a lease held by someone else, a job not ready)."""


class Unavailable(DomainError):
    """A service this needs is down for now; trying again later may work."""


def not_found(what: str = "resource") -> NotFound:
    return NotFound("not_found", f"{what} not found")
