"""The annotation workflow: who works on which image, and how an image moves from new to accepted.

Plain SQLAlchemy on a session the caller passes (routes pass `db.session`; scripts and benchmarks their own), no
request objects, so every rule here can be tested and benchmarked without HTTP. The caller commits.

- queue.py: the active-learning queue hands out images with a lease (heartbeat, release);
- agreement.py: independent second annotations of a sample of images (agreement copies);
- review.py: the review state machine (accept / reject) and who gets the credit for an image.
Statistics live in backend/core/workflow_stats.py; who may write an image in which state in
backend/core/write_rules.py.

Image states and who moves them:

    new ──(annotator saves)──> in_progress ──(annotator submits)──> submitted ──(reviewer accepts)──> accepted
                                    ^                                   │
                                    └──────── rejected <──(reviewer rejects, comment required)┘
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy.orm import Session

POOL_STATUSES = ("new", "in_progress")  # what the queue hands out (plus a caller's own rejected images)
HELD_STATUSES = ("new", "in_progress", "rejected")  # statuses in which a lease means something
DONE_STATUSES = ("submitted", "accepted")  # the first annotation is finished: agreement copies may start
CANDIDATES_PER_ROUND = 8
CLAIM_ROUNDS = 6


def aware(value: Optional[datetime]) -> Optional[datetime]:
    """Datetimes read back from SQLite are naive UTC; make them aware."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def iso(value: Optional[datetime]) -> Optional[str]:
    value = aware(value)
    return value.isoformat() if value else None



def batching(session: Session) -> tuple[int, int]:
    """(candidates per query, rounds). PostgreSQL locks each candidate it reads (FOR UPDATE SKIP LOCKED) until the
    transaction ends, so it reads one at a time and leaves the others to concurrent callers; SQLite runs one writer
    at a time and reads a few per query."""
    if session.get_bind().dialect.name == "postgresql":
        return 1, CLAIM_ROUNDS * CANDIDATES_PER_ROUND
    return CANDIDATES_PER_ROUND, CLAIM_ROUNDS

