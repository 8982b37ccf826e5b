"""Issue 13: PostgreSQL backends that a frozen worker leaves where none of its sessions' timeouts apply. Blocked
sending a result the worker no longer reads, or waiting for the rest of a statement the worker had begun to
send, a backend is `active` on ClientWrite or ClientRead, where PostgreSQL defers statement_timeout and
idle_in_transaction_session_timeout: its transaction, and a study lock it holds, would live as long as the
freeze. tcp_user_timeout (roster.db.worker_limits) ends the first; the worker taking the job over ends either
(roster.bulk.queue.claim). test_frozen_worker freezes real processes and meets these only when its SIGSTOP
lands there; here a client stops on purpose."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import pytest
from sqlalchemy import text, update

from roster.bulk import queue
from roster.bulk.models import Job
from roster.db import Database, worker_limits
from tests.bulk.conftest import csv_of

LEASE = 3  # seconds
LOCK = 4242  # an advisory lock the stuck transaction holds, as a batch holds its study's
# Far more than the socket buffers on both ends hold; the server produces it only as fast as it is read.
UNREAD_RESULT = b"SELECT repeat('x', 1000) FROM generate_series(1, 100000)"
# A worker process that claims the job, then leaves its backend inside a transaction holding LOCK, waiting for
# the rest of a statement (pipeline mode without a Sync: what a freeze in the middle of sending leaves).
FROZEN_WORKER = f"""
import sys
from roster.bulk import queue
from roster.db import Database, worker_limits
db = Database(sys.argv[1], worker_limits({LEASE}))
claim = queue.claim(db, {LEASE})
pg = db.engine.raw_connection().driver_connection
pg.execute("SELECT pg_advisory_xact_lock({LOCK})")
pg.pgconn.enter_pipeline_mode()
pg.pgconn.send_query_params(b"SELECT 1", None)
pg.pgconn.flush()
print(claim.uuid, pg.info.backend_pid, flush=True)
sys.stdin.read()
"""

pg_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def activity(db: Database, backend_pid: int) -> tuple[str, str | None] | None:
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT state, wait_event FROM pg_stat_activity WHERE pid = :p"), {"p": backend_pid}
        ).first()
    return None if row is None else (row.state, row.wait_event)


def waits_on(db: Database, backend_pid: int, wait_event: str) -> None:
    """Returns once the backend is `active` waiting on `wait_event`: where none of its timeouts apply."""
    deadline = time.monotonic() + 10
    while (seen := activity(db, backend_pid)) != ("active", wait_event) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == ("active", wait_event), f"the backend never waited on {wait_event}: {seen}"


def ends_within(db: Database, backend_pid: int, seconds: float) -> float | None:
    """Seconds until the backend has ended (None: still there after `seconds`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if activity(db, backend_pid) is None:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def lock_is_free(db: Database) -> bool:
    with db.engine.connect() as c:
        free = c.execute(text(f"SELECT pg_try_advisory_lock({LOCK})")).scalar()
        c.execute(text(f"SELECT pg_advisory_unlock({LOCK})"))
    return bool(free)


@pg_only
def test_a_worker_session_blocked_on_a_client_that_stopped_reading_is_ended(settings):
    limits = worker_limits(LEASE)
    worker, watcher = Database(settings.database_url, limits), Database(settings.database_url)
    conn = worker.engine.raw_connection()
    try:
        pg = conn.driver_connection
        pg.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
        backend = pg.info.backend_pid
        pg.pgconn.send_query(UNREAD_RESULT)  # sent, never read
        pg.pgconn.flush()
        waits_on(watcher, backend, "ClientWrite")
        ended_after = ends_within(watcher, backend, 30)
        assert ended_after is not None, "the backend outlived its worker session limits"
        assert ended_after < limits.unread + 3, ended_after
        assert lock_is_free(watcher)
    finally:
        conn.invalidate()
        worker.dispose()
        watcher.dispose()


@pg_only
def test_taking_a_job_over_ends_the_previous_workers_stuck_transaction(bulk):
    bulk.upload(csv_of("P-1,Ann,Lee,,,"))
    frozen = subprocess.Popen(
        [sys.executable, "-c", FROZEN_WORKER, bulk.settings.database_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    worker = Database(bulk.settings.database_url, worker_limits(LEASE))
    try:
        job_uuid, backend = frozen.stdout.readline().split()
        backend = int(backend)
        waits_on(bulk.db, backend, "ClientRead")
        assert ends_within(bulk.db, backend, LEASE + 1) is None, "a timeout ended it: nothing left to test"
        with bulk.db.transaction() as s:  # its lease ran out
            s.execute(update(Job).where(Job.uuid == job_uuid.decode()).values(lease_expires_at=dt.datetime.now(dt.UTC)))

        taken = queue.claim(worker, LEASE)
        assert taken.uuid == job_uuid.decode() and taken.attempts == 2
        assert ends_within(bulk.db, backend, 5) is not None, activity(bulk.db, backend)
        assert lock_is_free(bulk.db)
        assert frozen.poll() is None  # the process lives on: its session was ended, not the process
    finally:
        frozen.kill()
        frozen.wait()
        worker.dispose()
