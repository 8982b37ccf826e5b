"""How Roster sets up a SQLite connection, in one place for the two kinds of connection there are: the
engine's (roster.db) and the bulk writer process's (roster.bulk.writer_process), which imports nothing
but the standard library."""

from __future__ import annotations

import sqlite3

# WAL lets the API read while a worker writes; busy_timeout waits out short locks. A commit is on disk
# when it returns (FULL) unless the transaction is relaxed (roster.db.Database.transaction).
DURABLE = "synchronous=FULL"
RELAXED = "synchronous=NORMAL"
PRAGMAS = ("journal_mode=WAL", DURABLE, "foreign_keys=ON", "busy_timeout=30000")


def configure(connection: sqlite3.Connection) -> None:
    cursor = connection.cursor()
    for pragma in PRAGMAS:
        cursor.execute("PRAGMA " + pragma)
    cursor.close()


def _null(_value: None) -> None:
    return None


def bind_none_cheaply() -> None:
    """CPython 3.11's sqlite3 binds a None parameter through its adapter protocol (only int, float, str
    and bytearray skip it), and without an adapter for None that builds and drops two AttributeErrors per
    value, a visible share of a bulk job's instructions (bench/HISTORY.md). An identity adapter for None
    takes the short way. Process-wide, like every sqlite3 adapter; None still binds as NULL."""
    sqlite3.register_adapter(type(None), _null)
