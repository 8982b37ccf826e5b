"""Jobs and the bulk-actions log (SPEC §6): who sees a job, the queries behind the jobs endpoints,
cancel and delete. Flushes, never commits (the request owns the transaction).

Visibility: a job is seen by its creator and by users whose write role covers the job's site (decided with
`roster.auth.permissions`); an extract (SPEC §11.3) by its creator only. Everybody else gets 404 jobNotFound, so a
UUID reveals nothing. Being an admin does not make a job visible (the log holds participant IDs and admins get no
participant data by their flag alone), but an admin may delete any job by its UUID.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid as uuidlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Text, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.models import User
from roster.auth.permissions import Action, study_access
from roster.bulk.csvreader import Header
from roster.bulk.job_warnings import bounded
from roster.bulk.jobs_schemas import OUTCOME_LABELS, JobCounts, JobOut, LogEntryOut
from roster.bulk.models import (
    CANCELLED,
    COMPLETED,
    IN_PROGRESS,
    IN_QUEUE,
    JOB_TYPE_BULK_ADD,
    JOB_TYPE_EXTRACT,
    DryRunCreation,
    Job,
    LogEntry,
    UploadChunk,
)
from roster.bulk.source import read_upload
from roster.db import Database, rowcount, utcnow
from roster.errors import Conflict, DomainError, Forbidden, NotFound
from roster.schemas import Page, PageParams
from roster.studies.models import Site, Study

# Rows per query when streaming a log: small enough to keep memory flat, big enough to be quick.
STREAM_BATCH = 5000
FAILED = "failed"


def _job_not_found(value: str) -> NotFound:
    return NotFound(codes.JOB_NOT_FOUND, {"uuid": value})


def _with_oids() -> Select[Job, str, str]:
    return select(Job, Study.oid, Site.oid).join(Study, Study.id == Job.study_id).join(Site, Site.id == Job.site_id)


def find_job(session: Session, value: str) -> Row[Job, str, str] | None:
    """The job with its study and site OIDs; None for an unknown or malformed UUID (any case accepted)."""
    try:
        key = str(uuidlib.UUID(value.strip()))
    except ValueError:
        return None
    return session.execute(_with_oids().where(Job.uuid == key)).one_or_none()


def can_see(session: Session, user: User, job: Job) -> bool:
    if job.created_by_id == user.id:
        return True
    if job.type == JOB_TYPE_EXTRACT:
        return False
    return study_access(session, user, job.study_id).can(Action.WRITE, job.site_id)


def get_visible_job(session: Session, user: User, value: str) -> tuple[Job, str, str]:
    found = find_job(session, value)
    if found is None or not can_see(session, user, found[0]):
        raise _job_not_found(value)
    return found


def require_pii(session: Session, user: User, job: Job) -> None:
    """PII reaches only a role that may read it at the job's site *now* (SPEC §1, §10). A job's creator keeps
    seeing the job, its log and the log CSV (IDs, statuses, codes: no PII), but its failed rows (the
    upload's own cells: names, emails) only while it may read PII there: else 403, noRoleSetUp when it
    holds no role in the study any more, noSufficientPrivileges when it holds one without PII."""
    study_access(session, user, job.study_id).require(Action.READ_PII, job.site_id)


def visible_jobs_clause(session: Session, user: User, study: Study) -> ColumnElement[bool]:
    """The caller's own jobs plus every job but an extract at a site where it may write (all sites for a
    study-level role)."""
    sites = study_access(session, user, study).site_ids(Action.WRITE)
    mine = Job.created_by_id == user.id
    if sites is None:
        return or_(mine, Job.type != JOB_TYPE_EXTRACT)
    return or_(mine, (Job.type != JOB_TYPE_EXTRACT) & Job.site_id.in_(sorted(sites))) if sites else mine


def progress(job: Job) -> float:
    """0–1: processed/rows once the worker has counted the rows, else 0; a completed job is 1."""
    if job.status == COMPLETED:
        return 1.0
    if job.rows_total:
        return min(1.0, round(job.processed / job.rows_total, 4))
    return 0.0


def rate(job: Job, now: dt.datetime | None = None) -> tuple[float | None, int | None]:
    """(rows per second, seconds left) of a running job: null until it has processed a row, and the
    ETA also until the worker has counted the rows. An average since the start: steady enough for a bar."""
    if job.status != IN_PROGRESS or job.date_started is None or not job.processed:
        return None, None
    elapsed = ((now or utcnow()) - job.date_started).total_seconds()
    if elapsed <= 0:
        return None, None
    per_second = job.processed / elapsed
    eta = None if job.rows_total is None else math.ceil(max(0, job.rows_total - job.processed) / per_second)
    return round(per_second, 1), eta


def job_out(job: Job, study_oid: str, site_oid: str) -> JobOut:
    rows_per_second, eta_seconds = rate(job)
    return JobOut(
        uuid=job.uuid,
        type=job.type,
        dry_run=bool(job.dry_run),
        revert_of=job.revert_of,
        status=job.status,
        study_oid=study_oid,
        site_oid=site_oid,
        register_flag=job.register,
        source_file_name=job.source_file_name,
        created_by=job.created_by,
        date_created=job.date_created,
        date_started=job.date_started,
        date_completed=job.date_completed,
        counts=JobCounts(
            rows=job.rows_total,
            processed=job.processed,
            created=job.created,
            updated=job.updated,
            unchanged=job.unchanged,
            failed=job.failed,
            deleted=job.deleted or 0,
            restored=job.restored or 0,
        ),
        progress=progress(job),
        rows_per_second=rows_per_second,
        eta_seconds=eta_seconds,
        cancel_requested=job.cancel_requested,
        warnings=bounded(job.warnings),
        error=job.error,
        include_participate_info=job.include_participate_info,
        error_message=codes.message_for(job.error) if job.error else None,
    )


def list_jobs(
    session: Session, user: User, study: Study, site: Site | None, statuses: Sequence[str], page: PageParams
) -> Page[JobOut]:
    """Jobs visible to the caller, newest first (ids only grow, so id order is creation order)."""
    where = [Job.study_id == study.id, visible_jobs_clause(session, user, study)]
    if site is not None:
        where.append(Job.site_id == site.id)
    if statuses:
        where.append(Job.status.in_(statuses))
    total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    rows = session.execute(_with_oids().where(*where).order_by(Job.id.desc()).offset(page.offset).limit(page.page_size))
    items = [job_out(job, study_oid, site_oid) for job, study_oid, site_oid in rows]
    return Page[JobOut](items=items, page=page.page, page_size=page.page_size, total=total)


_LOG_COLUMNS = (
    LogEntry.row,
    LogEntry.line,
    LogEntry.participant_id,
    LogEntry.participant_oid,
    LogEntry.outcome,
    LogEntry.participate_status,
    LogEntry.errors,
)


def log_page(session: Session, job: Job, outcome: str | None, page: PageParams) -> Page[LogEntryOut]:
    where = [LogEntry.job_id == job.id]
    if outcome:
        where.append(LogEntry.outcome == outcome)
    total = session.scalar(select(func.count()).select_from(LogEntry).where(*where)) or 0
    rows = session.execute(
        select(*_LOG_COLUMNS).where(*where).order_by(LogEntry.row).offset(page.offset).limit(page.page_size)
    )
    items = [
        LogEntryOut(
            row=r.row,
            line=r.line,
            participant_id=r.participant_id,
            participant_oid=r.participant_oid,
            outcome=r.outcome,
            participate_status=r.participate_status,
            errors=r.errors or [],
        )
        for r in rows
    ]
    return Page[LogEntryOut](items=items, page=page.page, page_size=page.page_size, total=total)


def _keyset(db: Database, query: Select[*tuple[Any, ...]]) -> Iterator[Any]:
    """Rows of `query` (which selects LogEntry.row first) in row order, STREAM_BATCH at a time, each batch in
    its own short read transaction: a download never holds a connection or a snapshot for its whole
    length, and rows a running job commits meanwhile are picked up as the download reaches them."""
    batch = STREAM_BATCH
    last = 0
    while True:
        with db.read_sessions() as session, session.begin():
            rows = session.execute(query.where(LogEntry.row > last).order_by(LogEntry.row).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1][0]


def message(outcome: str, errors: str | Iterable[dict[str, Any]] | None) -> str:
    """OpenClinica's Message column: `Success`, or the row's error codes joined by `; `.
    `errors` may come as JSON text: only failed rows pay for decoding it."""
    if outcome != FAILED:
        return "Success"
    decoded = json.loads(errors) if isinstance(errors, str) else errors
    return "; ".join(e.get("code", "") for e in decoded or ())


def log_csv_rows(db: Database, job_id: int) -> Iterator[tuple[object, ...]]:
    # errors as text: decoding JSON for every row (nearly all `[]`) was most of the download's time.
    query = select(
        LogEntry.row,
        LogEntry.participant_id,
        LogEntry.participant_oid,
        LogEntry.participate_status,
        LogEntry.outcome,
        cast(LogEntry.errors, Text),
    ).where(LogEntry.job_id == job_id)
    for row, pid, oid, participate, outcome, errors in _keyset(db, query):
        yield (row, pid, oid, participate, OUTCOME_LABELS.get(outcome, outcome), message(outcome, errors))


def upload_chunks(session: Session, job_id: int) -> Iterator[bytes]:
    """The stored upload, one chunk per query, so reading just the header loads just the first chunk."""
    seq = -1
    while True:
        found = session.execute(
            select(UploadChunk.seq, UploadChunk.data)
            .where(UploadChunk.job_id == job_id, UploadChunk.seq > seq)
            .order_by(UploadChunk.seq)
            .limit(1)
        ).first()
        if found is None:
            return
        seq = found.seq
        yield bytes(found.data)


def require_upload(job: Job) -> None:
    """Only an upload has rows to fix: an extract's stored file is its output, a revert has none (409)."""
    if job.type != JOB_TYPE_BULK_ADD:
        raise Conflict(codes.JOB_HAS_NO_UPLOAD, {"uuid": job.uuid})


