"""Core statements compiled once and run straight on the DBAPI cursor, for the statements of the annotation save.

On SQLite every write transaction holds the whole database: saves queue for it (backend/db.py), so the time a
save spends between BEGIN IMMEDIATE and COMMIT is time every other save waits. SQLAlchemy's execution of a Core
statement (cache key, execution context, result object) cost 50-100 us of that per statement, several times
what SQLite itself needs. `Prepared` compiles a statement once per dialect and set of parameter names, then binds
the parameters with the same type processors SQLAlchemy would use (JSON, datetimes) and runs it on the cursor of
the connection the session already holds: same transaction, same SQL, same stored values. Errors are raised as
SQLAlchemy's (IntegrityError, OperationalError), as from Connection.execute.

Other databases (PostgreSQL: no database-wide write lock, and a disconnect must invalidate the pooled connection)
go through Connection.execute as before. Python-side column defaults of columns a row leaves out are filled in
like SQLAlchemy fills them (scalars and context-free callables); anything else is refused when compiling. Result
rows go through the columns' result processors and come back as named tuples. Used on the hot path of every
annotator: the save's write transaction, the document reads and the caller's token or session lookup.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Iterable, Sequence

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

_MISSING = object()


class _Plan:
    __slots__ = ("sql", "binds", "defaults", "row", "results")

    def __init__(self, statement, dialect, keys: tuple[str, ...]):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        if compiled.positiontup is None:
            raise TypeError(f"{dialect.name}: only positional paramstyles are run on the cursor")
        processors = compiled._bind_processors
        # (parameter key, value when the caller gives none, type processor) in the order of the placeholders
        self.binds = [(compiled.binds[name].key, compiled.binds[name].value, processors.get(name))
                      for name in compiled.positiontup]
        self.defaults = {}
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.onupdate if column in compiled.update_prefetch else column.default
            if default is None or not (default.is_scalar or default.is_callable):
                raise TypeError(f"column {column.key}: only scalar or plain callable defaults are supported here")
            self.defaults[column.key] = default
        # Result rows: the columns' type processors (SQLite keeps datetimes and JSON as text), then a named tuple,
        # so that callers read `row.version` as from SQLAlchemy's Row.
        self.results = [entry.type.dialect_impl(dialect).result_processor(dialect, None)
                        for entry in compiled._result_columns]
        try:
            self.row = namedtuple("PreparedRow", [entry.keyname for entry in compiled._result_columns]) \
                if self.results else None
        except ValueError as err:  # duplicate or unusable column names: label them
            raise TypeError(f"result columns: {err}") from None
        self.sql = compiled.string

    def parameters(self, row: dict) -> tuple:
        if self.defaults:
            row = dict(row)
            for key, default in self.defaults.items():
                if key not in row:
                    row[key] = default.arg if default.is_scalar else default.arg(None)
        out = []
        for key, fallback, process in self.binds:
            value = row.get(key, fallback)
            out.append(process(value) if process is not None else value)  # None too: JSON stores it as 'null'
        return tuple(out)

    def result_row(self, values: tuple):
        return self.row(*[value if process is None else process(value)
                          for process, value in zip(self.results, values)])


class Prepared:
    """One Core statement (select/insert/update/delete with bindparams), run on the cursor where that pays off."""

    def __init__(self, statement):
        self.statement = statement
        self._plans: dict[tuple, _Plan] = {}

    @staticmethod
    def _on_cursor(conn: Connection) -> bool:
        return conn.dialect.name == "sqlite"

    def _plan(self, conn: Connection, keys: tuple[str, ...]) -> _Plan:
        cache_key = (id(conn.dialect), keys)
        plan = self._plans.get(cache_key)
        if plan is None:
            plan = self._plans[cache_key] = _Plan(self.statement, conn.dialect, keys)
        return plan

    def _run(self, conn: Connection, sql: str, parameters, many: bool):
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
        except conn.dialect.loaded_dbapi.Error as err:
            cursor.close()
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
        cursor.close()
        return plan.result_row(rows[0]) if rows else None

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
