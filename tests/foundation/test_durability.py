"""Database.transaction: commits are durable when they return (SPEC §4: an upload is stored durably before
the answer), except in a relaxed transaction, which only a bulk batch uses."""

from __future__ import annotations

from sqlalchemy import text

# SQLite: PRAGMA synchronous (2 = FULL: the WAL is synced at every commit; 1 = NORMAL: it is not).
# PostgreSQL: synchronous_commit, whose durable value is the server's own setting (`on` unless its
# administrator chose otherwise); a relaxed transaction turns it off.
_LEVEL = {"sqlite": "PRAGMA synchronous", "postgresql": "SHOW synchronous_commit"}
_RELAXED = {"sqlite": 1, "postgresql": "off"}


def level(session) -> object:
    return session.execute(text(_LEVEL[session.get_bind().dialect.name])).scalar()


def durable_level(db) -> object:
    if db.dialect == "sqlite":
        return 2
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'")).scalar()


def test_a_transaction_commits_durably_and_a_relaxed_one_does_not_wait_for_the_disk(db):
    durable = durable_level(db)
    assert durable != _RELAXED[db.dialect]
    with db.transaction() as session:
        assert level(session) == durable
    with db.transaction(relaxed=True) as session:
        assert level(session) == _RELAXED[db.dialect]
    # The same pooled connection serves the next transaction durably again.
    for _ in range(3):
        with db.transaction() as session:
            assert level(session) == durable
        with db.read_sessions() as session, session.begin():
            assert level(session) == durable
