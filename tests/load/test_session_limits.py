"""Issue 13: a worker frozen while its PostgreSQL backend was sending it a result. The backend then waits on
the client write, where PostgreSQL defers statement_timeout and idle_in_transaction_session_timeout, so its
transaction (and a study lock it holds) would live as long as the freeze; the worker sessions'
tcp_user_timeout (roster.db.worker_limits) ends it. tests/bulk/test_frozen_worker.py freezes real processes
and meets this case only when the SIGSTOP happens to land there; here a client stops reading on purpose."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from roster.db import Database, worker_limits

LEASE = 3  # seconds
# Far more than the socket buffers on both ends hold; the server produces it only as fast as it is read.
UNREAD_RESULT = b"SELECT repeat('x', 1000) FROM generate_series(1, 100000)"


def activity(db: Database, backend_pid: int) -> tuple[str, str | None] | None:
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT state, wait_event FROM pg_stat_activity WHERE pid = :p"), {"p": backend_pid}
        ).first()
    return None if row is None else (row.state, row.wait_event)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_session_blocked_on_a_client_that_stopped_reading_is_ended(settings):
    limits = worker_limits(LEASE)
    worker, watcher = Database(settings.database_url, limits), Database(settings.database_url)
    conn = worker.engine.raw_connection()
    try:
        pg = conn.driver_connection
        pg.execute("SELECT pg_advisory_xact_lock(4242)")  # a transaction holding a lock, as a batch would
        backend = pg.info.backend_pid
        # Sent, never read: what a worker frozen (SIGSTOP) while its result comes in leaves behind.
        pg.pgconn.send_query(UNREAD_RESULT)
        pg.pgconn.flush()
        deadline = time.monotonic() + 10
        while (seen := activity(watcher, backend)) != ("active", "ClientWrite") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ("active", "ClientWrite"), f"the backend never blocked on the client: {seen}"
        blocked_at = time.monotonic()
        while activity(watcher, backend) is not None and time.monotonic() - blocked_at < 30:
            time.sleep(0.05)
        ended_after = time.monotonic() - blocked_at
        assert activity(watcher, backend) is None, "the backend outlived its worker session limits"
        assert ended_after < limits.unread + 3, ended_after
        with watcher.engine.connect() as c:  # its lock went with it
            assert c.execute(text("SELECT pg_try_advisory_lock(4242)")).scalar() is True
            c.execute(text("SELECT pg_advisory_unlock(4242)"))
    finally:
        conn.invalidate()
        worker.dispose()
        watcher.dispose()
