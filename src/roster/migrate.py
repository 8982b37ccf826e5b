"""Apply Alembic migrations programmatically (used by `roster db upgrade`, `roster serve` and tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from roster.db import Database

# Key of the PostgreSQL advisory lock that serialises migrations ("roster" in ASCII, a fixed 64-bit number).
MIGRATION_LOCK_KEY = 0x726F73746572


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "roster:migrations")
    return cfg


def _driver(conn: Connection) -> Any:
    driver = conn.connection.driver_connection
    assert driver is not None, "a checked-out connection has its driver's"
    return driver


def lock_migrations(conn: Connection) -> None:
    """On PostgreSQL, waits for any other process migrating this database, then holds the lock until
    `conn`'s transaction ends. Every `roster serve`/`worker` migrates at start: without the lock, several
    starting at once on a fresh database would all create the same tables and all but one fail. The one
    after the first finds the schema at head and does nothing. SQLite needs nothing: `BEGIN IMMEDIATE`
    already lets one writer in at a time."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def upgrade(db: Database, revision: str = "head") -> None:
    _migrate(db, lambda cfg: command.upgrade(cfg, revision))


def downgrade(db: Database, revision: str) -> None:
    _migrate(db, lambda cfg: command.downgrade(cfg, revision))


def _migrate(db: Database, run: Callable[[Config], None]) -> None:
    cfg = alembic_config()
    with db.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations rebuild a table and drop the old one; with foreign keys on, SQLite's DROP TABLE
            # would first delete every row that references it (ON DELETE CASCADE). The pragma only takes
            # effect outside a transaction, so it goes to the driver before SQLAlchemy begins one.
            _driver(conn).execute("PRAGMA foreign_keys=OFF")
        try:
            # One transaction (DDL is transactional on PostgreSQL): the lock is held until the schema is committed.
            with conn.begin():
                lock_migrations(conn)
                cfg.attributes["connection"] = conn
                run(cfg)
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("migration left rows whose foreign keys point nowhere; rolled back")
        finally:
            if sqlite:
                _driver(conn).execute("PRAGMA foreign_keys=ON")
