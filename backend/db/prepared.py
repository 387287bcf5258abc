"""Core statements compiled once and run straight on the SQLite cursor, for the statements of the annotation save.

On SQLite every write transaction holds the whole database: saves queue for it (backend/db/engine.py), so the time a
save spends between BEGIN IMMEDIATE and COMMIT is time every other save waits. Through Connection.execute each
statement of the save took 50-110 us in-process (execution context, parameter and result objects included); run
as below, the same statements took 0.37 ms less of a save's CPU (2.27 -> 1.90 ms) and the write lock's median hold
fell from 0.83 to 0.46 ms (benchmarks/results/api.md).
`Prepared` compiles a statement once per dialect and set of parameter names, then binds
the parameters with the same type processors SQLAlchemy would use (JSON, datetimes) and runs it on the cursor of
the connection the session already holds: same transaction, same SQL, same stored values. Errors are raised as
SQLAlchemy's (IntegrityError, OperationalError), as from Connection.execute.

Only pysqlite runs on the cursor, and only with INKLABEL_PREPARED_STATEMENTS=1 (the default; 0 sends every
statement through Connection.execute). PostgreSQL always goes through Connection.execute: on the cursor it measured
no gain in saves/s. So does any engine with listeners of its statement events. This reads SQLAlchemy's private
compiled attributes (`_bind_processors`, `_result_columns`, `_has_events`), hence the upper bound on SQLAlchemy in
requirements.txt. Python-side column defaults of columns a row leaves out are filled in like SQLAlchemy fills them
(scalars and context-free callables); anything else is refused when compiling. Result rows go through the
columns' result processors and come back as named tuples. Used on the hot path of every annotator: the save's
write transaction, the document reads and the caller's token or session lookup.
"""
from __future__ import annotations

import os
from collections import namedtuple
from typing import Any, Iterable, Sequence

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

ENABLED = os.environ.get("INKLABEL_PREPARED_STATEMENTS", "1").strip().lower() not in ("0", "false", "no", "off")


class _Plan:
    __slots__ = ("sql", "binds", "defaults", "dialect", "row", "result_types", "results")

    def __init__(self, statement, dialect, keys: tuple[str, ...]):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        processors = compiled._bind_processors
        # SQLite's positional placeholders (?) in their order: (parameter key, value when the caller gives none,
        # type processor)
        self.binds = [(compiled.binds[name].key, compiled.binds[name].value, processors.get(name))
                      for name in compiled.positiontup]
        self.defaults = {}
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.onupdate if column in compiled.update_prefetch else column.default
            if default is None or not (default.is_scalar or default.is_callable):
                raise TypeError(f"column {column.key}: only scalar or plain callable defaults are supported here")
            self.defaults[column.key] = default
        # Result rows: the columns' type processors (SQLite keeps datetimes and JSON as text; they are made at
        # the first fetch, from the column types the driver reports), then a named tuple, so that callers read
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

    def parameters(self, row: dict) -> tuple:
        if self.defaults:
            row = dict(row)
            for key, default in self.defaults.items():
                if key not in row:
                    row[key] = default.arg if default.is_scalar else default.arg(None)
        values = []
        for key, fallback, process in self.binds:
            value = row.get(key, fallback)
            values.append(process(value) if process is not None else value)  # None too: JSON stores it as 'null'
        return tuple(values)

    def result_row(self, values: tuple, description):
        if self.results is None:
            self.results = [kind.result_processor(self.dialect, column[1])
                            for kind, column in zip(self.result_types, description)]
        return self.row(*[value if process is None else process(value)
                          for process, value in zip(self.results, values)])


class Prepared:
    """One Core statement (select/insert/update/delete with bindparams), run on the cursor on SQLite."""

    def __init__(self, statement):
        self.statement = statement
        self._plans: dict[tuple, _Plan] = {}

    @staticmethod
    def _on_cursor(conn: Connection) -> bool:
        # Listeners of the engine's statement events (tracing, tests that interleave a commit) see every
        # statement: with any present, the statements go through Connection.execute, which dispatches them.
        return ENABLED and conn.dialect.driver == "pysqlite" \
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
            cursor.close()  # the error as SQLAlchemy's (IntegrityError; OperationalError -> 503 for the API)
            raise sa_exc.DBAPIError.instance(sql, parameters, err, conn.dialect.loaded_dbapi.Error,
                                             dialect=conn.dialect) from err
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
