"""backend/db/prepared.py: statements run on the SQLite cursor store exactly what Connection.execute stores, read
back the same rows, fill in the same column defaults, raise SQLAlchemy's errors and refuse what they cannot do;
PostgreSQL and other drivers, and SQLite with INKLABEL_PREPARED_STATEMENTS=0, go through Connection.execute (the
same cases run on PostgreSQL to show the answers are the same there)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from backend.db.engine import configure_sqlite, engine_options, reads_only
from backend.db import prepared
from backend.db.prepared import Prepared
from ..support.app import postgres_url_or_skip

metadata = MetaData()
things = Table(
    "prepared_things", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(32), nullable=False, default="unnamed"),
    Column("doc", JSON, nullable=False, default=dict),
    Column("score", Float),
    Column("at", DateTime(timezone=True)),
)
WHEN = datetime(2026, 11, 27, 14, 30, 5, 123456, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'prepared.db'}"
    else:
        uri = postgres_url_or_skip()
    engine = create_engine(uri, **engine_options(uri))
    if request.param == "sqlite":
        configure_sqlite(engine)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def _stored(engine) -> list[tuple]:
    with reads_only(), engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(things).order_by(things.c.id))]


def test_cursor_path_stores_what_core_stores(engine):
    rows = [{"id": 1, "name": "a", "doc": {"regions": [[1, 2.5]], "s": "ü"}, "score": 0.25, "at": WHEN},
            {"id": 2, "name": "b", "doc": [], "score": None, "at": None}]
    with reads_only(False), engine.begin() as conn:
        conn.execute(insert(things), rows)
    core = _stored(engine)
    with reads_only(False), engine.begin() as conn:
        conn.execute(delete(things))
        Prepared(insert(things)).execute_many(conn, rows)
    assert _stored(engine) == core
    assert core[0][2] == {"regions": [[1, 2.5]], "s": "ü"} and core[0][4].replace(tzinfo=timezone.utc) == WHEN


def test_defaults_rowcount_and_returning(engine):
    with reads_only(False), engine.begin() as conn:
        Prepared(insert(things)).execute(conn, {"id": 7})  # name and doc from their Python-side defaults
        rename = Prepared(update(things).where(things.c.id == bindparam("b_id"))
                          .values(name=bindparam("name")).returning(things.c.name))
        assert rename.first(conn, {"b_id": 7, "name": "seven"}) == ("seven",)
        assert rename.first(conn, {"b_id": 8, "name": "nobody"}) is None
        touched = Prepared(update(things).where(things.c.score.is_(None)).values(score=bindparam("score")))
        assert touched.execute(conn, {"score": 1.5}) == 1
    assert _stored(engine) == [(7, "seven", {}, 1.5, None)]


def test_errors_are_sqlalchemy_errors_and_nothing_is_kept(engine):
    add = Prepared(insert(things))
    with pytest.raises(IntegrityError):
        with reads_only(False), engine.begin() as conn:
            add.execute(conn, {"id": 1})
            add.execute(conn, {"id": 1})  # primary key taken: the transaction rolls back
    assert _stored(engine) == []
    with pytest.raises((OperationalError, ProgrammingError)):  # "no such table": SQLite / PostgreSQL
        with reads_only(False), engine.begin() as conn:
            assert Prepared(select(things.c.id).where(things.c.id == bindparam("b"))).first(conn, {"b": 1}) is None
            conn.exec_driver_sql("DROP TABLE prepared_things")
            add.execute(conn, {"id": 2})  # no such table
    assert _stored(engine) == []  # the DROP rolled back with the rest


def test_rows_come_back_converted_and_named_as_from_core(engine):
    rows = [{"id": 1, "name": "a", "doc": {"k": [1, 2]}, "score": 0.5, "at": WHEN}, {"id": 2, "doc": None}]
    with reads_only(False), engine.begin() as conn:
        Prepared(insert(things)).execute_many(conn, rows[:1])
        Prepared(insert(things)).execute(conn, rows[1])  # JSON None is stored as JSON null, as Core stores it
    query = select(things, (things.c.score * 2).label("double")).where(things.c.id == bindparam("b_id"))
    with reads_only(), engine.connect() as conn:
        for image_id in (1, 2):
            core = conn.execute(query, {"b_id": image_id}).first()
            fast = Prepared(query).first(conn, {"b_id": image_id})
            assert tuple(fast) == tuple(core) and fast._fields == tuple(core._fields)
            assert (fast.doc, fast.at, fast.double) == (core.doc, core.at, core.double)
        assert conn.exec_driver_sql("SELECT CAST(doc AS TEXT) FROM prepared_things WHERE id = 2").scalar() == "null"
        if engine.dialect.name == "sqlite":  # the cursor path names its rows itself
            with pytest.raises(TypeError, match="result columns"):
                Prepared(select(things.c.id, things.c.id.label("id"))).first(conn, {})


@pytest.mark.parametrize("dialect_name, driver", [("postgresql", "psycopg"), ("mysql", "mysqldb")])
def test_other_databases_use_connection_execute(dialect_name, driver):
    """Only pysqlite runs on the cursor; the others go through Connection.execute with the same arguments."""
    calls = []

    class FakeConnection:
        class dialect:
            name = dialect_name

        dialect.driver = driver

        def execute(self, statement, params):
            calls.append(params)

            class Result:
                rowcount = 3

                def first(self):
                    return ("x",)
            return Result()

    statement = Prepared(update(things).values(name=bindparam("name")))
    assert statement.execute(FakeConnection(), {"name": "n"}) == 3
    assert statement.first(FakeConnection(), {"name": "m"}) == ("x",)  # the Row of Connection.execute
    statement.execute_many(FakeConnection(), [{"name": "a"}, {"name": "b"}])
    assert calls == [{"name": "n"}, {"name": "m"}, [{"name": "a"}, {"name": "b"}]]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # a server connection to lose
def test_a_lost_postgresql_connection_is_invalidated_and_an_operational_error(engine):
    """Connection.execute's handling of a disconnect holds for Prepared statements on PostgreSQL: the error is
    OperationalError (the API's 503) and the pooled connection is invalidated, so the next transaction gets a new
    one."""
    read = Prepared(select(things.c.id).where(things.c.id == bindparam("b_id")))
    with engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(OperationalError) as raised:
            read.first(conn, {"b_id": 1})
        assert raised.value.connection_invalidated and conn.invalidated
        conn.rollback()
        assert read.first(conn, {"b_id": 1}) is None  # reconnected


def test_statement_events_see_every_statement(engine):
    """With a listener of the engine's statement events (tracing, a test that interleaves a commit), Prepared goes
    through Connection.execute, so the listener sees its statements; without one it runs on the cursor."""
    from sqlalchemy import event

    seen = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement.split()[0])

    count = Prepared(select(things.c.id).where(things.c.id == bindparam("b_id")))
    with reads_only(), engine.connect() as conn:
        count.first(conn, {"b_id": 1})
        assert seen == []
        event.listen(engine, "before_cursor_execute", listener)
        try:
            count.first(conn, {"b_id": 1})
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    assert seen == ["SELECT"]



def test_the_setting_off_sends_sqlite_statements_through_connection_execute(tmp_path, monkeypatch):
    """INKLABEL_PREPARED_STATEMENTS=0 (prepared.ENABLED, read at import): no statement reaches the cursor path, and
    the answers are the same."""
    on_cursor = []
    run = Prepared._run
    monkeypatch.setattr(Prepared, "_run", lambda self, *args, **kw: on_cursor.append(args[1]) or run(self, *args, **kw))
    engine = create_engine(f"sqlite:///{tmp_path / 'off.db'}")
    configure_sqlite(engine)
    metadata.create_all(engine)
    read = Prepared(select(things.c.name).where(things.c.id == bindparam("b_id")))
    rename = Prepared(update(things).where(things.c.id == bindparam("b_id")).values(name=bindparam("name")))
    try:
        for enabled, name in ((True, "on"), (False, "off")):
            monkeypatch.setattr(prepared, "ENABLED", enabled)
            with reads_only(False), engine.begin() as conn:
                if enabled:
                    Prepared(insert(things)).execute(conn, {"id": 4})
                assert rename.execute(conn, {"b_id": 4, "name": name}) == 1
                assert read.first(conn, {"b_id": 4}) == (name,)
            assert len(on_cursor) == 3  # the three statements of the first round only
    finally:
        engine.dispose()
