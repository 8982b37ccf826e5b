"""Issue 13 (2): a frozen worker (SIGSTOP) cannot hold a study hostage. Real processes on loopback: on
PostgreSQL two `roster worker`s and a `roster serve` without embedded workers; on SQLite `roster serve` with its
embedded worker, whose writer process is frozen. While the job's writer is frozen inside a batch (holding the
study's lock), writes to the same study through the API are answered within seconds (applied, or 503 with
Retry-After), /healthz answers, the frozen transaction is ended (PostgreSQL: by the worker sessions' timeouts, or
by the worker taking the job over when the freeze left it inside a statement, tests/bulk/test_frozen_sessions.py;
SQLite: the worker kills its writer process) and the job finishes with every row logged exactly once. Helpers:
tests/bulk/frozen.py."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import httpx
import psutil
import pytest
from sqlalchemy import text

from roster.bulk import queue
from roster.db import WORKER_ROLE, session_name, worker_limits
from tests.bulk.conftest import bulk_url
from tests.bulk.frozen import (
    FREEZE_AT,
    JOB_FINISHES_WITHIN,
    LEASE,
    ROWS,
    Probes,
    Processes,
    check_every_row_once,
    ended,
    job_row,
    progress,
    roster_env,
    rows_csv,
    wait_for,
)


# --------------------------------------------------------------------------------------------- PostgreSQL
def backends_of(pid: int, db) -> list[dict]:
    """The PostgreSQL sessions of OS process `pid` (matched by their client ports) that are inside a
    transaction, with whether each holds a lock on the studies table (a batch locked the study's row)."""
    ports = [c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.raddr and c.raddr.port == 5432]
    if not ports:
        return []
    with db.engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT a.pid, a.state, a.wait_event, a.application_name,"
                    " bool_or(l.relation = 'studies'::regclass AND l.mode = 'RowExclusiveLock') AS holds_study"
                    " FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid AND l.granted"
                    " WHERE a.datname = current_database() AND a.client_port = ANY(:ports) AND a.xact_start IS NOT NULL"
                    " GROUP BY a.pid, a.state, a.wait_event, a.application_name"
                ),
                {"ports": ports},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def session_alive(db, backend_pid: int) -> bool:
    return session_state(db, backend_pid) is not None


def session_state(db, backend_pid: int) -> dict | None:
    """What the session is doing (None once it has ended): the diagnosis when one outlives its timeouts."""
    query = "SELECT state, wait_event, now() - state_change AS for, left(query, 200) AS query FROM pg_stat_activity"
    with db.engine.connect() as conn:
        row = conn.execute(text(query + " WHERE pid = :p"), {"p": backend_pid}).mappings().first()
    return None if row is None else dict(row)


pg_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pg_only
def test_a_worker_frozen_inside_a_batch_holds_neither_the_study_nor_the_job(bulk, settings, tmp_path):
    processes = Processes(roster_env(settings, tmp_path, ROSTER_EMBEDDED_WORKERS="0"), tmp_path)
    probes = None
    try:
        base = processes.serve()
        workers = [processes.start(f"worker-{n}", "worker") for n in (1, 2)]
        job_uuid = bulk.upload(rows_csv(), register="y")
        wait_for(lambda: job_row(bulk.db, job_uuid).processed >= FREEZE_AT, 60, "the job to get going")
        owner = job_row(bulk.db, job_uuid).lease_owner
        victim = next(w for w in workers if w.pid == int(owner.split(":")[1]))
        held = freeze_inside_a_batch(victim.pid, bulk.db)
        frozen_at = time.monotonic()
        frozen_job = job_row(bulk.db, job_uuid)
        assert frozen_job.status == "IN_PROGRESS" and frozen_job.processed < ROWS, "the job ended before the freeze"
        assert all(s["application_name"] == session_name(WORKER_ROLE, queue.process_of(owner)) for s in held), held

        probes = Probes(base, bulk.users["dm"]).start()
        # Its session ends (roster.db.worker_limits, roster.bulk.queue.claim), and with it its study lock.
        locker = next(s["pid"] for s in held if s["holds_study"])
        wait_for(
            lambda: not session_alive(bulk.db, locker),
            30,
            "PostgreSQL to end the frozen session",
            lambda: f"{session_state(bulk.db, locker)}; at the freeze: {held}",
        )
        ended_after = time.monotonic() - frozen_at
        # Idle in its transaction, the server ends it; left inside a statement's messages, the takeover does.
        idle = next(s for s in held if s["holds_study"])["state"] == "idle in transaction"
        assert ended_after < (worker_limits(LEASE).idle_in_transaction if idle else LEASE) + 3, (ended_after, held)
        # The other worker takes the job over once the lease runs out, and finishes it.
        wait_for(
            lambda: ended(bulk.db, job_uuid),
            JOB_FINISHES_WITHIN,
            "the other worker to finish the job",
            lambda: progress(bulk.db, processes),
        )
        probes.finish()
        finished_at = time.monotonic()
        assert victim.poll() is None and psutil.Process(victim.pid).status() == psutil.STATUS_STOPPED
        probes.check(frozen_at, finished_at)
        job = check_every_row_once(bulk.db, job_uuid, probes.applied())
        # Attempt 1 was the frozen worker's; the takeover's batches waited for the lock instead of failing.
        assert job.attempts == 2 <= settings.job_max_attempts

        # Resumed, the frozen worker writes nothing: its session is gone, and its claim is fenced off.
        victim.send_signal(signal.SIGCONT)
        time.sleep(LEASE)
        check_every_row_once(bulk.db, job_uuid, probes.applied())
        assert job_row(bulk.db, job_uuid).attempts == 2
        for worker in workers:
            worker.terminate()
        for worker in workers:
            assert worker.wait(30) == 0, processes.log(f"worker-{workers.index(worker) + 1}")[-3000:]
        assert "Traceback" not in processes.log("worker-1") + processes.log("worker-2")
    finally:
        if probes is not None:
            probes.finish()
        processes.stop_all()


