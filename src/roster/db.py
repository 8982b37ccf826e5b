"""Engine, session factory, declarative base and the column types every model shares."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, DateTime, Engine, MetaData, Result, String, Table, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from roster import sqliteconn
from roster.private import private_database

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC on both backends (SQLite stores naive values; we mark them UTC on the way out)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def codepoint_string(length: int) -> String:
    """A string column ordered by code point on both backends (SQLite's BINARY, PostgreSQL's "C"), so that a
    prefix is one range of its btree indexes whatever the database's locale (roster.participants.search).
    On PostgreSQL lower() of such a column folds A-Z only, as SQLite's does."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def table_of(model: type[Base]) -> Table:
    """A mapped class's Table, typed as one (SQLAlchemy types `__table__` as any FromClause)."""
    return cast(Table, model.__table__)


def rowcount(result: Result[Any]) -> int:
    """The rows a DML statement matched (`execute` is typed as answering a Result; DML's is a CursorResult)."""
    return cast(CursorResult[Any], result).rowcount


@dataclass(frozen=True)
class SessionLimits:
    """How long one connection may wait or hold: what keeps a stuck or frozen process (or a flood of
    requests) from holding everybody else. Chosen per process role (api_limits, worker_limits)."""

    name: str  # PostgreSQL application_name: which role a session in pg_stat_activity belongs to
    lock_timeout: float  # seconds a statement waits for a row or table lock (SQLite: for the database lock)
    statement_timeout: float  # PostgreSQL: the longest one statement may run
    idle_in_transaction: float  # PostgreSQL: the server ends a session idle this long inside a transaction
    pool_size: int  # connections kept; at most as many again are opened under load
    pool_timeout: float = 10.0  # seconds to wait for a pooled connection before sqlalchemy's TimeoutError

    def postgres_settings(self, server_version: int) -> dict[str, str]:
        values = {
            "application_name": self.name,
            "lock_timeout": f"{int(self.lock_timeout * 1000)}ms",
            "statement_timeout": f"{int(self.statement_timeout * 1000)}ms",
            "idle_in_transaction_session_timeout": f"{int(self.idle_in_transaction * 1000)}ms",
        }
        if server_version >= 170000:  # the whole transaction, where the server knows the setting
            values["transaction_timeout"] = f"{int(max(self.statement_timeout, self.idle_in_transaction) * 1000)}ms"
        return values


def api_limits(concurrent_requests: int = 20) -> SessionLimits:
    """API processes: a request that waits seconds for a lock is better answered 503 (Retry-After) than held."""
    return SessionLimits(
        "roster-api", lock_timeout=5, statement_timeout=30, idle_in_transaction=60, pool_size=concurrent_requests + 5
    )


def worker_limits(lease_seconds: int, threads: int = 1) -> SessionLimits:
    """Workers: no transaction outlives the lease. A frozen worker's open transaction is ended by the
    server within a third of it, so its study lock goes back to API writers and to the worker that takes
    the job over; a worker that waits a third of a lease for a lock retries its batch (roster.bulk.importer)."""
    third = max(lease_seconds / 3, 1.0)
    return SessionLimits(
        "roster-worker",
        lock_timeout=third,
        statement_timeout=lease_seconds,
        idle_in_transaction=third,
        pool_size=4 * max(threads, 1),
    )  # planner, writer, lease, reader


def is_busy(exc: BaseException) -> bool:
    """A wait that ran out (a lock, a statement, a pooled connection), not a fault: worth a retry."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    # PostgreSQL: lock_not_available (lock_timeout), query_canceled (statement_timeout).
    if getattr(orig, "sqlstate", None) in ("55P03", "57014"):
        return True
    # SQLite: busy_timeout ran out.
    return isinstance(orig, sqlite3.OperationalError) and str(orig).startswith(
        ("database is locked", "database is busy")
    )


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    sqliteconn.configure(dbapi_conn)  # FULL here, and at every BEGIN (_sqlite_begin)


def _sqlite_begin(conn) -> None:
    options = conn.get_execution_options()
    # A commit reaches the disk before it returns (SPEC §4: an upload is stored durably before the
    # answer), except in a relaxed transaction (Database.transaction). SQLite takes the level only
    # outside a transaction, so it is set before every BEGIN.
    conn.exec_driver_sql("PRAGMA " + (sqliteconn.RELAXED if options.get("relaxed") else sqliteconn.DURABLE))
    # Writers take the lock at BEGIN (IMMEDIATE) so two of them queue on busy_timeout instead of
    # failing on a lock upgrade; readers use DEFERRED and never wait for a writer under WAL.
    conn.exec_driver_sql("BEGIN " + options.get("sqlite_begin", "IMMEDIATE"))


def make_engine(url: str, limits: SessionLimits | None = None) -> Engine:
    limits = limits or api_limits()
    parsed = make_url(url)
    pool = {
        "pool_size": limits.pool_size,
        "max_overflow": limits.pool_size,
        "pool_timeout": limits.pool_timeout,
        # LIFO: the connection used last is used next, so a worker keeps reusing one or two connections
        # and their page caches instead of filling one cache per pooled connection as its database grows.
        "pool_use_lifo": True,
    }
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
            private_database(Path(parsed.database))  # 0600 in a 0700 directory (SPEC §14)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": limits.lock_timeout}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "connect")
        def _busy_timeout(dbapi_conn, _record):  # after the pragmas, which set the writer process's default
            dbapi_conn.execute(f"PRAGMA busy_timeout={int(limits.lock_timeout * 1000)}")

        # pysqlite's own BEGIN handling is off so that we issue BEGIN IMMEDIATE ourselves.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # A bounded connect: an unreachable server must fail a request (or /readyz) in seconds, not hang it.
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool)

    @event.listens_for(engine, "connect")
    def _session_limits(dbapi_conn, _record):
        settings = limits.postgres_settings(dbapi_conn.info.server_version)
        with dbapi_conn.cursor() as cursor:
            for name, value in settings.items():
                cursor.execute("SELECT set_config(%s, %s, false)", (name, value))
        dbapi_conn.commit()

    return engine


class Database:
    """One engine and its session factory; the app and each worker hold one."""

    def __init__(self, url: str, limits: SessionLimits | None = None) -> None:
        self.url = url
        self.limits = limits or api_limits()
        self.engine = make_engine(url, self.limits)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(
            self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False
        )
        self._relaxed_sessions = sessionmaker(self.engine.execution_options(relaxed=True), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def sqlite_file(self) -> str | None:
        """SQLite: the database file's absolute path, which another process can open too (None for an
        in-memory or URI database, and on PostgreSQL)."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" or url.query.get("uri"):
            return None
        return str(Path(url.database).resolve())

    @contextmanager
    def transaction(self, *, relaxed: bool = False) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error. Its commit is durable
        when it returns. `relaxed`: the commit does not wait for the disk; only for a transaction that is
        safe to lose in a crash of the machine and to redo (a bulk batch, which lands with its checkpoint)."""
        with (self._relaxed_sessions if relaxed else self.sessions)() as session, session.begin():
            if relaxed and self.dialect == "postgresql":
                session.execute(text("SET LOCAL synchronous_commit = off"))
            yield session

    def snapshot(self, session: Session) -> None:
        """Makes the session's (new) transaction read from one snapshot throughout. SQLite's read
        transactions already do (WAL); PostgreSQL's default, READ COMMITTED, takes one per statement."""
        if self.dialect == "postgresql":
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))

    def dispose(self) -> None:
        self.engine.dispose()