def upload_header(session: Session, job: Job) -> Header:
    """The upload's header as the file wrote it (names and delimiter), re-read from the stored upload."""
    if job.upload_purged_at is not None:  # retention deleted it (roster.bulk.retention)
        raise DomainError(codes.FILE_EXPIRED, 410, {"uuid": job.uuid})
    try:
        header, _entries = read_upload(upload_chunks(session, job.id))
    except DomainError:
        # The upload passed these checks when it came in; failing now means the stored copy is gone or damaged.
        raise DomainError(codes.JOB_UPLOAD_UNREADABLE, 409, {"uuid": job.uuid}) from None
    return header


def failed_rows(db: Database, job_id: int, width: int, id_index: int) -> Iterator[list[str]]:
    """Each failed row's own cells, in file order. A malformed row keeps its cells as they were (ragged):
    that is what must be fixed. A row logged without cells still yields its ParticipantID in place."""
    query = select(LogEntry.row, LogEntry.cells, LogEntry.participant_id).where(
        LogEntry.job_id == job_id, LogEntry.outcome == FAILED
    )
    for _row, cells, participant_id in _keyset(db, query):
        if cells is None:
            cells = [""] * width
            cells[id_index] = participant_id or ""
        yield cells


def file_stem(job: Job) -> str:
    name = job.source_file_name.replace("\\", "/").rsplit("/", 1)[-1]
    lower = name.lower()
    stem = name[:-4] if lower.endswith(".csv") else name[:-5] if lower.endswith(".xlsx") else name
    return stem or "bulk-upload"


