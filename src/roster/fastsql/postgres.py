"""PostgreSQL's bulk SQL (roster.fastsql): a batch's rows travel as ONE parameter, a JSON array of arrays
encoded by the json module's C code, taken apart in the server (`jsonb_array_elements`). A statement that
takes a whole batch then runs in the server without the GIL, which lets the importer's writer thread wait
beside its planner. Statements are never prepared server-side: a plan made when a table was empty would
stay when it has grown a thousandfold."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, Table, TypeDecorator
from sqlalchemy.types import TypeEngine

from roster.fastsql import Bulk, Payload, Statement, encode_json

_PLANNER = ("enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin", "enable_material")
_SOURCE = "jsonb_array_elements(%s::jsonb) AS e(value)"


class PostgresBulk(Bulk):
    @contextmanager
    def index_lookups_only(self) -> Iterator[None]:
        """Turns the planner's scan and join methods off (`_PLANNER`) for the statements inside.

        A bulk job grows its tables faster than autovacuum analyzes them, and with the statistics of a
        small table the planner would join a batch's 1000 ids against a scan of the whole table. Every
        statement of the bulk path finds its rows by key or id, so index lookups are always right. The
        previous settings come back when the block ends (the single endpoint shares the transaction)."""
        saved = self.raw.execute("SELECT " + ", ".join(f"current_setting('{n}')" for n in _PLANNER)).fetchone()
        self.raw.execute("SELECT " + ", ".join(f"set_config('{n}', 'off', true)" for n in _PLANNER))
        # Restored on a normal exit only: after an error the transaction is aborted (a statement there
        # would hide the real error) and its rollback drops these transaction-local settings anyway.
        yield
        self.raw.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in _PLANNER),
            [x for pair in zip(_PLANNER, saved, strict=True) for x in pair],
        )

    def _by_keys_sql(self, columns: str, table: str, key: str, scope: str | None) -> str:
        # psycopg would dump a list parameter element by element in Python: the keys come as one JSON text.
        keys = "ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))"
        return f"SELECT {columns} FROM {table} t WHERE t.{key} = {keys}" + (f" AND t.{scope} + 0 = %s" if scope else "")

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.raw.execute(sql, params, prepare=False).fetchall()
        return rows

    def payload(self, rows: Sequence[Sequence[Any]]) -> Payload:
        return encode_json(rows)

    def inserts(
        self, table: Table, columns: Sequence[str], payload: Payload, same: Mapping[str, Any] | None = None
    ) -> Iterator[Statement]:
        same = same or {}
        names = ", ".join((*columns, *same))
        picks = [_elements(table, columns), *(f"%s::{_pg_type(table.c[name])}" for name in same)]
        yield f"INSERT INTO {table.name} ({names}) SELECT {', '.join(picks)} FROM {_SOURCE}", (*same.values(), payload)

    def updates(self, table: Table, columns: Sequence[str], payload: Payload) -> Iterator[Statement]:
        sets = ", ".join(f"{name} = v.{name}" for name in columns)
        yield (
            (
                f"UPDATE {table.name} SET {sets} "
                f"FROM (SELECT {_elements(table, ('id', *columns))} FROM {_SOURCE}) AS v "
                f"WHERE {table.name}.id = v.id"
            ),
            (payload,),
        )

    def next_ids(self, table: str, count: int, floor: int = 0) -> list[int]:
        if count <= 0:
            return []
        # The sequence is looked up once. OFFSET 0 keeps the planner from pulling the subquery up into
        # the select list, where pg_get_serial_sequence() would run once per id.
        rows = self.raw.execute(
            f"SELECT nextval(s.seq) FROM (SELECT pg_get_serial_sequence('{table}', 'id')::regclass AS seq OFFSET 0) s, "
            "generate_series(1, %s)",
            (count,),
        ).fetchall()
        return [r[0] for r in rows]

    def ids_free_check(self, table: str, first: int) -> Statement | None:
        return None  # a sequence's ids are never given out twice


def _elements(table: Table, columns: Sequence[str]) -> str:
    """The payload's columns, in order, as the SELECT list over its elements (`value`)."""
    return ", ".join(f"(value->>{i})::{_pg_type(table.c[name])} AS {name}" for i, name in enumerate(columns))


def _pg_type(column: Column[Any]) -> str:
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
