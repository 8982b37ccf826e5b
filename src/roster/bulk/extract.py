"""Extract participants (SPEC §11.3, OpenClinica's "Participant ID and access code" job).

The request queues an `EXTRACT_PARTICIPANTS` job; a worker writes a CSV of the site's `available`
participants, ordered by participant ID, into the job's stored chunks (the table that holds uploads, so
retention, delete and any worker on any machine treat it like an upload); `downloadFile` streams it back.

- Columns: `ParticipantID,Participant OID,Status,Participate Status`, plus the contact fields when the
  job's creator may read PII at the site *when the job runs*, plus `Access Code` when it also asked for
  `includeParticipateInfo=y`. A creator who may no longer read at the site at all gets a FAILED job.
  Downloading a file with PII asks for PII permission again (SPEC §10).
- Streaming: participants are read in keyset pages (site, status, ID key: one index range each page),
  each page in its own short read transaction, and the CSV goes to the database a chunk at a time, each
  chunk with the job's fenced checkpoint. Memory does not grow with the site.
- "Snapshot": no transaction spans the whole extract (none may outlive the lease). Every participant that
  is available at the site from the job's start to its end is in the file exactly once; one added, removed
  or restored while it runs is in it if the reading had not yet passed its ID.
- A job taken over by another worker starts again from the first participant (its chunks are replaced);
  cancel stops it after the current chunk, and a cancelled or failed extract keeps no file.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.models import User
from roster.auth.permissions import Action, study_access
from roster.bulk import queue
from roster.bulk.importer import Stopped, stored_chunks
from roster.bulk.models import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, IN_QUEUE, JOB_TYPE_EXTRACT, Job, UploadChunk
from roster.bulk.queue import Claim, LeaseLost
from roster.bulk.upload import CHUNK_BYTES
from roster.config import Settings
from roster.csvout import CsvWriter
from roster.db import Database, table_of
from roster.errors import Conflict, DomainError
from roster.participants import fields
from roster.participants.models import AVAILABLE, Participant
from roster.studies.models import Site, Study

log = logging.getLogger("roster.extract")

BASE_COLUMNS = ("ParticipantID", "Participant OID", "Status", "Participate Status")
_P = Participant
# The contact fields the file carries (roster.participants.fields): header and column, in the table's order.
_PII = tuple((f.extract, _P.__table__.c[f.column]) for f in fields.CONTACT if f.extract is not None)
PII_COLUMNS = tuple(header for header, _ in _PII)
ACCESS_CODE_COLUMN = "Access Code"
# Participants per keyset page (one short read transaction each).
PAGE_ROWS = 2000

_BASE_FIELDS = (_P.participant_id, _P.oid, _P.status, _P.participate_status)
_PII_FIELDS = tuple(column for _, column in _PII)
_CHUNKS = table_of(UploadChunk)


def file_name(site_oid: str) -> str:
    """The job's `sourceFileName`, also the download's name."""
    return f"participants-{site_oid}.csv"


def enqueue(session: Session, user: User, study: Study, site: Site, include_participate_info: bool) -> Job:
    """The queued job, in the caller's transaction; the worker writes its file."""
    job = queue.new_job(
        type=JOB_TYPE_EXTRACT,
        study_id=study.id,
        site_id=site.id,
        register=False,
        include_participate_info=include_participate_info,
        source_file_name=file_name(site.oid)[:255],
        created_by=user.username,
        created_by_id=user.id,
    )
    session.add(job)
    session.flush()
    return job


def header(pii: bool, access_code: bool) -> tuple[str, ...]:
    return BASE_COLUMNS + (PII_COLUMNS if pii else ()) + ((ACCESS_CODE_COLUMN,) if pii and access_code else ())


@dataclass(frozen=True, slots=True)
class _Columns:
    pii: bool
    access_code: bool

    @property
    def fields(self) -> tuple[Any, ...]:
        return (
            _BASE_FIELDS
            + (_PII_FIELDS if self.pii else ())
            + ((_P.access_code,) if self.pii and self.access_code else ())
        )


def participants(
    db: Database, site_id: int, columns: _Columns, page_rows: int = PAGE_ROWS
) -> Iterator[tuple[Any, ...]]:
    """The site's available participants in ID-key order, one keyset page per short read transaction."""
    query = select(_P.participant_key, *columns.fields).where(_P.site_id == site_id, _P.status == AVAILABLE)
    last: str | None = None
    while True:
        page = query if last is None else query.where(_P.participant_key > last)
        with db.read_sessions() as session, session.begin():
            rows = session.execute(page.order_by(_P.participant_key).limit(page_rows)).all()
        for row in rows:
            yield tuple(row)[1:]
        if len(rows) < page_rows:
            return
        last = rows[-1][0]


def _access(db: Database, job: Job) -> tuple[bool, str | None]:
    """May the creator read PII at the job's site now? The code when it may not even read there."""
    with db.read_sessions() as session, session.begin():
        user = session.get(User, job.created_by_id) if job.created_by_id is not None else None
        if user is None or not user.enabled:
            return False, codes.NO_SUFFICIENT_PRIVILEGES
        access = study_access(session, user, job.study_id)
    if not access.has_role:
        return False, codes.NO_ROLE_SET_UP
    if not access.can(Action.READ, job.site_id):
        return False, codes.NO_SUFFICIENT_PRIVILEGES
    return access.can(Action.READ_PII, job.site_id), None


