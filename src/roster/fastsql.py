"""Set-at-a-time SQL for the bulk path, on the session's own connection and transaction.

SQLAlchemy's executemany processes every parameter of every row in Python (type processors, JSON,
datetimes), which costs more than the database's own work at bulk rates. Here rows go to the driver as
plain tuples: `executemany` on SQLite (its C loop), `COPY … FROM STDIN` on PostgreSQL. Values that need a
type's processing (a timestamp, say) are processed once per batch with SQLAlchemy's own processor (`bind`).
Lists of keys travel as ONE parameter (`json_each` on SQLite, an array on PostgreSQL), so a batch of any
size is one statement and SQLite's limit on bound variables never applies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column
from sqlalchemy.orm import Session

_PLANNER = ("enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin", "enable_material")


class Bulk:
    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self.dialect = connection.dialect
        self.pg = self.dialect.name == "postgresql"
        # The DBAPI connection under the session: same transaction, no per-row processing.
        self.raw = connection.connection.driver_connection

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
        self.raw.execute("SELECT " + ", ".join("set_config(%s, %s, true)" for _ in _PLANNER), [x for pair in zip(_PLANNER, saved) for x in pair])

    def relaxed_commit(self) -> None:
        """PostgreSQL: this transaction's commit does not wait for its WAL to reach the disk. Only for
        transactions that are safe to lose in a server crash (and redo); never for the last one."""
        if self.pg:
            self.raw.execute("SET LOCAL synchronous_commit = off")

    def bind(self, column: Column, value: Any) -> Any:
        """`value` as the driver should get it for `column` (e.g. a UTC datetime as SQLite's text)."""
        processor = column.type._cached_bind_processor(self.dialect)
        return processor(value) if processor else value

    # One encoder for every call: json.dumps with options builds a new encoder each time.
    json = staticmethod(json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode)

    def by_keys(self, columns: str, table: str, key: str, keys: Iterable[str], scope: tuple[str, int] | None = None) -> list[tuple]:
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
            sql = f"SELECT {columns} FROM {table} t WHERE t.{key} = ANY(%s::text[]){scoped.format(p='%s')}"
            return self.raw.execute(sql, params, prepare=False).fetchall()
        sql = f"SELECT {columns} FROM {table} t WHERE t.{key} IN (SELECT value FROM json_each(?)){scoped.format(p='?')}"
        return self.raw.execute(sql, (self.json(keys), *params[1:])).fetchall()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self.pg:
            with self.raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)

    def next_ids(self, table: str, count: int) -> list[int]:
        """Primary keys for `count` new rows, so that rows can be inserted with their ids known."""
        if self.pg:
            rows = self.raw.execute(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)", (count,)
            ).fetchall()
            return [r[0] for r in rows]
        # SQLite: the caller's write transaction (BEGIN IMMEDIATE) excludes every other writer.
        top = self.raw.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        return list(range(top + 1, top + count + 1))

    def update(self, table: str, columns: dict[str, str], rows: Sequence[tuple]) -> None:
        """UPDATE by id. `columns`: name -> PostgreSQL array element type; each row is (id, *values)."""
        if not rows:
            return
        names = list(columns)
        if self.pg:
            # One statement for the batch: the rows travel as one array per column.
            arrays = ", ".join(f"%s::{kind}[]" for kind in columns.values())
            sets = ", ".join(f"{n} = v.{n}" for n in names)
            self.raw.execute(
                f"UPDATE {table} SET {sets} FROM unnest(%s::int[], {arrays}) AS v(id, {', '.join(names)}) WHERE {table}.id = v.id",
                [list(col) for col in zip(*rows)],
            )
        else:
            sets = ", ".join(f"{n} = ?" for n in names)
            self.raw.executemany(f"UPDATE {table} SET {sets} WHERE id = ?", [(*row[1:], row[0]) for row in rows])
