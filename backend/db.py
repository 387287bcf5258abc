"""Database engine setup: SQLite pragmas and immediate write transactions; schema creation and upgrades."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

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


def engine_options(uri: str) -> dict:
    if uri.startswith("sqlite"):
        # Each connection waits for a writer instead of failing; pysqlite's own transaction handling is turned off
        # (isolation_level=None) so that `configure_sqlite` can begin every transaction with BEGIN IMMEDIATE.
        return {"connect_args": {"timeout": 30, "isolation_level": None, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}


def configure_sqlite(engine: Engine) -> None:
    """WAL, busy_timeout and foreign keys on every connection; writers take the lock when they begin.

    BEGIN IMMEDIATE means a transaction that will write never has to upgrade a read lock (the source of
    "database is locked" under concurrent writers); the busy timeout then queues writers behind each other.
    Requests declared read-only (GET/HEAD endpoints without `writes=True`) begin DEFERRED instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN" if _reads_only.get() else "BEGIN IMMEDIATE")


def setup_engine(db, app) -> None:
    engine = db.engine
    if engine.dialect.name == "sqlite" and not getattr(engine, "_inklabel_configured", False):
        configure_sqlite(engine)
        engine._inklabel_configured = True


def has_migrations() -> bool:
    return any((MIGRATIONS_DIR / "versions").glob("*.py"))


def init_db(app) -> None:
    """Bring the database to the current schema: Alembic upgrade when migrations exist, else create_all."""
    from .extensions import db

    with app.app_context():
        if has_migrations() and not app.config.get("SCHEMA_CREATE_ALL"):
            from flask_migrate import upgrade

            upgrade(directory=str(MIGRATIONS_DIR))
        else:
            db.create_all()
