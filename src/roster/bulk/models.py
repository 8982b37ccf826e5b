from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from roster.db import Base, UTCDateTime, utcnow

JOB_TYPE_BULK_ADD = "BULK_ADD_PARTICIPANTS"
JOB_TYPE_EXTRACT = "EXTRACT_PARTICIPANTS"
JOB_TYPE_REVERT = "REVERT_BULK_ADD_PARTICIPANTS"
IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
FINISHED = (COMPLETED, FAILED, CANCELLED)


class Job(Base):
    """A bulk job; the row is also the queue entry that workers claim (SPEC §9)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "id"),
        Index("ix_jobs_study_created", "study_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(40), default=JOB_TYPE_BULK_ADD)
    status: Mapped[str] = mapped_column(String(20), default=IN_QUEUE)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    source_file_name: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    date_created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    date_started: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    date_completed: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Counts; `processed` is also the checkpoint: data rows whose batch has committed.
    rows_total: Mapped[int | None] = mapped_column(Integer)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    restored: Mapped[int] = mapped_column(Integer, default=0)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # A revert job: the reverted job's UUID. Unique: a job is reverted at most once (migration 0009).
    revert_of: Mapped[str | None] = mapped_column(String(36), unique=True)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(String(80))
    # Queue state
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Stored upload
    upload_size: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes; ROSTER_MAX_UPLOAD_BYTES may pass 2 GiB
    upload_sha256: Mapped[str | None] = mapped_column(String(64))
    # Set when retention deleted the stored upload (ROSTER_UPLOAD_RETENTION_DAYS): failedRows answers 410.
    upload_purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Extract jobs (roster.bulk.extract): the request's includeParticipateInfo, and whether the file the
    # worker wrote (stored as the job's upload chunks) holds personal data.
    include_participate_info: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    file_pii: Mapped[bool | None] = mapped_column(Boolean)


class UploadChunk(Base):
    """The upload, stored in the database in order so any worker on any machine can stream it."""

    __tablename__ = "upload_chunks"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LogEntry(Base):
    """One per data row of the upload: the bulk-actions log."""

    __tablename__ = "job_log_entries"
    __table_args__ = (
        # (job_id, outcome, row): the outcome-filtered log and failedRows read in row order without a sort.
        Index("ix_job_log_entries_job_outcome", "job_id", "outcome", "row"),
        # The in-file duplicate check asks "did an earlier row of this job have this ID?" for the keys its
        # filter cannot rule out (roster.bulk.keyfilter), or all of a resumed job's. Key
        # first: the lookup must go by key whatever the planner believes about a new job's row count.
        Index("ix_job_log_entries_key_job", "participant_key", "job_id"),
        # SQLite: the table itself is the (job_id, row) tree; a rowid would be one more insert per row.
        {"sqlite_with_rowid": False},
    )

    # Keyed by (job, row): a surrogate id would cost every logged row an index entry and a sequence call.
    # No foreign key: a per-row check that locks the job row, for a guarantee the fenced batch commit and
    # delete_job already give (migration 0003).
    job_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    row: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    line: Mapped[int] = mapped_column(Integer)
    participant_id: Mapped[str | None] = mapped_column(String(255))
    participant_oid: Mapped[str | None] = mapped_column(String(80))
    # The row's ParticipantID cell as written, casefolded (a digest when very long): in-file duplicates.
    participant_key: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(12))
    participate_status: Mapped[str | None] = mapped_column(String(20))
    # [{"code", "column", "message"}, ...]
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The row's own cells, for failedRows (kept for failed rows only).
    cells: Mapped[list[str] | None] = mapped_column(JSON)


class DryRunCreation(Base):
    """A participant a dry run (SPEC §11.1) would have created, in a study that generates IDs: its later
    batches must meet it as the real import would (a later row may name a generated ID; the generator skips
    IDs taken before), and the database does not hold it. Written with the batch's log entries and checkpoint,
    so a resumed dry run finds exactly its earlier batches' creations; deleted when the dry run ends
    (roster.bulk.dry_run) or with its job."""

    __tablename__ = "dry_run_creations"
    # Key first, job second, like the log's key index: looked up by key with the job as scope (roster.fastsql).
    # Deleting a job's rows reads the table, which holds only the rows of dry runs not yet ended.
    __table_args__ = ({"sqlite_with_rowid": False},)

    participant_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    job_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    participant_id: Mapped[str] = mapped_column(String(30))
    contact_values: Mapped[str] = mapped_column(Text)  # JSON: the contact columns as the creation sets them


class WorkerHeartbeat(Base):
    """A running worker process (`roster worker`, or `roster serve` with embedded workers): one row each,
    renewed every third of the job lease; its row is deleted when it stops cleanly (SPEC §13)."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(100), index=True)
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(40))
    threads: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    # UUIDs of the jobs its threads run now (job UUIDs only: no personal data).
    current_jobs: Mapped[list[str]] = mapped_column(JSON, default=list)
