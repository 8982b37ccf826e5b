"""Set-at-a-time SQL for the bulk path, on the session's own connection and transaction.

SQLAlchemy's executemany processes every parameter of every row in Python (type processors, JSON,
datetimes), which costs more than the database's own work at bulk rates. Here a batch's rows go to the
driver with as little Python per row as possible, in as few statements as possible. `Bulk` is the one
interface; `bulk_for(session)` picks its backend (roster.fastsql.postgres: one JSON parameter per batch,
run in the server without the GIL; roster.fastsql.sqlite: multi-row statements). Values that need a type's
processing (a timestamp, say) are processed once per batch with SQLAlchemy's public processors (`bind`).
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Column, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

# A batch's rows: one JSON text (PostgreSQL) or the tuples (SQLite).
Payload = str | Sequence[Sequence[Any]]
# A statement as the driver takes it: SQL text and its parameters.
Statement = tuple[str, Sequence[Any]]

# One encoder for every call: json.dumps with options builds a new encoder each time.
encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def bulk_for(session: Session) -> Bulk:
    """The session's backend's bulk SQL, on its connection and in its transaction."""
    if session.get_bind().dialect.name == "postgresql":
        from roster.fastsql.postgres import PostgresBulk

        return PostgresBulk(session)
    from roster.fastsql.sqlite import SqliteBulk

    return SqliteBulk(session)


class Bulk(ABC):
    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self.dialect = connection.dialect
        # The DBAPI connection under the session: same transaction, no per-row processing.
        self.raw: Any = connection.connection.driver_connection

    json = staticmethod(encode_json)

    @contextmanager
    def index_lookups_only(self) -> Iterator[None]:
        """The statements inside are planned as lookups through indexes (PostgreSQL turns its scan and join
        methods off for them; SQLite plans so by itself). docs/bulk.md, invariant 5."""
        yield

    def by_keys(
        self, columns: str, table: str, key: str, keys: Iterable[str], scope: tuple[str, int] | None = None
    ) -> list[tuple[Any, ...]]:
        """Rows of `table` (aliased `t`) whose `key` column is one of `keys` (and whose `scope` column has
        the given value), looked up through an index that `key` leads. The keys travel as one JSON text,
        encoded in C.

        The scope is compared as `column + 0`, which no index can serve: with the statistics of a new
        study or job (nothing there yet) the planner would otherwise read "study_id = 7" as a handful of
        rows and scan all of them for every batch — an import that slows down with every batch."""
        keys = list(keys)
        if not keys:
            return []
        sql = self._by_keys_sql(columns, table, key, scope[0] if scope else None)
        params = (encode_json(keys), scope[1]) if scope else (encode_json(keys),)
        return self._fetch(sql, params)

    @abstractmethod
    def _by_keys_sql(self, columns: str, table: str, key: str, scope: str | None) -> str:
        """by_keys' statement: its parameters are the keys' JSON, then the scope's value if any."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """All rows of a query, on the driver's connection."""

    @abstractmethod
    def payload(self, rows: Sequence[Sequence[Any]]) -> Payload:
        """A batch's rows as `inserts` and `updates` take them."""

    @abstractmethod
    def inserts(
        self, table: Table, columns: Sequence[str], payload: Payload, same: Mapping[str, Any] | None = None
    ) -> Iterator[Statement]:
        """INSERTs of the rows of `payload`, whose rows hold the values of `columns`, not run. `same`: columns
        with one value for every row (a timestamp, the user), sent once instead of in every row."""

    @abstractmethod
    def updates(self, table: Table, columns: Sequence[str], payload: Payload) -> Iterator[Statement]:
        """UPDATEs by id, not run: each payload row is (id, *values of `columns`)."""

    @abstractmethod
    def next_ids(self, table: str, count: int, floor: int = 0) -> list[int]:
        """Primary keys for `count` new rows, so that rows can be inserted with their ids known. `floor`: ids
        already given out in the job and not yet inserted."""

    @abstractmethod
    def ids_free_check(self, table: str, first: int) -> Statement | None:
        """A statement whose one value is 1 while ids from `first` on are still free, or None when ids
        given out stay free whatever happens (a sequence's)."""

    def ids_free(self, table: str, first: int) -> bool:
        check = self.ids_free_check(table, first)
        return check is None or self.raw.execute(*check).fetchone()[0] == 1

    def bind(self, column: Column[Any], value: Any) -> Any:
        """`value` as the driver should get it for `column` (e.g. a UTC datetime as SQLite's text)."""
        processor = _bind_processor(column.type, self.dialect)
        return processor(value) if processor else value

    def stamp(self, column: Column[Any], value: Any) -> Any:
        """`value` as a batch payload carries it for `column` (a timestamp as text on both backends)."""
        value = self.bind(column, value)
        return value.isoformat() if isinstance(value, dt.datetime) else value

    def run(self, statements: Iterable[Statement]) -> None:
        execute = self.raw.execute
        for sql, params in statements:
            execute(sql, params)

    def insert(
        self, table: Table, columns: Sequence[str], payload: Payload, same: Mapping[str, Any] | None = None
    ) -> None:
        self.run(self.inserts(table, columns, payload, same))

    def update(self, table: Table, columns: Sequence[str], payload: Payload) -> None:
        self.run(self.updates(table, columns, payload))

    def driver(self, statement: ClauseElement) -> Statement:
        """A SQLAlchemy Core statement as the driver takes it (SQL text, positional parameters processed by
        their types), as this connection would have run it. SQLite only: its parameters are positional."""
        compiled = cast(SQLCompiler, statement.compile(dialect=self.dialect))
        if compiled.positiontup is None or "POSTCOMPILE" in compiled.string:
            raise ValueError(f"{self.dialect.name}: not a statement with plain positional parameters")
        params = compiled.params
        values = []
        for name in compiled.positiontup:
            processor = _bind_processor(compiled.binds[name].type, self.dialect)
            values.append(processor(params[name]) if processor else params[name])
        return compiled.string, tuple(values)


def _bind_processor(kind: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The type's bind processor for the dialect, through the public API (the type adapted to the dialect,
    then asked), cached per type object while it lives: a batch asks for the same few types."""
    per_dialect = _PROCESSORS.setdefault(kind, {})
    if dialect.name not in per_dialect:
        per_dialect[dialect.name] = kind.dialect_impl(dialect).bind_processor(dialect)
    return per_dialect[dialect.name]


_PROCESSORS: weakref.WeakKeyDictionary[TypeEngine[Any], dict[str, Callable[[Any], Any] | None]] = (
    weakref.WeakKeyDictionary()
)