class Extractor:
    """Runs one claimed extract job; `run()` answers the status it ended in ("" when it was taken from us)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        claim: Claim,
        stop: threading.Event | None = None,
        lost: threading.Event | None = None,
        page_rows: int = PAGE_ROWS,
        chunk_bytes: int = CHUNK_BYTES,
    ):
        self.db = db
        self.settings = settings
        self.claim = claim
        self.stop = stop or threading.Event()
        self.lost = lost or threading.Event()
        self.page_rows = page_rows
        self.chunk_bytes = chunk_bytes

    def run(self) -> str:
        with self.db.read_sessions() as session:
            job = session.get(Job, self.claim.job_id)
            if job is None:
                return ""
            session.expunge(job)
        if self.claim.cancel_requested:
            return self._end(CANCELLED)
        pii, refused = _access(self.db, job)
        if refused is not None:
            log.warning("job %s failed: %s", self.claim.uuid, refused)
            return self._end(FAILED, refused)
        columns = _Columns(pii, job.include_participate_info)
        if self._start(job, columns):
            return self._end(CANCELLED)
        return self._write_all(job, columns)

    def _start(self, job: Job, columns: _Columns) -> bool:
        """Drops what an earlier attempt wrote, counts the participants for `progress`, and notes whether
        the file holds PII. Returns whether a cancel was requested."""
        with self.db.transaction() as session:
            total = session.scalar(
                select(func.count()).select_from(_P).where(_P.site_id == job.site_id, _P.status == AVAILABLE)
            )
            cancel = queue.Checkpoint(
                self.claim, self.settings.job_lease_seconds, processed=0, counts={}, rows_total=total or 0
            ).run(session)
            session.execute(delete(UploadChunk).where(UploadChunk.job_id == job.id))
            session.execute(
                update(Job).where(Job.id == job.id).values(file_pii=columns.pii, upload_size=0, upload_sha256=None)
            )
        return cancel

    def _write_all(self, job: Job, columns: _Columns) -> str:
        out = CsvWriter()
        out.row(header(columns.pii, columns.access_code))
        digest = hashlib.sha256()
        written = seq = size = 0
        for cells in participants(self.db, job.site_id, columns, self.page_rows):
            out.row(cells)
            written += 1
            if out.pending() >= self.chunk_bytes:
                data = out.take()
                if self._store(job, seq, data, written):
                    return self._end(CANCELLED)
                digest.update(data)
                seq, size = seq + 1, size + len(data)
        data = out.take()
        digest.update(data)
        if self._store(job, seq, data, written, size=size + len(data), sha256=digest.hexdigest()):
            return self._end(CANCELLED)
        return COMPLETED if queue.finish(self.db, self.claim, COMPLETED) else ""

    def _store(
        self, job: Job, seq: int, data: bytes, written: int, *, size: int | None = None, sha256: str | None = None
    ) -> bool:
        """One chunk with the fenced checkpoint (the last one also with the file's size and digest).
        Returns whether a cancel was requested."""
        if self.lost.is_set():
            raise LeaseLost(self.claim.uuid)
        if self.stop.is_set():
            raise Stopped
        with self.db.transaction() as session:
            cancel = queue.Checkpoint(self.claim, self.settings.job_lease_seconds, processed=written, counts={}).run(
                session
            )
            session.execute(_CHUNKS.insert().values(job_id=job.id, seq=seq, data=data))
            if size is not None:
                session.execute(update(Job).where(Job.id == job.id).values(upload_size=size, upload_sha256=sha256))
        return cancel

    def _end(self, status: str, error: str | None = None) -> str:
        """CANCELLED or FAILED: a partial file is of no use to anyone, so it goes with the end."""
        with self.db.transaction() as session:
            if not queue.finish_in(session, self.claim, status, error):
                return ""
            session.execute(delete(UploadChunk).where(UploadChunk.job_id == self.claim.job_id))
        return status


def extract_file(session: Session, user: User, job: Job) -> None:
    """Checks that the extract's file may be downloaded by `user` (who can see the job) now: it exists,
    and it holds PII only for a role that may read PII at the job's site now (SPEC §10)."""
    if job.status in (IN_QUEUE, IN_PROGRESS):
        raise Conflict(codes.JOB_NOT_FINISHED, {"uuid": job.uuid, "status": job.status})
    if job.status != COMPLETED:
        raise Conflict(codes.EXTRACT_NOT_COMPLETED, {"uuid": job.uuid, "status": job.status})
    if job.upload_purged_at is not None:
        raise DomainError(codes.FILE_EXPIRED, 410, {"uuid": job.uuid})
    if job.file_pii:
        study_access(session, user, job.study_id).require(Action.READ_PII, job.site_id)


def stored_file(db: Database, job_id: int) -> Iterator[bytes]:
    """The stored file, one chunk per short read transaction: a slow download holds no snapshot."""
    return stored_chunks(db, job_id)