def cancel(session: Session, job: Job) -> bool:
    """Queued: cancelled at once (True). Running: the worker is asked to stop after its current batch
    (False). Finished: 409 jobNotCancellable. Each step is a conditional UPDATE, so a worker claiming or
    finishing the job at the same moment cannot be overwritten."""
    done = rowcount(
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == IN_QUEUE)
            .values(
                status=CANCELLED,
                cancel_requested=True,
                date_completed=utcnow(),
                lease_owner=None,
                lease_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
    )
    if not done:
        done = rowcount(
            session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == IN_PROGRESS)
                .values(cancel_requested=True)
                .execution_options(synchronize_session=False)
            )
        )
        if not done:
            session.refresh(job)
            raise Conflict(codes.JOB_NOT_CANCELLABLE, {"uuid": job.uuid, "status": job.status})
        session.refresh(job)
        return False
    session.refresh(job)
    return True


def delete_job(session: Session, user: User, value: str) -> None:
    """Creator or admin; another user who can see the job gets 403, one who cannot gets 404.
    The job row goes first: a worker still holding the job then fails its fenced batch commit and writes
    nothing (or, when its commit came first, this waits for it and its log entries are deleted below).
    The log has no foreign key to cascade through (migration 0003)."""
    found = find_job(session, value)
    if found is None:
        raise _job_not_found(value)
    job = found[0]
    if not (user.admin or job.created_by_id == user.id):
        if can_see(session, user, job):
            raise Forbidden(codes.NO_SUFFICIENT_PRIVILEGES, {"uuid": job.uuid})
        raise _job_not_found(value)
    for stmt in (
        delete(Job).where(Job.id == job.id),
        delete(LogEntry).where(LogEntry.job_id == job.id),
        delete(UploadChunk).where(UploadChunk.job_id == job.id),
        delete(DryRunCreation).where(DryRunCreation.job_id == job.id),
    ):
        session.execute(stmt.execution_options(synchronize_session=False))
    session.expunge(job)
