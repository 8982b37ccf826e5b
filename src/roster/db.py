"""Engine, session factory, declarative base and the column types every model shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
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


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
            private_database(Path(parsed.database))  # 0600 in a 0700 directory (SPEC §14)
        # LIFO: the connection used last is used next, so a worker keeps reusing one or two connections and
        # their page caches instead of filling one cache per pooled connection as its database grows.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=20, pool_use_lifo=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        sqliteconn.bind_none_cheaply()

        # pysqlite's own BEGIN handling is off so that we issue BEGIN IMMEDIATE ourselves.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # A bounded connect: an unreachable server must fail a request (or /readyz) in seconds, not hang it.
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_use_lifo=True, connect_args=connect_args)


class Database:
    """One engine and its session factory; the app and each worker hold one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
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
