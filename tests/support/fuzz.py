"""The API fuzzer: schemathesis generates requests from /api/v1/openapi.json (valid and invalid bodies, queries and
path values) for every operation and calls the app in-process (WSGI) as one user of a world (tests/support/world.py).
Every answer must be no 5xx, a status the spec declares, the declared content type and a body matching the declared
schema. Half the valid examples name objects that exist, so handlers run past their 404s. The stored state the
fuzzer may wreck (its own users and tokens) is restored before every call so that it keeps testing as the role it
is meant to be. Run by tests/security/test_fuzz.py and benchmarks/bench_security.py.
"""
from __future__ import annotations

import time

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from backend.db.extensions import db
from backend.db.models import ApiToken, User


def _restore(world) -> None:
    """Undo what earlier fuzz calls did to the callers themselves (revoked tokens, deactivated or demoted users)."""
    with world.app.app_context():
        for user in world.users.values():
            db.session.execute(update(User).where(User.id == user.id).values(active=True, role=user.role))
            db.session.execute(update(ApiToken).where(ApiToken.id == user.token_id).values(revoked_at=None))
        db.session.commit()


# Schema-valid requests may still be refused for what a JSON schema cannot say: image and archive contents, keys
# that must be in the workspace's taxonomy, geometry that is degenerate or outside the image, objects in the wrong
# state. Any other refusal of schema-valid data (a constraint the spec omits) fails the fuzz test.
SEMANTIC_REFUSALS = {
    "invalid_geometry", "invalid_region", "invalid_tags", "invalid_box", "invalid_point", "invalid_assist",
    "unsupported_format", "unsupported_media_type", "corrupt_image", "truncated_image", "too_many_pixels",
    "empty_file", "polyglot", "file_too_large", "bad_archive", "path_traversal", "absolute_path", "symlink",
    "encrypted", "too_many_entries", "compression_ratio", "entry_too_large", "duplicate_entry", "bad_name",
    "unknown_region",  # a region comment names a region of the image's current document
}
SEMANTIC_MESSAGES = ("unknown style", "unknown flag", "Unknown style", "Unknown flag", "multiple of 32",
                     "unknown segmenter", "unknown encoder", "unknown timm", "needs a box", "needs points",
                     "needs a comment", "self_lockout",
                     "among the first any attacker tries",  # a password on the blocklist, or the user's own name
                     "val + test must be below 1")  # a sum of two fields: JSON Schema cannot say it


def _accepts_valid_data(label: str, response) -> None:
    if response.status_code not in (400, 415, 422):
        return
    error = (response.json() or {}).get("error", {})
    if error.get("code") in SEMANTIC_REFUSALS or any(m in error.get("message", "") for m in SEMANTIC_MESSAGES):
        return
    raise AssertionError(f"{label}: schema-valid data refused with {response.status_code} {error}: the spec "
                         "should state this constraint")


def fuzz_as(world, who: str, examples: int) -> tuple[list[str], dict]:
    """Every operation × (valid, invalid) data, `examples` examples each, as the world's user `who`; returns the
    failures found and what was covered (calls, seconds, statuses, operations)."""
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", world.app)
    caller = world.users[who]
    stats = {"calls": 0, "seconds": 0.0, "statuses": {}, "operations": set()}
    budget = settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    known = {"image_id": world.image_id, "version": 1, "job_id": world.jobs[who], "export_id": world.export_id,
             "model_id": world.model_id, "token_id": caller.spare_token_id, "user_id": world.other.id}
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                strategy = operation.as_strategy(generation_mode=mode)
            except Exception as err:  # noqa: BLE001 (a schema schemathesis cannot negate, e.g. no parameters)
                failures.append(f"{operation.label} [{mode.value}]: no strategy: {err}")
                continue

            @given(case=strategy, real_ids=st.booleans())
            @budget
            def check(case, real_ids):
                _restore(world)
                if real_ids and mode == GenerationMode.POSITIVE and case.path_parameters:
                    # Half the valid cases name objects that exist, so the fuzzer gets past the 404s.
                    for name in case.path_parameters:
                        if name in known:
                            case.path_parameters[name] = known[name]
                started = time.perf_counter()
                response = case.call_and_validate(headers={"Authorization": f"Bearer {caller.token}"},
                                                  excluded_checks=[positive_data_acceptance])
                if mode == GenerationMode.POSITIVE:
                    _accepts_valid_data(operation.label, response)
                stats["calls"] += 1
                stats["seconds"] += time.perf_counter() - started
                stats["statuses"][response.status_code] = stats["statuses"].get(response.status_code, 0) + 1
                stats["operations"].add(operation.label)

            try:
                check()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as err:  # noqa: BLE001 (schemathesis raises a FailureGroup describing the case)
                failures.append(f"{operation.label} [{mode.value}] as {who}: {str(err)[:1500]}")
    return failures, stats
