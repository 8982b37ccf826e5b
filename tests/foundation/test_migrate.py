"""Migrations at start-up: every `roster serve` and `roster worker` migrates, so several may do it at once."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from roster.db import Database
from roster.migrate import alembic_config, upgrade


def test_concurrent_upgrades_of_a_fresh_postgresql_database_both_succeed(fresh_postgres_url):
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def start() -> None:
        db = Database(fresh_postgres_url)
        try:
            barrier.wait()
            upgrade(db)
        except BaseException as exc:
            failures.append(exc)
        finally:
            db.dispose()

    # Daemon threads: without the lock they can hang (Alembic's `context` is process-global), and must not
    # keep pytest from exiting.
    threads = [threading.Thread(target=start, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "an upgrade hung"
    assert not failures, [f"{type(e).__name__}: {str(e).splitlines()[0]}" for e in failures]

    engine = sa.create_engine(fresh_postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        assert {"studies", "sites", "users", "participants", "jobs"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