def freeze_inside_a_batch(pid: int, db) -> list[dict]:
    """SIGSTOPs the worker at a moment its batch transaction holds the study's lock (tries again a moment
    later when it caught the worker between batches); returns its sessions open at the freeze."""
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.2)  # a statement running at the stop completes; its session is then idle in transaction
        held = backends_of(pid, db)
        if any(s["holds_study"] for s in held):
            return held
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.03)
    raise AssertionError("the worker was never caught inside a batch")


# ------------------------------------------------------------------------------------------------- SQLite
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def writer_processes(server_pid: int) -> list[psutil.Process]:
    """The bulk writer processes `roster serve` started for its embedded worker (roster.bulk.writer_process)."""
    return [c for c in psutil.Process(server_pid).children() if "roster.bulk.writer_process" in " ".join(c.cmdline())]


def database_locked(path: str) -> bool:
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.rollback()
        return False
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc) or "busy" in str(exc), exc
        return True
    finally:
        probe.close()


@sqlite_only
def test_a_writer_process_frozen_inside_a_batch_is_killed_and_the_study_answers_meanwhile(bulk, settings, tmp_path):
    processes = Processes(roster_env(settings, tmp_path, ROSTER_EMBEDDED_WORKERS="1"), tmp_path)
    probes = None
    try:
        base = processes.serve()
        server = processes.started[0]
        r = httpx.post(
            base + bulk_url(),
            params={"register": "y"},
            headers=bulk.users["dm"],
            files={"file": ("z.csv", rows_csv(), "text/csv")},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        job_uuid = r.text.removeprefix("job uuid: ")
        wait_for(lambda: job_row(bulk.db, job_uuid).processed >= FREEZE_AT, 60, "the job to get going")
        (writer,) = writer_processes(server.pid)
        for _ in range(100):
            writer.suspend()
            time.sleep(0.2)
            if database_locked(bulk.db.sqlite_file):  # still locked with the writer stopped: its batch holds it
                break
            writer.resume()
            time.sleep(0.03)
        else:
            raise AssertionError("the writer process was never caught inside a batch")
        frozen_at = time.monotonic()
        assert job_row(bulk.db, job_uuid).status == "IN_PROGRESS"

        probes = Probes(base, bulk.users["dm"]).start()
        # The worker does not wait for an answer longer than its lease: it kills the writer process,
        # whose transaction dies with it, and carries on with a new one.
        wait_for(lambda: not psutil.pid_exists(writer.pid), LEASE + 10, "the worker to kill its frozen writer process")
        assert time.monotonic() - frozen_at < LEASE + 3
        wait_for(lambda: ended(bulk.db, job_uuid), JOB_FINISHES_WITHIN, "the job to finish")
        probes.finish()
        probes.check(frozen_at, time.monotonic())
        job = check_every_row_once(bulk.db, job_uuid, probes.applied())
        # The killed writer cost its attempt (as a writer process that dies does); the next one finished.
        assert job.attempts == 2 <= settings.job_max_attempts
        assert server.poll() is None
    finally:
        if probes is not None:
            probes.finish()
        processes.stop_all()
