"""The job queue (SPEC §9): the `jobs` row is the queue entry.

- enqueue: the job row and its stored upload are written in one transaction (the upload request's).
- claim: `SELECT … FOR UPDATE SKIP LOCKED LIMIT 1`, then `UPDATE … RETURNING` of that row, takes the oldest
  queued job, or a running one whose lease has run out; it counts the attempt and sets a fresh lease
  token (unique per claim, so a worker that lost a job can never write under a later claim's name). Taking
  a running job over ends the previous worker's open transactions (PostgreSQL: a frozen worker's).
- every batch commit is fenced: the job row is updated only `WHERE lease_owner = :me AND status =
  'IN_PROGRESS'`; when that touches no row the job was taken over, cancelled or deleted, and the batch
  is rolled back.
- after `job_max_attempts` claims the job is FAILED instead of being run again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Interval, Row, Update, func, literal, or_, select, update
from sqlalchemy.orm import Session

from roster import codes
from roster.bulk.job_warnings import bounded
from roster.bulk.models import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, IN_QUEUE, JOB_TYPE_BULK_ADD, Job, UploadChunk
from roster.db import Database, process_tag, rowcount, table_of, utcnow

log = logging.getLogger("roster.queue")

_J = table_of(Job)
_HOST = socket.gethostname()[:40]


class LeaseLost(Exception):
    """The job is no longer ours: another worker reclaimed it, or it was cancelled or deleted."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this worker holds, and the lease token that fences its writes."""

    job_id: int
    uuid: str
    owner: str
    attempts: int
    processed: int
    rows_total: int | None
    cancel_requested: bool
    type: str = JOB_TYPE_BULK_ADD  # what runs it (roster.bulk.worker)


def new_owner() -> str:
    # host:pid:thread:process:random: readable in the jobs table, unique per claim; `process` names this
    # process's database sessions (roster.db.process_tag).
    return f"{_HOST}:{os.getpid()}:{threading.get_ident() % 100000}:{process_tag()}:{uuidlib.uuid4().hex[:8]}"


def process_of(owner: str) -> str | None:
    """The process_tag in a lease owner (None for an owner written before leases carried it)."""
    parts = owner.split(":")
    return parts[3] if len(parts) == 5 else None


def new_job(**fields: Any) -> Job:
    """A job as it enters the queue (IN_QUEUE, nothing done yet), with `fields` for what it is."""
    state: dict[str, Any] = {
        "uuid": str(uuidlib.uuid4()),
        "status": IN_QUEUE,
        "date_created": utcnow(),
        "processed": 0,
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "deleted": 0,
        "restored": 0,
        "warnings": [],
        "attempts": 0,
        "cancel_requested": False,
        "upload_size": 0,
    }
    return Job(**(state | fields))


def enqueue(
    session: Session,
    *,
    study_id: int,
    site_id: int,
    register: bool,
    dry_run: bool = False,
    file_name: str,
    username: str,
    user_id: int | None,
    size: int,
    sha256: str,
    warnings: list[str],
    chunks: Iterable[bytes],
) -> Job:
    """Stores the upload chunk by chunk with its job (IN_QUEUE) in the caller's transaction."""
    job = new_job(
        study_id=study_id,
        site_id=site_id,
        register=register,
        dry_run=dry_run,
        source_file_name=file_name[:255],
        created_by=username,
        created_by_id=user_id,
        warnings=bounded(warnings),
        upload_size=size,
        upload_sha256=sha256,
    )
    session.add(job)
    session.flush()
    table = table_of(UploadChunk)
    for seq, data in enumerate(chunks):
        # One statement per ~1 MiB chunk: the upload is never in memory as a whole.
        session.execute(table.insert().values(job_id=job.id, seq=seq, data=data))
    return job


# SQLite's clock as the UTCDateTime column stores time (SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff"); SQLite's
# own clock has milliseconds.
_SQLITE_NOW = "%Y-%m-%d %H:%M:%f000"


def _clock(dialect: str, lease_seconds: int = 0) -> ColumnElement[Any]:
    """Now, plus `lease_seconds`, for lease times: the database's clock, read when the statement runs.
    Workers on several machines (PostgreSQL) then agree on when a lease runs out even if their own clocks do
    not (a worker whose clock ran ahead would take healthy jobs over), and a statement built ahead of its
    transaction (the SQLite writer process's checkpoint) still renews the lease from the time it commits."""
    if dialect == "postgresql":
        now = func.now()
        return now + literal(dt.timedelta(seconds=lease_seconds), Interval()) if lease_seconds else now
    return func.strftime(_SQLITE_NOW, "now", f"+{lease_seconds} seconds")


