"""Database engine setup: SQLite pragmas, immediate write transactions (read-only requests begin deferred) and the
writer queue (backend/db/writer_queue.py); the JSON codecs are in backend/db/codecs.py, schema creation and
upgrades in backend/db/migrate.py."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Engine

from backend.db.codecs import json_dumps, json_loads
from backend.db.writer_queue import _QueuedConnection, _writer_queue_for

# True while serving a request that only reads: its SQLite transactions begin DEFERRED (a shared read snapshot in WAL,
# no write lock), so readers never queue behind writers. Everything else begins IMMEDIATE.
_reads_only: ContextVar[bool] = ContextVar("inklabel_reads_only", default=False)


def set_reads_only(value: bool):
    return _reads_only.set(value)


@contextmanager
def reads_only(value: bool = True):
    token = _reads_only.set(value)
    try:
        yield
    finally:
        _reads_only.reset(token)


def commit_keeping_loaded(session=None) -> None:
    """Commit the session's transaction (its writes included) without expiring loaded objects.

    Loaded objects (the caller's ``g.user``) stay readable without a new query - and so without opening a new
    transaction. Use it only where the transaction changed nothing those objects hold (reads, or Core statements
    on other rows).
    """
    if session is None:
        from backend.db.extensions import db

        session = db.session()
    keep = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = keep


def end_read(session=None) -> None:
    """End a transaction that only read, keeping loaded objects (see commit_keeping_loaded; a rollback would expire
    them). On SQLite a transaction holds a lock (the write lock when it began IMMEDIATE, a read snapshot otherwise);
    ending a read as soon as it is done lets writers in while this request parses, validates or serialises.
    A transaction that wrote ends with commit_keeping_loaded, which says so."""
    commit_keeping_loaded(session)


def engine_options(uri: str) -> dict:
    common = {"json_serializer": json_dumps, "json_deserializer": json_loads}
    if uri.startswith("sqlite"):
        # Each connection waits for a writer instead of failing; pysqlite's own transaction handling is turned off
        # (isolation_level=None) so that `configure_sqlite` can begin every transaction with BEGIN IMMEDIATE.
        return {**common, "connect_args": {"timeout": 30, "isolation_level": None, "check_same_thread": False,
                                           "factory": _QueuedConnection}}
    return {**common, "pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}


def configure_sqlite(engine: Engine) -> None:
    """WAL, busy_timeout and foreign keys on every connection; writers take the lock when they begin.

    BEGIN IMMEDIATE means a transaction that will write never has to upgrade a read lock (the source of
    "database is locked" under concurrent writers); the busy timeout then queues writers behind each other.
    Requests declared read-only (GET/HEAD endpoints without `writes=True`) begin DEFERRED instead. Writers of
    this host wait for each other in `_WriterQueue` first (woken at once instead of SQLite's polling sleeps).
    """
    writer_queue = _writer_queue_for(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if writer_queue is not None:  # checkpoints after leaving the queue, not inside a queued commit
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    def begin(dbapi_connection) -> None:
        # The dialect's own begin (pysqlite's is a no-op) rather than a "begin" event: SQLAlchemy wraps its errors
        # like a statement's ("database is locked" -> OperationalError), and an engine without event listeners
        # skips the event dispatch on every statement (about 3 % of an annotation save's CPU).
        raw = dbapi_connection.dbapi_connection
        if _reads_only.get():
            raw.execute("BEGIN")
            return
        queued = writer_queue is not None and isinstance(raw, _QueuedConnection) \
            and raw.writer_queue is None and writer_queue.acquire()
        if queued:
            raw.writer_queue = writer_queue
        try:
            raw.execute("BEGIN IMMEDIATE")
        except BaseException:
            if queued:
                raw._leave_queue()
            raise

    engine.dialect.do_begin = begin


def setup_engine(db) -> None:
    engine = db.engine
    if engine.dialect.name == "sqlite" and not getattr(engine, "_inklabel_configured", False):
        configure_sqlite(engine)
        engine._inklabel_configured = True
