"""API fuzzing (tests/support/fuzz.py) as an admin and as an annotator: every answer must be no 5xx, a status the spec
declares, the declared content type and a body matching the declared schema.

Bounded for CI: FUZZ_EXAMPLES examples per operation, data mode (valid / invalid) and caller (environment
INKLABEL_FUZZ_EXAMPLES, default 12), on SQLite (INKLABEL_FUZZ_DATABASE=postgresql for PostgreSQL); about 1.5
minutes on two cores.
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is not installed (requirements-dev.txt)")
from backend.db.extensions import db  # noqa: E402

from ..support.app import build_app  # noqa: E402
from ..support.fuzz import fuzz_as  # noqa: E402
from ..support.world import build_world  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("INKLABEL_FUZZ_EXAMPLES", "12"))
FUZZ_DATABASE = os.environ.get("INKLABEL_FUZZ_DATABASE", "sqlite")  # or postgresql (TEST_DATABASE_URL)
CALLERS = ("admin", "annotator")


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory):
    app = build_app(tmp_path_factory.mktemp("fuzz"), FUZZ_DATABASE, LOGIN_MAX_FAILURES=0,
                    LOGIN_MAX_FAILURES_PER_ADDRESS=0)
    world = build_world(app)
    yield world
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def fuzz_runs(fuzz_world):
    """(failures, stats) of the fuzz as a caller, run once per module by whichever test asks first, so that each
    test here passes or fails the same whatever ran before it."""
    runs: dict[str, tuple[list[str], dict]] = {}

    def run(who: str) -> tuple[list[str], dict]:
        if who not in runs:
            runs[who] = fuzz_as(fuzz_world, who, FUZZ_EXAMPLES)
        return runs[who]

    return run


@pytest.mark.parametrize("who", CALLERS)
def test_fuzz_api(fuzz_runs, who):
    failures, _stats = fuzz_runs(who)
    assert not failures, f"{len(failures)} operations failed:\n" + "\n\n".join(failures)


def test_fuzz_summary(fuzz_world, fuzz_runs):
    """What the fuzz covered (the figures in benchmarks/results): every caller reached operations, none with a 5xx."""
    spec = fuzz_world.app.test_client().get("/api/v1/openapi.json").get_json()
    every = {f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops}
    every.discard("GET /api/v1/openapi.json")  # schemathesis does not fuzz the schema's own URL
    for who in CALLERS:
        _failures, stats = fuzz_runs(who)
        print(f"\nfuzz as {who}: {stats['calls']} calls over {len(stats['operations'])} of {len(every)} operations "
              f"in {stats['seconds']:.1f}s ({FUZZ_EXAMPLES} examples per operation and mode); "
              f"statuses {dict(sorted(stats['statuses'].items()))}; not reached: {sorted(every - stats['operations'])}")
        assert stats["calls"] > 0 and stats["operations"] <= every, who
        assert not [code for code in stats["statuses"] if code >= 500], (who, stats["statuses"])
