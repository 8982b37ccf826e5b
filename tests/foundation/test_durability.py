"""Database.transaction: commits are durable when they return (SPEC §4: an upload is stored durably before
the answer), except in a relaxed transaction, which only a bulk batch uses."""

from __future__ import annotations

from sqlalchemy import text

# SQLite: PRAGMA synchronous (2 = FULL: the WAL is synced at every commit; 1 = NORMAL: it is not).
# PostgreSQL: synchronous_commit.
_DURABLE = {"sqlite": ("PRAGMA synchronous", 2), "postgresql": ("SHOW synchronous_commit", "on")}
_RELAXED = {"sqlite": 1, "postgresql": "off"}


def level(session) -> object:
    return session.execute(text(_DURABLE[session.get_bind().dialect.name][0])).scalar()


def test_a_transaction_commits_durably_and_a_relaxed_one_does_not_wait_for_the_disk(db):
    durable = _DURABLE[db.dialect][1]
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
