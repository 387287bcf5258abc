#!/usr/bin/env python
"""Security figures: API fuzzing throughput and findings, the bad-input corpus, the polyglot scan's cost, the login
rate limit.

1. fuzz: schemathesis over /api/v1/openapi.json (tests/support/fuzz.py), as admin and as annotator, with
   --examples examples per operation and data mode; calls, operations reached, calls/s, statuses, failures.
2. corpus: every hostile input of tests/support/bad_inputs.py, each with a digest of the database rows and
   workspace files before and after; time per input and per area.
3. polyglot scan: backend.media.upload_checks.find_markup over the real tattoo photos, against their full decode.
4. login: latency of a wrong password, and of the 429 answered once the user name is over the limit.

    python benchmarks/bench_security.py                            # SQLite
    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test_h \
        python benchmarks/bench_security.py --database postgresql
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "data" / "real-tattoos"


def _quiet():
    import logging

    logging.disable(logging.WARNING)


def bench_fuzz(database: str, examples: int) -> None:
    from tests.support.app import build_app
    from tests.support.fuzz import fuzz_as
    from tests.support.world import build_world

    app = build_app(Path(tempfile.mkdtemp()), database, LOGIN_MAX_FAILURES=0, LOGIN_MAX_FAILURES_PER_ADDRESS=0)
    world = build_world(app)
    print(f"\n## fuzz ({database}, {examples} examples per operation and mode)\n")
    print("| caller | calls | operations | wall s | calls/s | 5xx | failures | statuses |")
    print("|---|---|---|---|---|---|---|---|")
    for who in ("admin", "annotator"):
        started = time.perf_counter()
        failures, stats = fuzz_as(world, who, examples)
        wall = time.perf_counter() - started
        errors = sum(n for code, n in stats["statuses"].items() if code >= 500)
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(stats["statuses"].items()))
        print(f"| {who} | {stats['calls']} | {len(stats['operations'])} | {wall:.1f} | {stats['calls'] / wall:.0f} | "
              f"{errors} | {len(failures)} | {statuses} |")
        for failure in failures:
            print("   ", failure.splitlines()[0])


def bench_corpus(database: str) -> None:
    from tests.support.app import build_app
    from tests.support.bad_inputs import CASES
    from tests.support.world import build_world, diff_digest, state_digest

    app = build_app(Path(tempfile.mkdtemp()), database)
    world = build_world(app)
    for user in world.users.values():
        user.client.get("/api/v1/auth/me")
    per_area: dict[str, list[float]] = defaultdict(list)
    digest_times, refused, changed = [], 0, 0
    for item in CASES:
        if item.setup:
            item.setup(world)
        saved = {k: app.config.get(k) for k in item.config}
        app.config.update(item.config)
        t0 = time.perf_counter()
        before = state_digest(app)
        t1 = time.perf_counter()
        resp = item.run(world)
        t2 = time.perf_counter()
        after = state_digest(app)
        digest_times.append(t1 - t0)
        app.config.update(saved)
        per_area[item.area].append((t2 - t1) * 1000)
        refused += resp.status_code in item.status
        changed += bool(diff_digest(before, after))
        if resp.status_code not in item.status or diff_digest(before, after):
            print(f"  unexpected: {item.name}: {resp.status_code} {diff_digest(before, after)}")
    print(f"\n## bad-input corpus ({database}): {len(CASES)} inputs, {refused} refused as expected, "
          f"{changed} changed stored state; state digest {statistics.median(digest_times) * 1000:.1f} ms\n")
    print("| area | inputs | median ms | max ms |")
    print("|---|---|---|---|")
    for area, times in per_area.items():
        print(f"| {area} | {len(times)} | {statistics.median(times):.1f} | {max(times):.1f} |")


def bench_polyglot_scan() -> None:
    from backend.media.imaging import decode_image
    from backend.media.upload_checks import find_markup

    files = sorted(p for p in (REAL / "images").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        print("\n(polyglot scan: no photos under ../shared/data/real-tattoos/images)")
        return
    scan, decode, found = [], [], 0
    for path in files:
        data = path.read_bytes()
        fmt = "jpeg" if data[:2] == b"\xff\xd8" else "png"
        t0 = time.perf_counter()
        found += find_markup(data, fmt) is not None
        t1 = time.perf_counter()
        try:
            decode_image(data, 100_000_000)
        except Exception:  # noqa: BLE001 (a refused photo is still timed)
            pass
        t2 = time.perf_counter()
        scan.append(t1 - t0)
        decode.append(t2 - t1)
    print(f"\n## polyglot scan over {len(files)} real photos: {found} flagged (false positives); scan median "
          f"{statistics.median(scan) * 1e6:.0f} µs (max {max(scan) * 1e6:.0f}), full decode median "
          f"{statistics.median(decode) * 1e3:.1f} ms: the scan is "
          f"{statistics.median(scan) / statistics.median(decode):.2%} of a decode")


def bench_login(database: str) -> None:
    from tests.support.app import build_app, make_user

    app = build_app(Path(tempfile.mkdtemp()), database, LOGIN_MAX_FAILURES=20)
    make_user(app, "alice", "annotator")
    client = app.test_client()
    body = {"username": "alice", "password": "wrong-password"}
    wrong, limited = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        assert client.post("/api/v1/auth/login", json=body).status_code == 401
        wrong.append(time.perf_counter() - t0)
    for _ in range(20):
        t0 = time.perf_counter()
        assert client.post("/api/v1/auth/login", json=body).status_code == 429
        limited.append(time.perf_counter() - t0)
    print(f"\n## login ({database}): wrong password median {statistics.median(wrong) * 1000:.1f} ms (scrypt check + "
          f"failure row); over the limit (429, no hash) median {statistics.median(limited) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--examples", type=int, default=25, help="fuzz examples per operation and data mode")
    parser.add_argument("--only", choices=["fuzz", "corpus", "scan", "login"], action="append")
    args = parser.parse_args()
    _quiet()
    parts = args.only or ["fuzz", "corpus", "scan", "login"]
    if "fuzz" in parts:
        bench_fuzz(args.database, args.examples)
    if "corpus" in parts:
        bench_corpus(args.database)
    if "scan" in parts:
        bench_polyglot_scan()
    if "login" in parts:
        bench_login(args.database)


if __name__ == "__main__":
    main()
