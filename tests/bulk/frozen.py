"""What tests/bulk/test_frozen_worker.py runs: real Roster processes with their own logs, API clients writing to
the frozen job's study meanwhile, and the checks that every row was logged once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from roster.bulk.models import Job, LogEntry
from roster.db import api_limits
from roster.participants.models import AuditEvent, Participant
from tests.bulk.conftest import SITE_A, STUDY, csv_of
from tests.support import P

LEASE = 4  # seconds: worker sessions end a frozen transaction after a third of it (roster.db.worker_limits)
ROWS = 30_000
FREEZE_AT = 2_000  # rows processed before the writer is frozen
# An API write waits at most lock_timeout for the study's lock, then answers 503: what "within seconds" means
# here, plus room for a loaded test machine.
ANSWERED_WITHIN = api_limits().lock_timeout + 4
HEALTHZ_WITHIN = 2.0
WRITERS = 8  # concurrent API clients writing to the frozen job's study
# Waiting for the rest of the job is a hang guard, not a bound: it runs at the machine's pace, which on a
# shared, loaded machine ran out of a minute with no busy retry and no stall (either backend, before and after
# the takeover fix). What must be quick is bounded above and by the takeover's own checks.
JOB_FINISHES_WITHIN = 240


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
        "ROSTER_LOG_LEVEL": "INFO",  # a busy batch's retries, for the failure messages
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


def wait_for(predicate, timeout: float, what: str, explain=lambda: ""):
    """Polls `predicate` until it holds; timing out, says what it waited for and what `explain()` finds then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} {explain()}")


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


def progress(db, processes: Processes) -> str:
    """The jobs' rows and what the workers logged (busy retries, attempts)."""
    with db.read_sessions() as s:
        jobs = [(j.status, j.processed, j.attempts, j.lease_owner) for j in s.scalars(select(Job))]
    logs = {n: processes.log(n) for n in ("worker-1", "worker-2")}
    busy = {n: t.count("database busy") for n, t in logs.items()}
    return f"{jobs}, busy retries {busy}: " + " | ".join(f"{n}: {t[-1500:]}" for n, t in logs.items())


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
