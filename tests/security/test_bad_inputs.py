"""The bad-input corpus (tests/support/bad_inputs.py) against the app: each input must be answered with a 4xx and a
clear message, and must leave every database row and every file of the workspace (blob store, exports, models,
uploads) byte-identical: a digest is taken before and after each input.
"""
from __future__ import annotations

from typing import Optional

from ..support.bad_inputs import CASES
from ..support.world import build_world, diff_digest, state_digest


def _clear_message(body) -> Optional[str]:
    """None when the error body is the API's shape with a message a person can act on; else what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return "not the {'error': {...}} shape"
    err = body["error"]
    if set(err) != {"code", "message", "details"}:
        return f"error keys {sorted(err)}"
    if err["code"] == "internal_error":
        return "internal_error"
    message = err["message"]
    if not isinstance(message, str) or len(message) < 12:
        return f"message too short: {message!r}"
    leaks = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "Exception")
    if any(leak in message for leak in leaks):
        return f"message leaks internals: {message!r}"
    return None


def test_corpus_is_large_and_distinct():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 60, len(CASES)
    areas = {c.area for c in CASES}
    assert areas == {"uploads", "geometry", "json", "query", "headers", "archives", "checkpoints"}
    assert all(400 <= s < 500 for c in CASES for s in c.status)


def test_every_hostile_input_is_refused_cleanly_and_changes_nothing(app):
    world = build_world(app)
    for user in world.users.values():  # first use of each token records last_used_at: do it before digesting
        assert user.client.get("/api/v1/auth/me").status_code == 200
    failures = []
    for item in CASES:
        if item.setup is not None:
            item.setup(world)
        saved = {key: app.config.get(key) for key in item.config}
        app.config.update(item.config)
        before = state_digest(app)
        try:
            resp = item.run(world)
        finally:
            for key, value in saved.items():
                app.config[key] = value
        after = state_digest(app)
        body = resp.get_json(silent=True)
        problem = None
        if resp.status_code not in item.status:
            problem = f"status {resp.status_code}, expected {item.status}: {resp.get_data(as_text=True)[:300]}"
        elif _clear_message(body):
            problem = _clear_message(body)
        elif item.code and body["error"]["code"] != item.code:
            problem = f"code {body['error']['code']!r}, expected {item.code!r} ({body['error']['message']})"
        changed = diff_digest(before, after)
        if changed:
            problem = (problem + "; " if problem else "") + f"stored state changed: {changed}"
        if getattr(world, "marker", None) is not None and world.marker.exists():
            problem = (problem + "; " if problem else "") + "the pickle payload RAN"
        if problem:
            failures.append(f"[{item.area}] {item.name}: {problem}")
    assert not failures, f"{len(failures)} of {len(CASES)} inputs mishandled:\n" + "\n".join(failures)