def claim(db: Database, lease_seconds: int) -> Claim | None:
    """Takes the oldest claimable job, or None. Safe with any number of workers. Taking over a job whose lease
    ran out ends its previous worker's open transactions (Database.end_transactions_of)."""
    now = utcnow()
    owner = new_owner()
    claimable = (
        select(_J.c.id, _J.c.lease_owner)
        .where(
            or_(_J.c.status == IN_QUEUE, (_J.c.status == IN_PROGRESS) & (_J.c.lease_expires_at < _clock(db.dialect)))
        )
        .order_by(_J.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises claims
    )
    stmt = (
        update(_J)
        .values(
            status=IN_PROGRESS,
            attempts=_J.c.attempts + 1,
            lease_owner=owner,
            lease_expires_at=_clock(db.dialect, lease_seconds),
            date_started=func.coalesce(_J.c.date_started, literal(now, type_=_J.c.date_started.type)),
        )
        .returning(_J.c.id, _J.c.uuid, _J.c.attempts, _J.c.processed, _J.c.rows_total, _J.c.cancel_requested, _J.c.type)
    )
    with db.transaction() as session:
        found = session.execute(claimable).one_or_none()
        row = None if found is None else session.execute(stmt.where(_J.c.id == found.id)).one()
    if found is None or row is None:
        return None
    previous = process_of(found.lease_owner or "")
    if previous is not None:
        try:
            if ended := db.end_transactions_of(previous):
                log.warning("job %s: taken over; ended %d open transaction(s) of its previous worker", row.uuid, ended)
        except Exception as exc:  # e.g. no right to signal its sessions: the batches wait for their lock instead
            log.warning("job %s: could not end its previous worker's transactions (%s)", row.uuid, type(exc).__name__)
    return Claim(
        row.id, row.uuid, owner, row.attempts, row.processed, row.rows_total, bool(row.cancel_requested), row.type
    )


def _fenced(job: Claim) -> ColumnElement[bool]:
    return (_J.c.id == job.job_id) & (_J.c.lease_owner == job.owner) & (_J.c.status == IN_PROGRESS)


def renew(db: Database, job: Claim, lease_seconds: int) -> bool:
    """Extends the lease; False when the job is no longer ours."""
    with db.transaction() as session:
        result = session.execute(
            update(_J).where(_fenced(job)).values(lease_expires_at=_clock(db.dialect, lease_seconds))
        )
    return rowcount(result) == 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The fence of a batch, in the batch's transaction: moves the checkpoint, adds the batch's counts
    and renews the lease. Run here (`run`) or elsewhere (the SQLite writer process runs `statement`;
    `cancel_requested` reads the row it returned)."""

    claim: Claim
    lease_seconds: int
    processed: int
    counts: Mapping[str, int]
    rows_total: int | None = None

    def run(self, session: Session) -> bool:
        """Returns whether a cancel was requested; raises LeaseLost when the job is no longer ours (the
        caller rolls back)."""
        statement = self.statement(session.get_bind().dialect.name)
        return self.cancel_requested(session.execute(statement).one_or_none())

    def statement(self, dialect: str) -> Update:
        """Returns one row (the cancel flag) while the job is ours, else none."""
        values = {name: getattr(_J.c, name) + n for name, n in self.counts.items() if n}
        values["processed"] = self.processed
        # The database's clock when the statement runs: a statement built ahead renews from its commit.
        values["lease_expires_at"] = _clock(dialect, self.lease_seconds)
        if self.rows_total is not None:
            values["rows_total"] = self.rows_total
        return update(_J).where(_fenced(self.claim)).values(**values).returning(_J.c.cancel_requested)

    def cancel_requested(self, row: Row[Any] | None) -> bool:
        if row is None:
            raise LeaseLost(self.claim.uuid)
        return bool(row[0])


def finish(db: Database, job: Claim, status: str, error: str | None = None) -> bool:
    """COMPLETED, CANCELLED or FAILED, fenced; clears the lease. False when the job was not ours any more."""
    with db.transaction() as session:
        return finish_in(session, job, status, error)


def finish_in(session: Session, job: Claim, status: str, error: str | None = None) -> bool:
    """`finish` in the caller's transaction (with what must go together with the end)."""
    values: dict[str, Any] = {
        "status": status,
        "lease_owner": None,
        "lease_expires_at": None,
        "date_completed": utcnow(),
        "error": error,
    }
    if status == COMPLETED:
        values["rows_total"] = _J.c.processed
    result = session.execute(update(_J).where(_fenced(job)).values(**values))
    return rowcount(result) == 1


def release(db: Database, job: Claim, *, count_attempt: bool) -> bool:
    """Gives the job back to the queue (a failed attempt, or a worker shutting down). Fenced."""
    values: dict[str, Any] = {"status": IN_QUEUE, "lease_owner": None, "lease_expires_at": None}
    if not count_attempt:
        values["attempts"] = _J.c.attempts - 1
    with db.transaction() as session:
        result = session.execute(update(_J).where(_fenced(job)).values(**values))
    return rowcount(result) == 1


def fail_attempt(db: Database, job: Claim, max_attempts: int, error: str) -> str:
    """An attempt failed: FAILED with `error` once the attempts are used up, else back to the queue.
    Returns the job's new status (or "" when it was not ours any more)."""
    if job.attempts >= max_attempts:
        return FAILED if finish(db, job, FAILED, error) else ""
    return IN_QUEUE if release(db, job, count_attempt=True) else ""


def exhausted(db: Database, job: Claim) -> bool:
    """A job claimed once more than allowed (its last worker died): FAILED without running it, or
    CANCELLED if someone asked for that meanwhile (what they asked for is what they get)."""
    if job.cancel_requested:
        return cancel(db, job)
    log.warning("job %s failed: %d attempts used", job.uuid, job.attempts - 1)
    return finish(db, job, FAILED, codes.JOB_ATTEMPTS_EXHAUSTED)


def cancel(db: Database, job: Claim) -> bool:
    return finish(db, job, CANCELLED)
