"""Issue 13 (2): a frozen worker (SIGSTOP) cannot hold a study hostage. Real processes on loopback: on
PostgreSQL two `roster worker`s and a `roster serve` without embedded workers; on SQLite `roster serve` with its
embedded worker, whose writer process is frozen. While the job's writer is frozen inside a batch (holding the
study's lock), writes to the same study through the API are answered within seconds (applied, or 503 with
Retry-After), /healthz answers, the frozen transaction is ended (PostgreSQL: idle_in_transaction_session_timeout,
or tcp_user_timeout when its backend was blocked sending to the frozen worker; SQLite: the worker kills its writer
process) and the job finishes with every row logged exactly once."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func, select, text

from roster.bulk import queue
from roster.bulk.models import Job, LogEntry
from roster.db import WORKER_ROLE, api_limits, session_name, worker_limits
from roster.participants.models import AuditEvent, Participant
from tests.bulk.conftest import SITE_A, STUDY, bulk_url, csv_of
from tests.support import P

LEASE = 4  # seconds: worker sessions end a frozen transaction after a third of it (roster.db.worker_limits)
ROWS = 30_000
FREEZE_AT = 2_000  # rows processed before the writer is frozen
# An API write waits at most lock_timeout for the study's lock, then answers 503: what "within seconds" means
# here, plus room for a loaded test machine.
ANSWERED_WITHIN = api_limits().lock_timeout + 4
HEALTHZ_WITHIN = 2.0
WRITERS = 8  # concurrent API clients writing to the frozen job's study


def rows_csv() -> bytes:
    return csv_of(*(f"Z-{i},Name{i},Lee,z{i}@example.org,+1 6175551234,X{i}" for i in range(ROWS)))


def roster_env(settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ROSTER_DATABASE_URL": settings.database_url,
        "ROSTER_DATA_DIR": str(tmp_path / "data"),
        "ROSTER_JWT_SECRET": settings.jwt_secret,
        "ROSTER_JOB_LEASE_SECONDS": str(LEASE),
        "ROSTER_BATCH_SIZE": "200",
        "ROSTER_WORKER_POLL_SECONDS": "0.2",
        "ROSTER_LOG_LEVEL": "WARNING",
        **extra,
    }


class Processes:
    """Roster processes of one test; each logs to its own file (a full pipe would freeze it too)."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env, self.tmp_path = env, tmp_path
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "roster.cli", *args], env=self.env, cwd=self.tmp_path, stdout=log, stderr=log
        )
        log.close()
        self.started.append(process)
        return process

    def serve(self) -> str:
        port = free_port()
        self.start("serve", "serve", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _healthy(base), 60, "roster serve to start")
        return base

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in self.started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ended(db, job_uuid: str) -> bool:
    return job_row(db, job_uuid).status in ("COMPLETED", "FAILED", "CANCELLED")


def job_row(db, job_uuid: str) -> Job:
    with db.read_sessions() as s:
        return s.scalar(select(Job).where(Job.uuid == job_uuid))


@dataclass
class Answer:
    key: str
    started: float
    seconds: float
    status: int  # 0: no answer (client timeout or connection error)
    retry_after: str | None


@dataclass
class Probes:
    """API clients writing new participants to the study, and one asking /healthz, until stopped."""

    base: str
    headers: dict[str, str]
    writes: list[Answer] = field(default_factory=list)
    health: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Probes:
        self.threads = [threading.Thread(target=self._write, args=(n,)) for n in range(WRITERS)]
        self.threads.append(threading.Thread(target=self._health))
        for thread in self.threads:
            thread.start()
        return self

    def _write(self, n: int) -> None:
        url = f"{P}/clinicaldata/studies/{STUDY}/sites/{SITE_A}/participants"
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=60) as client:
            i = 0
            while not self.stop.is_set():
                key = f"API-{n}-{i}"
                self.writes.append(
                    self._timed(key, lambda key=key: client.post(url, json={"subjectKey": key, "firstName": "Ann"}))
                )
                i += 1

    def _health(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not self.stop.wait(0.2):
                self.health.append(self._timed("healthz", lambda: client.get("/healthz")))

    @staticmethod
    def _timed(key: str, send) -> Answer:
        started = time.monotonic()
        try:
            r = send()
            status, retry_after = r.status_code, r.headers.get("retry-after")
        except httpx.HTTPError:
            status, retry_after = 0, None
        return Answer(key, started, time.monotonic() - started, status, retry_after)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)

    def applied(self) -> set[str]:
        return {a.key for a in self.writes if a.status == 200}

    def check(self, frozen_from: float, frozen_until: float) -> None:
        """Every write answered within seconds, applied or 503 with Retry-After; some of them while frozen."""
        during = [a for a in self.writes if frozen_from <= a.started < frozen_until]
        assert len(during) >= WRITERS, f"only {len(during)} writes were sent while the writer was frozen"
        bad = [a for a in self.writes if not (a.status == 200 or (a.status == 503 and a.retry_after))]
        assert not bad, f"answers other than 200 or 503 with Retry-After: {bad[:5]}"
        slow = [a for a in self.writes if a.seconds > ANSWERED_WITHIN]
        assert not slow, f"{len(slow)} writes took over {ANSWERED_WITHIN}s: {slow[:5]}"
        assert self.health and all(a.status == 200 and a.seconds < HEALTHZ_WITHIN for a in self.health), [
            a for a in self.health if a.status != 200 or a.seconds >= HEALTHZ_WITHIN
        ][:5]


def check_every_row_once(db, job_uuid: str, applied: set[str]) -> Job:
    job = job_row(db, job_uuid)
    assert (job.status, job.processed, job.rows_total, job.created, job.failed) == ("COMPLETED", ROWS, ROWS, ROWS, 0)
    with db.read_sessions() as s:
        logged = s.scalar(select(func.count()).select_from(LogEntry))
        distinct_rows = s.scalar(select(func.count(func.distinct(LogEntry.row))))
        stored = set(s.scalars(select(Participant.participant_id)))
        creations = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "create"))
    assert logged == distinct_rows == ROWS
    api_stored = {k for k in stored if k.startswith("API-")}
    # Every write answered 200 is stored, and none answered 503 is.
    assert api_stored == applied
    assert len(stored) == creations == ROWS + len(applied)
    return job


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
        try:
            wait_for(lambda: not session_alive(bulk.db, locker), 30, "PostgreSQL to end the frozen session")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {session_state(bulk.db, locker)}; at the freeze: {held}") from None
        ended_after = time.monotonic() - frozen_at
        # Idle in its transaction, the server ends it; left inside a statement's messages, the takeover does.
        idle = next(s for s in held if s["holds_study"])["state"] == "idle in transaction"
        assert ended_after < (worker_limits(LEASE).idle_in_transaction if idle else LEASE) + 3, (ended_after, held)
        # The other worker takes the job over once the lease runs out, and finishes it.
        wait_for(lambda: ended(bulk.db, job_uuid), 60, "the other worker to finish the job")
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
        wait_for(lambda: ended(bulk.db, job_uuid), 60, "the job to finish")
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
