"""Set-at-a-time SQL for the bulk path, on the session's own connection and transaction.

SQLAlchemy's executemany processes every parameter of every row in Python (type processors, JSON,
datetimes), which costs more than the database's own work at bulk rates. Here a batch's rows go to the
driver with as little Python per row as possible, in as few statements as possible: on PostgreSQL ONE
parameter, a JSON array encoded by the json module's C code; on SQLite multi-row statements, as many
rows each as its limit on bound variables allows. Lists of keys travel as one JSON parameter on both. On
PostgreSQL a statement that takes a whole batch runs in the server without the GIL, which lets the
importer's writer thread wait beside its planner; on SQLite the statements (`inserts`, `updates`,
`driver`) go to a writer process instead (roster.bulk.writer_process). Values that need a type's
processing (a timestamp, say) are processed once per batch with SQLAlchemy's own processor (`bind`, `stamp`).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import chain
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, Table, TypeDecorator
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

_PLANNER = ("enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin", "enable_material")


class Bulk:
    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self.dialect = connection.dialect
        self.pg = self.dialect.name == "postgresql"
        # The DBAPI connection under the session: same transaction, no per-row processing.
        self.raw: Any = connection.connection.driver_connection

    @contextmanager
    def keyed(self) -> Iterator[None]:
        """PostgreSQL: plan the statements inside as lookups through indexes (no scans, no hash joins).

        A bulk job grows its tables faster than autovacuum analyzes them, and with the statistics of a
        small table the planner would join a batch's 1000 ids against a scan of the whole table. Every
        statement of the bulk path finds its rows by key or id, so index lookups are always right. The
        previous settings come back when the block ends (the single endpoint shares the transaction)."""
        if not self.pg:
            yield
            return
        saved = self.raw.execute("SELECT " + ", ".join(f"current_setting('{n}')" for n in _PLANNER)).fetchone()
        self.raw.execute("SELECT " + ", ".join(f"set_config('{n}', 'off', true)" for n in _PLANNER))
        # Restored on a normal exit only: after an error the transaction is aborted (a statement there
        # would hide the real error) and its rollback drops these transaction-local settings anyway.
        yield
        self.raw.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in _PLANNER),
            [x for pair in zip(_PLANNER, saved, strict=True) for x in pair],
        )

    def bind(self, column: Column, value: Any) -> Any:
        """`value` as the driver should get it for `column` (e.g. a UTC datetime as SQLite's text)."""
        processor = column.type._cached_bind_processor(self.dialect)
        return processor(value) if processor else value

    # One encoder for every call: json.dumps with options builds a new encoder each time.
    json = staticmethod(json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode)

    def by_keys(
        self, columns: str, table: str, key: str, keys: Iterable[str], scope: tuple[str, int] | None = None
    ) -> list[tuple]:
        """Rows of `table` (aliased `t`) whose `key` column is one of `keys` (and whose `scope` column has
        the given value), looked up through an index that `key` leads.

        The scope is compared as `column + 0`, which no index can serve: with the statistics of a new
        study or job (nothing there yet) the planner would otherwise read "study_id = 7" as a handful of
        rows and scan all of them for every batch — an import that slows down with every batch. On
        PostgreSQL the statement is never prepared server-side, for the same reason: a plan made when
        the table was empty would stay when it has grown a thousandfold."""
        keys = list(keys)
        if not keys:
            return []
        scoped = f" AND t.{scope[0]} + 0 = {{p}}" if scope else ""
        params = (keys, scope[1]) if scope else (keys,)
        if self.pg:
            # The keys as one JSON text, encoded in C: psycopg dumps a list parameter element by element in Python.
            sql = (
                f"SELECT {columns} FROM {table} t WHERE t.{key} = ANY(ARRAY(SELECT "
                "jsonb_array_elements_text(%s::jsonb)))"
                f"{scoped.format(p='%s')}"
            )
            return self.raw.execute(sql, (self.json(keys), *params[1:]), prepare=False).fetchall()
        sql = f"SELECT {columns} FROM {table} t WHERE t.{key} IN (SELECT value FROM json_each(?)){scoped.format(p='?')}"
        return self.raw.execute(sql, (self.json(keys), *params[1:])).fetchall()

    def stamp(self, column: Column, value: Any) -> Any:
        """`value` as a batch payload carries it for `column` (a timestamp as text on both backends)."""
        value = self.bind(column, value)
        return value.isoformat() if isinstance(value, dt.datetime) else value

    def payload(self, rows: Sequence[Sequence]) -> Payload:
        """A batch's rows as `insert` and `update` take them. PostgreSQL: ONE parameter, a JSON array of
        arrays encoded by the json module's C code, so a writer thread holds no GIL while the statement
        runs (roster.bulk.importer). SQLite: the tuples, bound to multi-row statements (`_sqlite_chunks`);
        there taking the rows apart from JSON costs three times as much."""
        return Bulk.json(rows) if self.pg else rows

    @staticmethod
    def _elements(table: Table, columns: Sequence[str]) -> str:
        """PostgreSQL: the payload's columns, in order, as the SELECT list over its elements (`value`)."""
        return ", ".join(f"(value->>{i})::{_pg_type(table.c[name])} AS {name}" for i, name in enumerate(columns))

    def run(self, statements: Iterable[Statement]) -> None:
        execute = self.raw.execute
        for sql, params in statements:
            execute(sql, params)

    def insert(
        self, table: Table, columns: Sequence[str], payload: Payload, same: Mapping[str, Any] | None = None
    ) -> None:
        """INSERT the rows of `payload` (see `payload`), whose rows hold the values of `columns`. `same`: columns
        with one value for every row (a timestamp, the user), sent once as parameters of their own instead of
        in every row: on PostgreSQL the payload's JSON is that much shorter to encode and to parse."""
        self.run(self.inserts(table, columns, payload, same))

    def inserts(
        self, table: Table, columns: Sequence[str], payload: Payload, same: Mapping[str, Any] | None = None
    ) -> Iterator[Statement]:
        """`insert`'s statements, not run (roster.bulk.writer_process runs them elsewhere)."""
        same = same or {}
        names = ", ".join((*columns, *same))
        if self.pg:
            picks = [self._elements(table, columns), *(f"%s::{_pg_type(table.c[name])}" for name in same)]
            yield (
                f"INSERT INTO {table.name} ({names}) SELECT {', '.join(picks)} FROM {_PG_SOURCE}",
                (*same.values(), payload),
            )
            return
        shared = tuple(same.values())
        for values, count in self._sqlite_chunks(payload, len(columns)):
            yield _sqlite_insert(table.name, names, len(columns), len(shared), count), shared + values

    def update(self, table: Table, columns: Sequence[str], payload: Payload) -> None:
        """UPDATE by id: each payload row is (id, *values of `columns`)."""
        self.run(self.updates(table, columns, payload))

    def updates(self, table: Table, columns: Sequence[str], payload: Payload) -> Iterator[Statement]:
        """`update`'s statements, not run."""
        if self.pg:
            sets = ", ".join(f"{name} = v.{name}" for name in columns)
            yield (
                (
                    f"UPDATE {table.name} SET {sets} FROM (SELECT {self._elements(table, ('id', *columns))} FROM "
                    f"{_PG_SOURCE}) AS v "
                    f"WHERE {table.name}.id = v.id"
                ),
                (payload,),
            )
            return
        for values, count in self._sqlite_chunks(payload, len(columns) + 1):
            yield _sqlite_update(table.name, tuple(columns), count), values

    def driver(self, statement: ClauseElement) -> Statement:
        """A SQLAlchemy Core statement as the driver takes it (SQL text, positional parameters processed by
        their types), as this connection would have run it. SQLite only: its parameters are positional."""
        compiled = cast(SQLCompiler, statement.compile(dialect=self.dialect))
        if compiled.positiontup is None or "POSTCOMPILE" in compiled.string:
            raise ValueError(f"{self.dialect.name}: not a statement with plain positional parameters")
        params = compiled.params
        values = []
        for name in compiled.positiontup:
            processor = compiled.binds[name].type._cached_bind_processor(self.dialect)
            values.append(processor(params[name]) if processor else params[name])
        return compiled.string, tuple(values)

    def _sqlite_chunks(self, rows: Sequence[Sequence], width: int) -> Iterator[tuple[tuple, int]]:
        """SQLite: the rows as flat parameter tuples for multi-row statements: one step per statement, not
        one per row as with executemany, and faster. Statements of 64 rows (fewer if the variable limit
        says so), then the rest in halving sizes: a handful of statement shapes per table, so sqlite3's
        statement cache stays small whatever the batches' sizes."""
        size = min(_SQLITE_ROWS, max(1, self.raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
        start, total = 0, len(rows)
        while start < total:
            while size > total - start:
                size //= 2
            yield tuple(chain.from_iterable(rows[start : start + size])), size
            start += size

    def next_ids(self, table: str, count: int, floor: int = 0) -> list[int]:
        """Primary keys for `count` new rows, so that rows can be inserted with their ids known. On
        SQLite the caller must hold the write lock, or check that nobody inserted since (`floor`: ids
        already given out and not yet inserted)."""
        if count <= 0:
            return []
        if self.pg:
            # The sequence is looked up once. OFFSET 0 keeps the planner from pulling the subquery up into
            # the select list, where pg_get_serial_sequence() would run once per id (ten times the cost).
            rows = self.raw.execute(
                f"SELECT nextval(s.seq) FROM (SELECT pg_get_serial_sequence('{table}', 'id')::regclass AS seq OFFSET "
                "0) s, "
                "generate_series(1, %s)",
                (count,),
            ).fetchall()
            return [r[0] for r in rows]
        top = max(self.top_id(table), floor)
        return list(range(top + 1, top + count + 1))

    @staticmethod
    def ids_above(table: str, first: int) -> Statement:
        """SQLite: a statement whose one value is 1 when every id in `table` is below `first`."""
        return f"SELECT coalesce(max(id), 0) < ? FROM {table}", (first,)

    def top_id(self, table: str) -> int:
        """The largest id in `table` (0 when empty)."""
        return self.raw.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]


_PG_SOURCE = "jsonb_array_elements(%s::jsonb) AS e(value)"


_SQLITE_ROWS = 64


# The statements' texts are cached: the same text object for every batch, which a message to the writer
# process carries once (pickle sends an object it has already sent as a reference).
@lru_cache(maxsize=64)
def _sqlite_rows(width: int, count: int) -> str:
    """`(?, …), (?, …), …`: `count` rows of `width` parameters."""
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


@lru_cache(maxsize=128)
def _sqlite_insert(table: str, names: str, width: int, shared: int, count: int) -> str:
    if not shared:
        return f"INSERT INTO {table} ({names}) VALUES {_sqlite_rows(width, count)}"
    # VALUES names its columns column1, column2, …; the shared values are bound once per statement, first.
    picks = ", ".join([*(f"column{i}" for i in range(1, width + 1)), *("?" * shared)])
    return f"INSERT INTO {table} ({names}) SELECT {picks} FROM (VALUES {_sqlite_rows(width, count)})"


@lru_cache(maxsize=64)
def _sqlite_update(table: str, columns: tuple[str, ...], count: int) -> str:
    # VALUES names its columns column1, column2, …: column1 is the id.
    sets = ", ".join(f"{name} = v.column{i}" for i, name in enumerate(columns, 2))
    rows = _sqlite_rows(len(columns) + 1, count)
    return f"UPDATE {table} SET {sets} FROM (VALUES {rows}) AS v WHERE {table}.id = v.column1"


# A batch's rows: one JSON text (PostgreSQL) or the tuples (SQLite).
Payload = str | Sequence[Sequence]
# A statement as the driver takes it: SQL text and its parameters.
Statement = tuple[str, Sequence[Any]]


def _pg_type(column: Column) -> str:
    """The cast for a payload element: text for strings (the column's own length check still applies)."""
    kind: TypeEngine[Any] = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, Integer):
        return "bigint"
    if isinstance(kind, DateTime):
        return "timestamptz"
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, Boolean):
        return "boolean"
    return "text"
