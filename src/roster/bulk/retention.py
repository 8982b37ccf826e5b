"""Retention (SPEC §13): what is deleted, when, and by whom.

- A finished job's stored upload goes ROSTER_UPLOAD_RETENTION_DAYS (default 30) after the job ended; the job
  and its log stay, `upload_purged_at` is set and failedRows answers 410 errorCode.fileExpired.
- With ROSTER_JOB_RETENTION_DAYS, a finished job goes that many days after it ended, with its log and upload.
- Heartbeat rows of workers not seen for a day (killed, not stopped) go too.
- The audit trail is never touched.

Workers purge every ROSTER_PURGE_INTERVAL_SECONDS (`Purger`), one at a time across the cluster: on
PostgreSQL whoever holds the advisory lock purges and the others skip that round; on SQLite every delete
takes the single write lock anyway. `roster db purge` waits for the lock and purges now. Work is split into
short transactions (a job's log a few thousand rows at a time), so a purge never holds SQLite's write lock
or PostgreSQL's row locks for long, and one interrupted half-way is finished by the next.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, delete, func, select, text, update

from roster.bulk.models import FINISHED, DryRunCreation, Job, LogEntry, UploadChunk, WorkerHeartbeat
from roster.config import Settings
from roster.db import Database, utcnow

log = logging.getLogger("roster.retention")

# Key of the PostgreSQL advisory lock held while purging ("purge" in ASCII); migrate.py's is "roster".
PURGE_LOCK_KEY = 0x7075726765
# Log rows deleted per transaction, jobs per upload-deleting transaction.
LOG_ROWS_PER_TRANSACTION = 5000
JOBS_PER_TRANSACTION = 20
STALE_HEARTBEAT = dt.timedelta(days=1)


@dataclass
class PurgeResult:
    uploads: int = 0
    upload_bytes: int = 0
    jobs: int = 0
    log_rows: int = 0
    heartbeats: int = 0

    def __str__(self) -> str:
        return (
            f"{self.uploads} stored upload(s) ({self.upload_bytes} bytes), {self.jobs} job(s) with "
            f"{self.log_rows} log row(s), {self.heartbeats} stale heartbeat(s)"
        )


@contextmanager
def _cluster_lock(conn: Connection, wait: bool) -> Iterator[bool]:
    """PostgreSQL: a session advisory lock on the connection that purges; SQLite: nothing to take."""
    if conn.dialect.name != "postgresql":
        yield True
        return
    sql = "SELECT pg_advisory_lock(:k)" if wait else "SELECT pg_try_advisory_lock(:k)"
    got = conn.execute(text(sql), {"k": PURGE_LOCK_KEY}).scalar() is not False
    conn.commit()
    try:
        yield got
    finally:
        if got:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PURGE_LOCK_KEY})
            conn.commit()


def purge(
    db: Database,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    wait: bool = True,
    log_rows_per_transaction: int = LOG_ROWS_PER_TRANSACTION,
) -> PurgeResult | None:
    """Deletes what retention says is due at `now`; None when another process is purging (wait=False)."""
    now = now or utcnow()
    with db.engine.connect() as conn, _cluster_lock(conn, wait) as got:
        if not got:
            return None
        result = PurgeResult()
        _purge_uploads(conn, now - dt.timedelta(days=settings.upload_retention_days), now, result)
        if settings.job_retention_days is not None:
            _purge_jobs(conn, now - dt.timedelta(days=settings.job_retention_days), result, log_rows_per_transaction)
        with conn.begin():
            result.heartbeats = conn.execute(
                delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen < now - STALE_HEARTBEAT)
            ).rowcount
    return result


def _finished_before(cutoff: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    return (Job.status.in_(FINISHED), Job.date_completed.is_not(None), Job.date_completed < cutoff)


def _purge_uploads(conn: Connection, cutoff: dt.datetime, now: dt.datetime, result: PurgeResult) -> None:
    while True:
        with conn.begin():
            due = conn.execute(
                select(Job.id, Job.upload_size)
                .where(*_finished_before(cutoff), Job.upload_purged_at.is_(None))
                .order_by(Job.id)
                .limit(JOBS_PER_TRANSACTION)
            ).all()
            if not due:
                return
            ids = [row.id for row in due]
            conn.execute(delete(UploadChunk).where(UploadChunk.job_id.in_(ids)))
            conn.execute(update(Job).where(Job.id.in_(ids)).values(upload_purged_at=now))
        result.uploads += len(ids)
        result.upload_bytes += sum(row.upload_size or 0 for row in due)


def _purge_jobs(conn: Connection, cutoff: dt.datetime, result: PurgeResult, per_transaction: int) -> None:
    """Log first, in short transactions, then upload and job together: a job cut short half-way is still
    due and is finished next time. A job visible meanwhile shows part of its log, which is about to go."""
    while True:
        with conn.begin():
            job_id = conn.execute(select(Job.id).where(*_finished_before(cutoff)).order_by(Job.id).limit(1)).scalar()
        if job_id is None:
            return
        while True:
            with conn.begin():
                rows = (
                    select(LogEntry.row).where(LogEntry.job_id == job_id).order_by(LogEntry.row).limit(per_transaction)
                )
                upto = conn.execute(select(func.max(rows.subquery().c.row))).scalar()
                if upto is None:
                    break
                result.log_rows += conn.execute(
                    delete(LogEntry).where(LogEntry.job_id == job_id, LogEntry.row <= upto)
                ).rowcount
        with conn.begin():
            conn.execute(delete(UploadChunk).where(UploadChunk.job_id == job_id))
            conn.execute(delete(DryRunCreation).where(DryRunCreation.job_id == job_id))
            result.jobs += conn.execute(delete(Job).where(Job.id == job_id, *_finished_before(cutoff))).rowcount


class Purger:
    """A worker process's purge thread: a first round soon after start, then every interval."""

    FIRST_DELAY = 60.0

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="roster-purge", daemon=True)

    def start(self) -> Purger:
        self._thread.start()
        return self

    def _run(self) -> None:
        delay = min(self.FIRST_DELAY, self.settings.purge_interval_seconds)
        while not self._stop.wait(delay):
            delay = self.settings.purge_interval_seconds
            try:
                result = purge(self.db, self.settings, wait=False)
            except Exception as exc:  # the next round tries again
                log.warning("purge failed (%s)", type(exc).__name__)
                continue
            if result is None:
                log.debug("purge: another process is purging")
            elif result.uploads or result.jobs or result.heartbeats:
                log.info("purge: deleted %s", result, extra={"purge": vars(result)})

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
