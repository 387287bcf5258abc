"""The SQLite writer queue (backend/db/engine.py): writers wait for each other in a queue (never for readers),
begin IMMEDIATE, give up on a hung holder, and checkpoint the WAL off their commit."""
from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from backend.db.engine import reads_only
from backend.db.writer_queue import _QueuedConnection, _WriterQueue, _writer_queue_for
from backend.db.extensions import db
from backend.db.models import Image


def test_a_writer_holding_the_queue_lets_readers_through(sqlite_app):
    """Writers wait for each other in the queue (never for readers); it is left on commit, rollback and close."""
    app = sqlite_app
    with app.app_context(), reads_only(False):  # (a request earlier in this thread may have left it on)
        queue = _writer_queue_for(db.engine)
        assert queue is not None and queue.path.endswith("inklabel.db-writers")
        conn = db.engine.connect()
        assert isinstance(conn.connection.dbapi_connection, _QueuedConnection)
        conn.execute(text("SELECT 1"))  # a write transaction: BEGIN IMMEDIATE, in the queue
        assert queue._owner is not None
        with reads_only():
            with db.engine.connect() as reader:  # a DEFERRED read goes ahead while the writer holds the lock
                assert reader.execute(select(Image.id)).all() == []
        done = []

        def other_writer():
            with app.app_context(), reads_only(False):
                with db.engine.begin() as writer:
                    writer.execute(insert(Image.__table__).values(
                        sha256="b" * 64, width=1, height=1, format="jpeg", size_bytes=1, source="upload",
                        status="new", flags=[], styles=[]))
                done.append(True)

        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join(0.3)
        assert not done  # queued behind the open write transaction
        conn.rollback()
        assert queue._owner is None or thread.is_alive()
        thread.join(10)
        assert done
        conn.execute(text("SELECT 1"))
        conn.close()  # closing with a transaction open leaves the queue too
        assert queue._owner is None
        assert db.session.scalar(select(Image.sha256)) == "b" * 64


def test_the_writer_queue_gives_up_on_a_hung_holder_after_its_timeout(tmp_path):
    """flock has no timeout of its own: a writer of another process that never commits must not hold the others
    forever; after `timeout` they go on to BEGIN IMMEDIATE (and SQLite's busy_timeout)."""
    path = str(tmp_path / "inklabel.db-writers")
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # another open file: conflicts like another process
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        queue = _WriterQueue(path, timeout=0.2)
        started = time.monotonic()
        assert queue.acquire() is False
        assert 0.2 <= time.monotonic() - started < 5
        assert queue._owner is None and queue._lock.acquire(blocking=False)  # the thread lock was given back
        queue._lock.release()
        fcntl.flock(holder, fcntl.LOCK_UN)
        assert queue.acquire() is True
        queue.release()
    finally:
        os.close(holder)


@pytest.fixture
def writers_file(tmp_path):
    """The queue's lock file and two other open files of it: each conflicts with the queue like another process."""
    path = str(tmp_path / "inklabel.db-writers")
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    other = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield path, holder, other
    finally:
        os.close(holder)
        os.close(other)


def test_a_waiting_writer_gets_the_lock_as_soon_as_the_holder_lets_go(writers_file):
    """The wait for another process's writer is a blocking flock on the waiter thread: handed over at once when the
    holder unlocks (no polling interval), and exclusive: while the queue holds it, no other open file gets it."""
    path, holder, other = writers_file
    fcntl.flock(holder, fcntl.LOCK_EX)
    queue = _WriterQueue(path, timeout=10)
    got = []
    waiting = threading.Thread(target=lambda: got.append((queue.acquire(), time.monotonic())))
    waiting.start()
    time.sleep(0.2)
    assert not got  # still waiting for the holder
    unlocked_at = time.monotonic()
    fcntl.flock(holder, fcntl.LOCK_UN)
    waiting.join(5)
    assert got and got[0][0] is True
    assert got[0][1] - unlocked_at < 0.5
    with pytest.raises(BlockingIOError):  # held for real, on the waiter's open file
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    queue.release()
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    fcntl.flock(other, fcntl.LOCK_UN)


def test_a_lock_taken_for_an_abandoned_wait_is_let_go(writers_file):
    """A writer that gave up waiting leaves nothing behind: when the holder finally unlocks, the waiter thread's
    late lock is dropped at once, and the next writer gets the lock for itself."""
    path, holder, other = writers_file
    fcntl.flock(holder, fcntl.LOCK_EX)
    queue = _WriterQueue(path, timeout=0.2)
    assert queue.acquire() is False  # gave up; the waiter thread still waits on its behalf
    fcntl.flock(holder, fcntl.LOCK_UN)
    deadline = time.monotonic() + 5
    while True:  # the waiter takes the lock for the abandoned wait and lets go of it
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            assert time.monotonic() < deadline, "the abandoned wait kept the lock"
            time.sleep(0.01)
    fcntl.flock(other, fcntl.LOCK_UN)
    assert queue.acquire() is True
    with pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    queue.release()


