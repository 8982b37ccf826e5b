"""SQLite's bulk SQL (roster.fastsql): a batch's rows as multi-row statements, as many rows each as the
limit on bound variables allows (one step per statement, not one per row as with executemany). Taking
the rows apart from JSON, as on PostgreSQL, costs more than it saves here (bench/HISTORY.md); lists of
keys still travel as one JSON parameter (`json_each`). The statements may run elsewhere: the SQLite writer process
(roster.bulk.process_sink) gets them as they are."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Table

from roster.fastsql import Bulk, Payload, Statement

_ROWS = 64


class SqliteBulk(Bulk):
    def _by_keys_sql(self, columns: str, table: str, key: str, scope: str | None) -> str:
        keys = "(SELECT value FROM json_each(?))"
        return f"SELECT {columns} FROM {table} t WHERE t.{key} IN {keys}" + (f" AND t.{scope} + 0 = ?" if scope else "")

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.raw.execute(sql, params).fetchall()
        return rows

    def payload(self, rows: Sequence[Sequence[Any]]) -> Payload:
        return rows

    def inserts(
        self, table: Table, columns: Sequence[str], payload: Payload, same: Mapping[str, Any] | None = None
    ) -> Iterator[Statement]:
        same = same or {}
        names = ", ".join((*columns, *same))
        shared = tuple(same.values())
        for values, count in self._chunks(payload, len(columns)):
            yield _insert(table.name, names, len(columns), len(shared), count), shared + values

    def updates(self, table: Table, columns: Sequence[str], payload: Payload) -> Iterator[Statement]:
        for values, count in self._chunks(payload, len(columns) + 1):
            yield _update(table.name, tuple(columns), count), values

    def next_ids(self, table: str, count: int, floor: int = 0) -> list[int]:
        """After the largest id: the caller must hold the write lock, or check before writing that nobody
        inserted since (`ids_free_check`)."""
        if count <= 0:
            return []
        top = max(self.raw.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0], floor)
        return list(range(top + 1, top + count + 1))

    def ids_free_check(self, table: str, first: int) -> Statement | None:
        return f"SELECT coalesce(max(id), 0) < ? FROM {table}", (first,)

    def _chunks(self, rows: Payload, width: int) -> Iterator[tuple[tuple[Any, ...], int]]:
        """The rows as flat parameter tuples for multi-row statements: statements of 64 rows (fewer if the
        variable limit says so), then the rest in halving sizes: a handful of statement shapes per table,
        so sqlite3's statement cache stays small whatever the batches' sizes."""
        size = min(_ROWS, max(1, self.raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
        start, total = 0, len(rows)
        while start < total:
            while size > total - start:
                size //= 2
            yield tuple(chain.from_iterable(rows[start : start + size])), size
            start += size


# The statements' texts are cached: the same text object for every batch, which a message to the writer
# process carries once (pickle sends an object it has already sent as a reference).
@lru_cache(maxsize=64)
def _rows(width: int, count: int) -> str:
    """`(?, …), (?, …), …`: `count` rows of `width` parameters."""
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


@lru_cache(maxsize=128)
def _insert(table: str, names: str, width: int, shared: int, count: int) -> str:
    if not shared:
        return f"INSERT INTO {table} ({names}) VALUES {_rows(width, count)}"
    # VALUES names its columns column1, column2, …; the shared values are bound once per statement, first.
    picks = ", ".join([*(f"column{i}" for i in range(1, width + 1)), *("?" * shared)])
    return f"INSERT INTO {table} ({names}) SELECT {picks} FROM (VALUES {_rows(width, count)})"


@lru_cache(maxsize=64)
def _update(table: str, columns: tuple[str, ...], count: int) -> str:
    # VALUES names its columns column1, column2, …: column1 is the id.
    sets = ", ".join(f"{name} = v.column{i}" for i, name in enumerate(columns, 2))
    return f"UPDATE {table} SET {sets} FROM (VALUES {_rows(len(columns) + 1, count)}) AS v WHERE {table}.id = v.column1"
