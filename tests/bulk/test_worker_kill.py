"""SPEC §9: a worker process killed (SIGKILL) in the middle of a job; another worker finishes it after
the lease runs out, every row logged exactly once and no participant written twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from sqlalchemy import func, select

from roster.bulk.models import Job, LogEntry
from roster.participants.models import AuditEvent, Participant
from tests.bulk.conftest import csv_of
from tests.bulk.frozen import wait_for

ROWS = 8_000


def start_worker(settings, tmp_path, name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "ROSTER_DATABASE_URL": settings.database_url,
        "ROSTER_DATA_DIR": str(tmp_path / name),
        "ROSTER_JWT_SECRET": settings.jwt_secret,
        "ROSTER_JOB_LEASE_SECONDS": "2",
        "ROSTER_BATCH_SIZE": "50",
        "ROSTER_WORKER_POLL_SECONDS": "0.1",
        "ROSTER_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "roster.cli", "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def job_state(db, job_uuid: str) -> tuple[str, int, int]:
    with db.read_sessions() as s:
        job = s.scalar(select(Job).where(Job.uuid == job_uuid))
        return job.status, job.processed, job.attempts


def test_a_killed_worker_s_job_is_finished_by_another_with_every_row_logged_once(bulk, settings, tmp_path):
    data = csv_of(*(f"K-{i},Name{i},Lee,k{i}@example.org,+1 6175551234,X{i}" for i in range(ROWS)))
    job_uuid = bulk.upload(data, register="y")

    first = start_worker(settings, tmp_path, "first")
    try:
        wait_for(lambda: job_state(bulk.db, job_uuid)[1] >= 100, 120, "the first worker to commit a few batches")
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.wait(30)
    status, processed_at_kill, attempts = job_state(bulk.db, job_uuid)
    assert status == "IN_PROGRESS" and 0 < processed_at_kill < ROWS and attempts == 1, (status, processed_at_kill)

    second = start_worker(settings, tmp_path, "second")
    try:
        wait_for(lambda: job_state(bulk.db, job_uuid)[0] == "COMPLETED", 180, "the second worker to finish the job")
    finally:
        second.send_signal(signal.SIGTERM)
        _out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err.decode()[-2000:]

    status, processed, attempts = job_state(bulk.db, job_uuid)
    assert (status, processed, attempts) == ("COMPLETED", ROWS, 2)
    with bulk.db.read_sessions() as s:
        logged = s.scalar(select(func.count()).select_from(LogEntry))
        distinct_rows = s.scalar(select(func.count(func.distinct(LogEntry.row))))
        created = s.scalar(select(func.count()).select_from(LogEntry).where(LogEntry.outcome == "created"))
        participants = s.scalar(select(func.count()).select_from(Participant))
        distinct_codes = s.scalar(select(func.count(func.distinct(Participant.access_code))))
        creations = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "create"))
        job = s.scalar(select(Job).where(Job.uuid == job_uuid))
    assert logged == distinct_rows == ROWS
    assert created == participants == distinct_codes == creations == ROWS
    assert (job.created, job.failed, job.rows_total) == (ROWS, 0, ROWS)
