"""SPEC §13 retention: stored uploads go ROSTER_UPLOAD_RETENTION_DAYS after their job ended (failedRows then
answers 410 fileExpired), whole jobs with their logs after ROSTER_JOB_RETENTION_DAYS; nothing else, and never
the audit trail. Workers purge on their own, one at a time (an advisory lock on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, update

from roster import codes
from roster.bulk import retention
from roster.bulk.models import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    IN_QUEUE,
    Job,
    LogEntry,
    UploadChunk,
    WorkerHeartbeat,
)
from roster.bulk.worker import Workers, drain
from roster.db import utcnow
from roster.participants.models import AuditEvent, Participant
from tests.bulk.conftest import csv_of
from tests.foundation.test_cli import run
from tests.jobs.conftest import log_entries
from tests.ops.conftest import settings_with

NOW = utcnow()


def ended(days: float) -> dict:
    return {"date_started": NOW - dt.timedelta(days=days, hours=1), "date_completed": NOW - dt.timedelta(days=days)}


def counts(db, job_uuid: str) -> tuple[int, int, int]:
    """(job rows, upload chunks, log entries) of one job."""
    with db.read_sessions() as s:
        job_id = s.scalar(select(Job.id).where(Job.uuid == job_uuid))
        if job_id is None:
            return 0, 0, 0
        return (
            1,
            *(s.scalar(select(func.count()).select_from(t).where(t.job_id == job_id)) for t in (UploadChunk, LogEntry)),
        )


def totals(db) -> dict[str, int]:
    with db.read_sessions() as s:
        return {
            t.__tablename__: s.scalar(select(func.count()).select_from(t))
            for t in (Participant, AuditEvent, Job, LogEntry)
        }


def test_stored_uploads_of_jobs_that_ended_before_the_retention_go_and_nothing_else(world, db, settings):
    entries = log_entries(6, failed_every=2)
    due = {
        s: world.add_job("crc_a", status=s, entries=entries, chunk_size=10, **ended(31))
        for s in (COMPLETED, FAILED, CANCELLED)
    }
    recent = world.add_job("crc_a", status=COMPLETED, entries=entries, **ended(29))
    running = world.add_job("crc_a", status=IN_PROGRESS, entries=entries, date_started=NOW - dt.timedelta(days=40))
    queued = world.add_job("crc_a", status=IN_QUEUE, date_created=NOW - dt.timedelta(days=40))
    kept = {uuid: counts(db, uuid) for uuid in (recent, running, queued)}

    result = retention.purge(db, settings, now=NOW)
    assert (result.uploads, result.jobs, result.log_rows) == (3, 0, 0)
    assert result.upload_bytes == 3 * len(b"ParticipantID,firstName\r\nP-1,Ann\r\n")
    for uuid in due.values():
        assert counts(db, uuid) == (1, 0, 6)  # the job and its log stay
    assert {uuid: counts(db, uuid) for uuid in kept} == kept

    job = due[COMPLETED]
    r = world.get(f"/jobs/{job}/failedRows", "crc_a")
    assert r.status_code == 410 and r.json()["message"] == codes.FILE_EXPIRED == "errorCode.fileExpired"
    assert r.json()["params"] == {"uuid": job}
    assert world.get(f"/jobs/{job}", "crc_a").json()["counts"]["processed"] is not None
    log_csv = world.get(f"/jobs/{job}/downloadFile", "crc_a")
    assert log_csv.status_code == 200 and len(log_csv.text.splitlines()) == 7
    assert world.get(f"/jobs/{recent}/failedRows", "crc_a").status_code == 200

    again = retention.purge(db, settings, now=NOW)
    assert (again.uploads, again.jobs) == (0, 0)


def test_whole_jobs_go_after_the_job_retention_and_the_audit_trail_stays(bulk, db, settings):
    old = bulk.upload(csv_of("PR-1,Ann,Lee,,,", "PR-2,Bob,Ray,bad,,", "PR-3,Cy,Dee,,,"))
    young = bulk.upload(csv_of("PR-1,Ann,Lea,,,"))
    drain(db, settings)
    with db.transaction() as s:
        s.execute(update(Job).where(Job.uuid == old).values(**ended(400)))
        s.execute(update(Job).where(Job.uuid == young).values(**ended(10)))
    before = totals(db)
    young_before = counts(db, young)
    keep_jobs = settings_with(settings, job_retention_days=365)

    result = retention.purge(db, keep_jobs, now=NOW, log_rows_per_transaction=2)
    assert (result.jobs, result.log_rows, result.uploads) == (1, 3, 1)
    assert counts(db, old) == (0, 0, 0) and counts(db, young) == young_before
    after = totals(db)
    assert after["audit_events"] == before["audit_events"] > 0 and after["participants"] == before["participants"] == 2
    assert after["jobs"] == before["jobs"] - 1 and after["job_log_entries"] == before["job_log_entries"] - 3
    assert bulk.client.get(f"/pages/auth/api/jobs/{old}", headers=bulk.users["dm"]).status_code == 404
    assert bulk.client.get(f"/pages/auth/api/jobs/{young}", headers=bulk.users["dm"]).status_code == 200


def test_unfinished_jobs_are_never_deleted_whatever_their_age(world, db, settings):
    running = world.add_job(
        "crc_a", status=IN_PROGRESS, entries=log_entries(3), date_created=NOW - dt.timedelta(days=900)
    )
    result = retention.purge(db, settings_with(settings, job_retention_days=1), now=NOW)
    assert result.jobs == 0 and counts(db, running) == (1, 1, 3)


def test_stale_heartbeat_rows_go_after_a_day(db, settings):
    from roster.bulk.heartbeat import Heartbeat

    fresh, stale = Heartbeat(db, 30, 1), Heartbeat(db, 30, 1)
    fresh.beat()
    stale.beat()
    with db.transaction() as s:
        s.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.id == stale.row_id)
            .values(last_seen=NOW - dt.timedelta(days=2))
        )
    assert retention.purge(db, settings, now=NOW).heartbeats == 1
    with db.read_sessions() as s:
        assert s.scalars(select(WorkerHeartbeat.id)).all() == [fresh.row_id]


def test_workers_purge_on_their_own(world, db, settings):
    job = world.add_job("crc_a", status=COMPLETED, **ended(2))
    workers = Workers(
        db, settings_with(settings, upload_retention_days=1, purge_interval_seconds=0.2), concurrency=1
    ).start()
    try:
        deadline = time.monotonic() + 30
        while counts(db, job)[1]:
            assert time.monotonic() < deadline, "no worker purged the upload"
            time.sleep(0.1)
    finally:
        workers.stop()
    assert counts(db, job) == (1, 0, 0)


def test_roster_db_purge_purges_now_and_says_what_it_deleted(world, db, settings, tmp_path):
    job = world.add_job("crc_a", status=COMPLETED, entries=log_entries(2), **ended(31))
    env = {
        "ROSTER_DATABASE_URL": settings.database_url,
        "ROSTER_JWT_SECRET": settings.jwt_secret,
        "ROSTER_DATA_DIR": str(tmp_path / "d"),
    }
    result = run(["db", "purge"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "purged 1 stored upload(s)" in result.stdout and "0 job(s)" in result.stdout
    assert counts(db, job) == (1, 0, 2)
    result = run(["db", "purge"], env | {"ROSTER_JOB_RETENTION_DAYS": "30"}, tmp_path)
    assert result.returncode == 0 and "1 job(s) with 2 log row(s)" in result.stdout
    assert counts(db, job) == (0, 0, 0)


@pytest.mark.postgres_only
def test_on_postgresql_one_process_purges_at_a_time(world, db, settings, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL's advisory lock")
    job = world.add_job("crc_a", status=COMPLETED, **ended(31))
    other = sa.create_engine(settings.database_url)
    try:
        with other.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": retention.PURGE_LOCK_KEY}).scalar()
            assert retention.purge(db, settings, now=NOW, wait=False) is None
            assert counts(db, job)[1] == 1
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": retention.PURGE_LOCK_KEY})
        assert retention.purge(db, settings, now=NOW, wait=False).uploads == 1
    finally:
        other.dispose()
