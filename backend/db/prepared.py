"""Core statements compiled once and run straight on the DBAPI cursor, for the statements of the annotation save.

On SQLite every write transaction holds the whole database: saves queue for it (backend/db/engine.py), so the time a
save spends between BEGIN IMMEDIATE and COMMIT is time every other save waits. Through Connection.execute each
statement of the save took 50-110 us in-process (execution context, parameter and result objects included); run
as below, the same statements took 0.37 ms less of a save's CPU (2.27 -> 1.90 ms, benchmarks/results/api.md).
`Prepared` compiles a statement once per dialect and set of parameter names, then binds
the parameters with the same type processors SQLAlchemy would use (JSON, datetimes) and runs it on the cursor of
the connection the session already holds: same transaction, same SQL, same stored values. Errors are raised as
SQLAlchemy's (IntegrityError, OperationalError), as from Connection.execute.

PostgreSQL through psycopg runs on the cursor too (a lost connection is invalidated as Connection.execute would);
other drivers, and any engine with listeners of its statement events, go through Connection.execute. Python-side
column defaults of columns a row leaves out are filled in like SQLAlchemy fills them (scalars and context-free
callables); anything else is refused when compiling. Result rows go through the columns' result processors and
come back as named tuples. Used on the hot path of every annotator: the save's write transaction, the document
reads and the caller's token or session lookup.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Iterable, Sequence

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

ON_CURSOR = {("sqlite", "pysqlite"), ("postgresql", "psycopg")}  # (dialect, driver) run on the cursor


class _Plan:
    __slots__ = ("sql", "binds", "named", "defaults", "dialect", "row", "result_types", "results")

    def __init__(self, statement, dialect, keys: tuple[str, ...]):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        processors = compiled._bind_processors
        # Positional placeholders (SQLite's ?) in their order, or named ones (psycopg's %(name)s) by name.
        self.named = compiled.positiontup is None
        names = dict.fromkeys(compiled.bind_names.values()) if self.named else compiled.positiontup
        escaped = compiled.escaped_bind_names or {}
        # (placeholder, parameter key, value when the caller gives none, type processor)
        self.binds = [(escaped.get(name, name), compiled.binds[name].key, compiled.binds[name].value,
                       processors.get(name)) for name in names]
        self.defaults = {}
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.onupdate if column in compiled.update_prefetch else column.default
            if default is None or not (default.is_scalar or default.is_callable):
                raise TypeError(f"column {column.key}: only scalar or plain callable defaults are supported here")
            self.defaults[column.key] = default
        # Result rows: the columns' type processors (SQLite keeps datetimes and JSON as text; some need the type
        # the driver reports, so they are made at the first fetch), then a named tuple, so that callers read
        # `row.version` as from SQLAlchemy's Row.
        self.dialect = dialect
        self.result_types = [entry.type.dialect_impl(dialect) for entry in compiled._result_columns]
        self.results = None
        try:
            self.row = namedtuple("PreparedRow", [entry.keyname for entry in compiled._result_columns]) \
                if self.result_types else None
        except ValueError as err:  # duplicate or unusable column names: label them
            raise TypeError(f"result columns: {err}") from None
        self.sql = compiled.string

    def parameters(self, row: dict) -> tuple | dict:
        if self.defaults:
            row = dict(row)
            for key, default in self.defaults.items():
                if key not in row:
                    row[key] = default.arg if default.is_scalar else default.arg(None)
        values = []
        for _, key, fallback, process in self.binds:
            value = row.get(key, fallback)
            values.append(process(value) if process is not None else value)  # None too: JSON stores it as 'null'
        if self.named:
            return {bind[0]: value for bind, value in zip(self.binds, values)}
        return tuple(values)

    def result_row(self, values: tuple, description):
        if self.results is None:
            self.results = [kind.result_processor(self.dialect, column[1])
                            for kind, column in zip(self.result_types, description)]
        return self.row(*[value if process is None else process(value)
                          for process, value in zip(self.results, values)])


class Prepared:
    """One Core statement (select/insert/update/delete with bindparams), run on the cursor where that pays off."""

    def __init__(self, statement):
        self.statement = statement
        self._plans: dict[tuple, _Plan] = {}

    @staticmethod
    def _on_cursor(conn: Connection) -> bool:
        # Listeners of the engine's statement events (tracing, tests that interleave a commit) see every
        # statement: with any present, the statements go through Connection.execute, which dispatches them.
        return (conn.dialect.name, conn.dialect.driver) in ON_CURSOR \
            and not (conn._has_events or conn.engine._has_events)

    def _plan(self, conn: Connection, keys: tuple[str, ...]) -> _Plan:
        cache_key = (conn.dialect, keys)
        plan = self._plans.get(cache_key)
        if plan is None:
            plan = self._plans[cache_key] = _Plan(self.statement, conn.dialect, keys)
        return plan

    def _run(self, conn: Connection, sql: str, parameters, many: bool):
        dbapi_connection = conn.connection.dbapi_connection
        cursor = dbapi_connection.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
        except conn.dialect.loaded_dbapi.Error as err:
            # As Connection.execute does: a lost connection is invalidated (the pool replaces it; the session's
            # rollback then succeeds), and the error is SQLAlchemy's (OperationalError -> 503 for the API).
            lost = conn.dialect.is_disconnect(err, dbapi_connection, cursor)
            try:
                cursor.close()
            except conn.dialect.loaded_dbapi.Error:
                pass
            if lost:
                conn.invalidate(err)
            raise sa_exc.DBAPIError.instance(sql, parameters, err, conn.dialect.loaded_dbapi.Error,
                                             connection_invalidated=lost, dialect=conn.dialect) from err
        return cursor

    def execute(self, conn: Connection, params: dict) -> int:
        """Run it once; returns the number of rows it changed."""
        if not self._on_cursor(conn):
            return conn.execute(self.statement, params).rowcount
        plan = self._plan(conn, tuple(params))
        cursor = self._run(conn, plan.sql, plan.parameters(params), many=False)
        count = cursor.rowcount
        cursor.close()
        return count

    def first(self, conn: Connection, params: dict) -> Sequence[Any] | None:
        """Run it once and return its first row (None without rows): a SELECT, or a statement with RETURNING. The
        row is a tuple whose columns are also attributes, as SQLAlchemy's Row."""
        if not self._on_cursor(conn):
            return conn.execute(self.statement, params).first()
        plan = self._plan(conn, tuple(params))
        cursor = self._run(conn, plan.sql, plan.parameters(params), many=False)
        rows = cursor.fetchall()  # all of them: SQLite finishes a RETURNING statement only when it is read out
        description = cursor.description
        cursor.close()
        return plan.result_row(rows[0], description) if rows else None

    def execute_many(self, conn: Connection, rows: Iterable[dict]) -> None:
        """Run it for each row (all rows with the same keys), as one executemany."""
        rows = list(rows)
        if not rows:
            return
        if not self._on_cursor(conn):
            conn.execute(self.statement, rows)
            return
        plan = self._plan(conn, tuple(rows[0]))
        self._run(conn, plan.sql, [plan.parameters(row) for row in rows], many=True).close()