@pytest.fixture
def locked_sqlite(tmp_path):
    """An engine configured as the app's (configure_sqlite), waiting at most 50 ms for a lock, and a plain sqlite3
    connection of the same database file to hold locks with."""
    from sqlalchemy import create_engine, event

    from backend.db.engine import configure_sqlite, engine_options

    uri = f"sqlite:///{tmp_path / 'locks.db'}"
    engine = create_engine(uri, **engine_options(uri))
    configure_sqlite(engine)

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_connection, _record):  # after configure_sqlite's 30 s
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(str(tmp_path / "locks.db"), isolation_level=None, timeout=0.05)
    try:
        yield engine, other
    finally:
        other.close()
        engine.dispose()


def test_sqlite_writers_begin_immediate_and_readers_deferred(locked_sqlite):
    """configure_sqlite's BEGIN (the dialect's do_begin): a writing transaction holds the write lock from its first
    statement, a read-only one (reads_only) does not, and a lock it cannot get is SQLAlchemy's OperationalError,
    which the app answers with 503 database_unavailable, leaving the writer queue to the next writer."""
    from sqlalchemy.exc import OperationalError

    from backend.web.observability import _is_connection_error

    engine, other = locked_sqlite
    with reads_only(False), engine.connect() as conn:  # (a GET of an earlier test may have left it on)
        conn.execute(text("SELECT 1"))
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        conn.rollback()
    with reads_only(), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        other.execute("BEGIN IMMEDIATE")  # a reader leaves writers in
        other.execute("ROLLBACK")
        conn.rollback()
    other.execute("BEGIN IMMEDIATE")
    try:
        with reads_only(False), engine.connect() as conn, pytest.raises(OperationalError, match="locked") as failed:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _is_connection_error(failed.value)
        with reads_only(), engine.connect() as conn:  # readers go on while a writer holds the lock
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    finally:
        other.execute("ROLLBACK")
    assert _writer_queue_for(engine)._owner is None  # the failed BEGIN left the queue
    with reads_only(False), engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    assert other.execute("SELECT x FROM t").fetchall() == [(2,)]


def test_queued_writers_checkpoint_the_wal_on_a_thread_not_in_their_commit(tmp_path):
    """SQLite's automatic checkpoint is off for connections that queue (it would run inside a queued commit and
    hold every other writer); instead each CHECKPOINT_ROWS rows changed by a process's commits wake its
    checkpoint thread, which copies the WAL into the database file, and a fully copied WAL starts over."""
    from sqlalchemy import create_engine

    from backend.db.engine import configure_sqlite, engine_options
    from backend.db.writer_queue import CHECKPOINT_ROWS

    database = tmp_path / "wal.db"
    uri = f"sqlite:///{database}"
    engine = create_engine(uri, **engine_options(uri))
    configure_sqlite(engine)
    try:
        with reads_only(False), engine.begin() as conn:
            conn.execute(text("CREATE TABLE pages (x BLOB)"))
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        with sqlite3.connect(str(database)) as plain:
            plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the table into the file, an empty WAL
        before = database.stat().st_size
        blob = os.urandom(8192)
        rounds = 4
        stop = threading.Event()

        def small_writes():  # another writer all along: checkpoints beside it never catch up with it by themselves
            while not stop.is_set():
                with reads_only(False), engine.begin() as conn:
                    conn.execute(text("INSERT INTO pages VALUES (x'00')"))

        other_writer = threading.Thread(target=small_writes)
        other_writer.start()
        for done in range(1, rounds + 1):
            for _ in range(CHECKPOINT_ROWS // 10):
                with reads_only(False), engine.begin() as conn:
                    conn.execute(text("INSERT INTO pages VALUES (:x)"), [{"x": blob}] * 10)
            deadline = time.monotonic() + 10
            while database.stat().st_size < before + done * CHECKPOINT_ROWS * len(blob):  # the pages reached the file
                assert time.monotonic() < deadline, "no checkpoint copied the WAL into the database file"
                time.sleep(0.05)
        stop.set()
        other_writer.join(10)
        # The WAL started over after the checkpoints: it holds about a round, not all of them.
        wal = Path(f"{database}-wal").stat().st_size
        assert wal < 2.5 * CHECKPOINT_ROWS * len(blob) < 0.7 * rounds * CHECKPOINT_ROWS * len(blob), wal
        assert any(thread.name == "inklabel-wal-checkpoint" for thread in threading.enumerate())
    finally:
        engine.dispose()
