"""Database engine setup: SQLite pragmas and immediate write transactions; schema creation and upgrades."""
from __future__ import annotations

import fcntl
import json
import logging
import logging.config
import os
import queue
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import orjson

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

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


def end_read(session=None) -> None:
    """Commit the current transaction without expiring loaded objects.

    On SQLite a transaction holds a lock (the write lock when it began IMMEDIATE, a read snapshot otherwise);
    ending a read as soon as it is done lets writers in while this request parses, validates or serialises.
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


# JSON columns (documents, regions, revisions: every annotation save writes several) are encoded with orjson, about
# 10x faster than the json module. Values orjson does not take the same way (integers beyond 64 bits, types it
# would encode differently: datetimes, dataclasses) fall back to json.dumps, so nothing changes for them. NaN and
# infinities, which JSON does not allow (PostgreSQL refuses them; the API never accepts them), are stored as null.
ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS \
    | orjson.OPT_PASSTHROUGH_SUBCLASS


def _json_default(value):
    raise TypeError(f"{type(value).__name__} is not handled by orjson here")


def json_dumps(value) -> str:
    try:
        return orjson.dumps(value, default=_json_default, option=ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def json_loads(text):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. NaN written by json.dumps before: the json module reads it back
        return json.loads(text)


def engine_options(uri: str) -> dict:
    common = {"json_serializer": json_dumps, "json_deserializer": json_loads}
    if uri.startswith("sqlite"):
        # Each connection waits for a writer instead of failing; pysqlite's own transaction handling is turned off
        # (isolation_level=None) so that `configure_sqlite` can begin every transaction with BEGIN IMMEDIATE.
        return {**common, "connect_args": {"timeout": 30, "isolation_level": None, "check_same_thread": False,
                                           "factory": _QueuedConnection}}
    return {**common, "pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}


CHECKPOINT_ROWS = 500  # rows changed by one process's commits between its WAL checkpoints (a save changes ~12)


class _Handoff:
    """One thread's wait for the cross-process lock, answered by the process's waiter thread: granted, or
    abandoned by the waiting thread when its time ran out (the waiter then lets go of the lock at once)."""

    def __init__(self):
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.state = "waiting"  # -> granted | abandoned | failed


class _WriterQueue:
    """Queues this host's SQLite writers for the database's write lock, handing it on the moment it is free.

    SQLite's own wait (busy_timeout) polls: a writer that finds the lock taken sleeps 1, 2, 5, 10 ... up to 100 ms
    between tries, so under concurrent saves the lock sits idle while the waiters sleep (most of a save's latency in
    benchmarks/bench_api.py). Before BEGIN IMMEDIATE a connection therefore takes, in order, a lock shared by the
    process's threads (the next thread is woken the moment the holder commits or rolls back) and an flock() on
    ``<database>-writers`` shared by the processes. A free flock is taken at once; a taken one is waited for by a
    blocking flock() on the process's waiter thread, which the kernel wakes as soon as the holder lets go (no
    polling: no CPU spent waiting, no idle gap between two writers), while the writer waits for the waiter's answer
    with a timeout (flock has none of its own, and a hung holder must not hold writers forever). It only orders
    waiting: BEGIN IMMEDIATE still takes SQLite's lock, and writers that do not queue here (another host, the sqlite3
    shell) are waited for by busy_timeout as before. A thread already holding it (a second connection in one thread)
    or a wait over `timeout` seconds goes straight to BEGIN IMMEDIATE, so this can delay but never deadlock.
    """

    def __init__(self, path: str, database: str | None = None, timeout: float = 30.0):
        self.path, self.database = path, database
        self.timeout = timeout
        self._pid = None
        self._for_this_process()

    def _for_this_process(self) -> None:
        if self._pid != os.getpid():  # after a fork: the parent's lock state, files and thread are not ours
            self._pid, self._lock = os.getpid(), threading.Lock()
            self._fd = self._owner = self._held_fd = self._waiter_fd = self._requests = None
            self._rows, self._checkpoint_due = 0, None

    def acquire(self) -> bool:
        self._for_this_process()
        me = threading.get_ident()
        deadline = time.monotonic() + self.timeout
        if self._owner == me or not self._lock.acquire(timeout=self.timeout):
            return False
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            held = self._fd if self._flock_now(self._fd) else self._flock_handed_over(deadline)
        except OSError:
            held = None
        if held is None:
            self._lock.release()
            return False
        self._owner, self._held_fd = me, held
        return True

    @staticmethod
    def _flock_now(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _flock_handed_over(self, deadline: float) -> int | None:
        """Wait for the waiter thread to take the flock for us (on its own open file, so that a lock it takes for
        an abandoned wait never passes for ours); None when `deadline` passes first."""
        if self._requests is None:
            self._waiter_fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._requests = queue.SimpleQueue()
            threading.Thread(target=self._wait_on_behalf, args=(self._waiter_fd, self._requests),
                             name="inklabel-writer-queue", daemon=True).start()
        handoff = _Handoff()
        self._requests.put(handoff)
        handoff.done.wait(max(0.0, deadline - time.monotonic()))
        with handoff.lock:
            if handoff.state == "granted":
                return self._waiter_fd
            handoff.state = "abandoned"
        return None

    @staticmethod
    def _wait_on_behalf(fd: int, requests: "queue.SimpleQueue[_Handoff]") -> None:
        while True:
            handoff = requests.get()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without the GIL until the holder lets go
            except OSError:
                with handoff.lock:
                    handoff.state = "failed" if handoff.state == "waiting" else handoff.state
                handoff.done.set()
                continue
            with handoff.lock:
                if handoff.state == "abandoned":
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    continue
                handoff.state = "granted"
            handoff.done.set()

    def wrote(self, rows: int) -> None:
        """Count the rows a commit changed; every CHECKPOINT_ROWS of them in this process, wake its checkpointer.

        SQLite's automatic checkpoint runs inside the commit that crosses its threshold (1000 pages), so the
        committer held this queue while it copied and synced some 4 MB: every writer waited for it (save p99 27-29
        against 23 ms without checkpoints, benchmarks/bench_api.py), and run right after the commit instead it
        still delayed that save's answer. Connections that queue here turn it off (configure_sqlite), and a
        thread of the process checkpoints on a connection of its own (the sqlite3 module lets go of the GIL while
        SQLite works): see _checkpoint_on_demand."""
        self._rows += rows
        if self.database is not None and self._rows >= CHECKPOINT_ROWS:
            self._rows = 0
            if self._checkpoint_due is None:
                self._checkpoint_due = threading.Event()
                threading.Thread(target=self._checkpoint_on_demand, args=(self._checkpoint_due,),
                                 name="inklabel-wal-checkpoint", daemon=True).start()
            self._checkpoint_due.set()

    def _checkpoint_on_demand(self, due: threading.Event) -> None:
        """Two PASSIVE checkpoints (they wait for no reader): the first while writers go on copies the bulk of the
        WAL into the database file; the second, in this queue, copies the few frames written meanwhile. A WAL left
        fully copied is restarted from its beginning by the next writer; checkpoints that always ran beside a
        writer would never leave it so, and it grew without end (2.2 GB in a 30 s benchmark)."""
        connection = None
        while True:
            due.wait()
            due.clear()
            try:
                if connection is None:
                    connection = sqlite3.connect(self.database, isolation_level=None, timeout=0,
                                                 check_same_thread=False)
                    connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                if self.acquire():
                    try:
                        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    finally:
                        self.release()
            except sqlite3.Error as err:  # another process is checkpointing (it copies these pages too), or a hiccup
                log.info("WAL checkpoint of %s skipped: %s", self.database, err)

    def release(self) -> None:
        if self._pid != os.getpid() or self._owner is None:
            return
        fd, self._owner, self._held_fd = self._held_fd, None, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


class _QueuedConnection(sqlite3.Connection):
    """A pysqlite connection that leaves the writer queue when its transaction ends, however it ends, and counts
    its committed writes for the WAL checkpoints (see _WriterQueue.wrote)."""

    writer_queue: _WriterQueue | None = None
    _changes_counted = 0  # total_changes at the last commit counted

    def _leave_queue(self) -> None:
        writers, self.writer_queue = self.writer_queue, None
        if writers is not None:
            writers.release()

    def commit(self):
        writers = self.writer_queue
        try:
            result = super().commit()
        finally:
            self._leave_queue()
        if writers is not None:
            changes = self.total_changes
            writers.wrote(changes - self._changes_counted)
            self._changes_counted = changes
        return result

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self._leave_queue()

    def close(self):
        try:
            return super().close()
        finally:
            self._leave_queue()


_writer_queues: dict[str, _WriterQueue] = {}


def _writer_queue_for(engine: Engine) -> _WriterQueue | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:") \
            or os.environ.get("INKLABEL_SQLITE_WRITER_QUEUE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    path = os.path.abspath(database) + "-writers"
    return _writer_queues.setdefault(path, _WriterQueue(path, os.path.abspath(database)))


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


def has_migrations() -> bool:
    return any((MIGRATIONS_DIR / "versions").glob("*.py"))


def head_revisions() -> set[str]:
    """The heads of the migrations folder, from each file's `revision` and `down_revision` lines (asking Alembic
    means importing it: ~0.3 s at every command)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for name, value in re.findall(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+)$", source, re.M):
            (revisions if name == "revision" else parents).update(re.findall(r"['\"]([^'\"]+)['\"]", value))
    return revisions - parents


def schema_at_head(engine: Engine) -> bool:
    """True when the database's alembic_version holds exactly the migrations' heads (one short read)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    heads = head_revisions()
    try:
        with reads_only(), engine.connect() as connection:
            stored = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:  # no alembic_version table: a new database
        return False
    return bool(heads) and stored == heads


def init_db(app) -> None:
    """Bring the database to the current schema: Alembic upgrade when migrations exist, else create_all. A database
    already at the head is only checked (no Alembic import)."""
    from backend.db.extensions import db, init_migrate

    with app.app_context():
        if has_migrations() and not app.config.get("SCHEMA_CREATE_ALL"):
            if schema_at_head(db.engine):
                # the logging setup the upgrade's env.py would have made (root at WARN): commands print the same
                logging.config.fileConfig(MIGRATIONS_DIR / "alembic.ini", disable_existing_loggers=False)
                return
            from flask_migrate import upgrade

            init_migrate(app)
            upgrade(directory=str(MIGRATIONS_DIR))
        else:
            db.create_all()
