"""Runs one claimed bulk job (SPEC §5, §9): reads the stored upload, applies it batch by batch in file
order, and logs one entry per data row.

Each batch is one transaction: field rules (outside it, they need no database), the in-file duplicate
check, the participant writer, the batch's log entries, and the fenced checkpoint on the job row. A batch
either lands whole, with its log and the checkpoint, or not at all; a reclaimed job skips the rows at or
below the checkpoint, so every row is applied and logged exactly once however often workers die.

The in-file duplicate check asks the job's own log entries (indexed by the casefolded ID) whether an
earlier row carried the same ID, instead of keeping a set of every ID in memory: the worker's memory
stays the same for 10k rows and for 1M, and a resumed job sees exactly what the first worker saw. A
fixed-size filter (roster.bulk.keyfilter) spares the question for IDs that cannot have occurred before.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from roster import codes
from roster.bulk import queue, writer_process
from roster.bulk.csvreader import ID_COLUMN, Header
from roster.bulk.keyfilter import KeyFilter
from roster.bulk.models import CANCELLED, COMPLETED, FAILED, Job, LogEntry, UploadChunk
from roster.bulk.queue import Claim, LeaseLost
from roster.bulk.rows import Row, batches
from roster.bulk.source import read_upload
from roster.config import Settings
from roster.db import Database, is_busy, table_of
from roster.errors import DomainError
from roster.fastsql import Bulk, Payload
from roster.participants import writer
from roster.participants.batch import RecordLike
from roster.participants.rules import RuleError, rule_error
from roster.studies.models import Site, Study
from roster.studies.service import require_available

log = logging.getLogger("roster.importer")

_LOG_COLUMNS = (
    "row",
    "line",
    "participant_id",
    "participant_key",
    "participant_oid",
    "outcome",
    "participate_status",
    "errors",
    "cells",
)
_CHUNKS = table_of(UploadChunk)
_LOG = table_of(LogEntry)
_MAX_LOGGED_ID = 255
_UNAVAILABLE = (codes.STUDY_NOT_AVAILABLE, codes.SITE_NOT_AVAILABLE)
_BUSY_PAUSE, _BUSY_PAUSE_MAX = 0.1, 2.0  # seconds between tries of a batch that found the database busy


class UploadUnreadable(Exception):
    """The stored upload does not match what was accepted (size, digest) or cannot be parsed."""


class Stopped(Exception):
    """The worker is shutting down: the job goes back to the queue after the current batch."""


def stored_chunks(db: Database, job_id: int) -> Iterator[bytes]:
    """The upload, one chunk per short read transaction (no read transaction stays open across batches)."""
    seq = 0
    while True:
        with db.read_sessions() as session:
            data = session.scalar(select(_CHUNKS.c.data).where(_CHUNKS.c.job_id == job_id, _CHUNKS.c.seq == seq))
        if data is None:
            return
        yield bytes(data)
        seq += 1


class Importer:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        claim: Claim,
        stop: threading.Event | None = None,
        lost: threading.Event | None = None,
    ):
        self.db = db
        self.settings = settings
        self.claim = claim
        self.stop = stop or threading.Event()
        self.lost = lost or threading.Event()
        self.processed = claim.processed
        # The ID keys of the job's earlier rows, when this worker decided all of them (it started the job at
        # its first row): the duplicate check then asks the log only about keys the filter cannot rule out.
        # None (a job resumed from a checkpoint): the log is asked about every key.
        self.seen_filter: KeyFilter | None = KeyFilter() if claim.processed == 0 else None
        self.sqlite_writer: writer_process.WriterProcess | None = None  # SQLite with the overlap: writes the batches

    def run(self) -> str:
        """Runs the job to its end; returns the status it ended in (or "" when it was taken from us)."""
        with self.db.read_sessions() as session:
            job = session.get(Job, self.claim.job_id)
            if job is None:
                return ""
            study = session.get(Study, job.study_id)
            site = session.get(Site, job.site_id)
            session.expunge_all()
        assert study is not None and site is not None  # a job's study and site are foreign keys
        self.job, self.study, self.site = job, study, site
        if self.claim.cancel_requested:
            return self._cancelled()
        try:
            # Checked again at every batch, under the study lock (participants.writer).
            require_available(study, site)
            if self.claim.rows_total is None and self._verify_and_count():
                # Cancelled while the first pass ran: no batch has started, so none is applied.
                return self._cancelled()
            return self._apply_all()
        except UploadUnreadable:
            log.error("job %s failed: stored upload unreadable", self.claim.uuid)
            return FAILED if queue.finish(self.db, self.claim, FAILED, codes.JOB_UPLOAD_UNREADABLE) else ""
        except DomainError as exc:
            if exc.code not in _UNAVAILABLE:
                raise
            # Locked after the upload: the batches written before stay, the rest of the file is not applied.
            log.warning("job %s failed: %s", self.claim.uuid, exc.code)
            return FAILED if queue.finish(self.db, self.claim, FAILED, exc.code) else ""

    def _verify_and_count(self) -> bool:
        """A first pass: the stored bytes are what was accepted, and the row count gives `progress`.
        Returns whether a cancel was requested meanwhile."""
        digest = hashlib.sha256()
        size = 0

        def hashed() -> Iterator[bytes]:
            nonlocal size
            for chunk in stored_chunks(self.db, self.claim.job_id):
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        rows = 0
        try:
            _header, entries = read_upload(hashed())
            for _ in entries:
                rows += 1
                if not rows & 0xFFFF:
                    self._check_stop()
        except DomainError:
            raise UploadUnreadable from None
        if size != self.job.upload_size or (self.job.upload_sha256 and digest.hexdigest() != self.job.upload_sha256):
            raise UploadUnreadable
        with self.db.transaction() as session:
            return queue.checkpoint(
                session,
                self.claim,
                self.settings.job_lease_seconds,
                processed=self.processed,
                counts={},
                rows_total=rows,
            )

    def _check_stop(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(self.claim.uuid)
        if self.stop.is_set():
            raise Stopped

    def _apply_all(self) -> str:
        """Batch N+1 is decided (read from a snapshot, in this thread) while batch N is written (in a writer
        thread, which waits for the database without holding the GIL): the database's work and ours overlap.
        On PostgreSQL the server writes; on SQLite, a writer process (roster.bulk.writer_process). A batch
        decided from a state that someone else changed meanwhile is decided again under the lock."""
        header, batches = self._reading()
        with (
            self._writer_process() as self.sqlite_writer,
            ThreadPoolExecutor(1, thread_name_prefix="roster-batch-writer") as writer_thread,
        ):
            overlap = self.settings.bulk_overlap and (self.db.dialect == "postgresql" or self.sqlite_writer is not None)
            pending: Future[tuple[bool, bool]] | None = None
            previous: _Plan | None = None
            try:
                for rows in batches:
                    plan = self._plan(header, rows, previous)
                    if pending is not None:
                        written, pending = pending, None
                        cancel, redone = written.result()
                        if cancel:
                            return self._cancelled()
                        self._check_stop()
                        if redone:
                            # The plan above started from the redone batch's first decisions: decide it again.
                            plan = self._plan(header, rows, None)
                    pending = writer_thread.submit(self._write, plan) if overlap else _done(self._write(plan))
                    previous = plan
                if pending is not None:
                    written, pending = pending, None
                    if written.result()[0]:
                        return self._cancelled()
            except BaseException:
                # Reading or deciding failed while a batch was being written: that batch's outcome still
                # counts. A cancel it saw wins; its own failure is logged, and the planner's is raised.
                if pending is not None and self._cancel_seen(pending):
                    return self._cancelled()
                raise
        return COMPLETED if queue.finish(self.db, self.claim, COMPLETED) else ""

    @contextmanager
    def _writer_process(self) -> Iterator[writer_process.WriterProcess | None]:
        """SQLite with the overlap on: a writer process for this job (None otherwise, or when none can start)."""
        if not self.settings.bulk_overlap or self.db.sqlite_file is None or not writer_process.SUPPORTED:
            yield None
            return
        try:
            with writer_process.leased() as process:
                yield process
        finally:
            self.sqlite_writer = None  # back in the pool, or closed

    def _cancelled(self) -> str:
        return CANCELLED if queue.cancel(self.db, self.claim) else ""

    def _cancel_seen(self, pending: Future[tuple[bool, bool]]) -> bool:
        try:
            return pending.result()[0]
        except BaseException as exc:
            log.warning("job %s: the batch being written failed as well (%s)", self.claim.uuid, type(exc).__name__)
            return False

    def _reading(self) -> tuple[Header, Iterator[list[Row]]]:
        """The header and the batches of rows after the checkpoint, read and checked against the field rules."""
        try:
            header, entries = read_upload(stored_chunks(self.db, self.claim.job_id))
        except DomainError:
            raise UploadUnreadable from None
        return header, _readable(
            batches(
                header,
                entries,
                done=self.processed,
                size=self.settings.batch_size,
                id_method=self.study.participant_id_method,
            )
        )

    def _plan(self, header: Header, rows: list[Row], previous: _Plan | None) -> _Plan:
        """Everything about a batch that needs no lock: the in-file duplicate check, the writer's
        decisions and the log entries, read from one snapshot plus the batch before (`previous`), which
        may still be being written. With a writer process, also the request it will be sent."""
        id_written = header.written[ID_COLUMN]
        job = self.job
        with self.db.read_sessions() as session:
            self.db.snapshot(session)
            bulk = Bulk(session)
            keys = {r.key for r in rows if r.key}
            asked = keys if self.seen_filter is None else self.seen_filter.maybe_seen(keys)
            seen = set()
            if asked:
                with bulk.keyed():
                    seen = {
                        r[0]
                        for r in bulk.by_keys(
                            "t.participant_key", "job_log_entries", "participant_key", asked, scope=("job_id", job.id)
                        )
                    }
            if previous is not None:
                seen |= previous.keys & keys
            records: list[Row] = []
            for r in rows:
                if r.key is not None:
                    r.duplicate = r.key in seen and r.fields is not None
                    seen.add(r.key)
                if not r.errors and not r.duplicate:
                    records.append(r)
            batch = writer.plan_batch(
                session,
                self.study,
                self.site,
                cast(list[RecordLike], records),  # rows that passed the rules carry their fields
                after=previous.batch if previous is not None else None,
                register=job.register,
                username=job.created_by,
                source=job.uuid,
                id_column=id_written,
            )
            plan = _Plan(rows, keys, batch, rule_error(codes.PARTICIPANT_ID_DUPLICATED_IN_FILE, id_written))
            if not batch.stale:
                plan.entries, plan.counts = self._log_entries(plan, batch.results, bulk)
                if self.sqlite_writer is not None:
                    plan.request = self._request(session, plan)
        return plan

    def _request(self, session: Session, plan: _Plan) -> bytes:
        """The batch as the writer process runs it: write_planned's fast way, the log, the checkpoint.
        Encoded here, so that the writer thread only sends it and waits."""
        bulk = Bulk(session)
        assert plan.entries is not None and plan.counts is not None and self.db.sqlite_file is not None
        checkpoint = queue.checkpoint_statement(
            self.db.dialect,
            self.claim,
            self.settings.job_lease_seconds,
            processed=plan.rows[-1].entry.row,
            counts=plan.counts,
        )
        steps = [
            *writer.planned_steps(session, plan.batch, self.study, self.site),
            *(
                (sql, params, None)
                for sql, params in bulk.inserts(_LOG, _LOG_COLUMNS, plan.entries, {"job_id": self.job.id})
            ),
            (*bulk.driver(checkpoint), writer_process.ROW),
        ]
        return writer_process.WriterProcess.encode(self.db.sqlite_file, steps)

    def _write(self, plan: _Plan) -> tuple[bool, bool]:
        """One batch in one transaction, tried again while the database is busy (a lock held elsewhere, e.g.
        by a frozen worker until the server ends its transaction): a wait is not a failed attempt. Returns
        whether a cancel was requested and whether the batch had to be decided again."""
        pause = _BUSY_PAUSE
        while True:
            try:
                return self._write_once(plan)
            except Exception as exc:
                if not is_busy(exc):
                    raise
                log.info(
                    "job %s: database busy (%s), the batch is tried again",
                    self.claim.uuid,
                    type(exc.__cause__ or exc).__name__,
                )
            self._check_stop()
            time.sleep(pause)
            pause = min(pause * 2, _BUSY_PAUSE_MAX)

    def _write_once(self, plan: _Plan) -> tuple[bool, bool]:
        rows = plan.rows
        last = rows[-1].entry.row
        if plan.request is not None:
            request, plan.request = plan.request, None
            assert self.sqlite_writer is not None  # a request is made only for a writer process
            outcome, detail = self.sqlite_writer.call(request, timeout=self.settings.job_lease_seconds)
            if outcome == writer_process.WRITTEN:
                self.processed = last
                return queue.checkpointed(self.claim, detail[0]), False
            if outcome == writer_process.MISSING:  # the checkpoint's fence: the job is no longer ours
                raise LeaseLost(self.claim.uuid)
            # STALE or CONFLICT: rolled back there; written here, decided again under the lock.
        # A batch lands with its checkpoint or not at all, so a batch lost in a crash of the machine is
        # simply done again: its commit need not wait for the disk (the job's end does, as usual).
        with self.db.transaction(relaxed=True) as session:
            bulk = Bulk(session)
            results, redone = writer.write_planned(session, plan.batch, self.study, self.site)
            if redone or plan.entries is None:
                plan.entries, plan.counts = self._log_entries(plan, results, bulk)
            assert plan.counts is not None
            bulk.insert(_LOG, _LOG_COLUMNS, plan.entries, {"job_id": self.job.id})
            cancel = queue.checkpoint(
                session, self.claim, self.settings.job_lease_seconds, processed=last, counts=plan.counts
            )
        self.processed = last
        return cancel, redone

    def _log_entries(self, plan: _Plan, results: Sequence[writer.Result], bulk: Bulk) -> tuple[Payload, dict[str, int]]:
        """The batch's log entries as an insert payload (roster.fastsql), and its counts."""
        duplicate = plan.duplicate
        encode = Bulk.json
        remaining = iter(results)
        counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
        entries = []
        pid: str | None
        for r in plan.rows:
            if r.errors or r.duplicate:
                errors = [*r.errors, duplicate] if r.duplicate else r.errors
                outcome, pid, oid, status = writer.FAILED, r.participant_id, None, None
            else:
                res = next(remaining)
                outcome, pid, oid, status, errors = (
                    res.outcome,
                    res.participant_id,
                    res.participant_oid,
                    res.participate_status,
                    res.errors,
                )
            counts[outcome] += 1
            if outcome == writer.FAILED:
                # failedRows rebuilds the rows to fix from the cells; other rows' cells are not needed.
                logged_errors, cells = encode([e.as_dict() for e in errors]), encode(r.entry.cells)
            else:
                logged_errors, cells = "[]", None
            entries.append(
                (
                    r.entry.row,
                    r.entry.line,
                    pid[:_MAX_LOGGED_ID] if pid else None,
                    r.key,
                    oid,
                    outcome,
                    status,
                    logged_errors,
                    cells,
                )
            )
        return bulk.payload(entries), counts


@dataclass(slots=True)
class _Plan:
    rows: list[Row]
    keys: set[str]  # the rows' ID keys, for the next batch's in-file duplicate check
    batch: writer.Plan
    duplicate: RuleError  # the error of a row whose ID an earlier row had
    entries: Payload | None = None  # the log entries' insert payload
    counts: dict[str, int] | None = None
    request: bytes | None = None  # for the writer process (SQLite), until sent


def _readable(rows: Iterator[list[Row]]) -> Iterator[list[Row]]:
    """The reader's DomainError (bytes that are not a readable CSV) as the job's UploadUnreadable."""
    try:
        yield from rows
    except DomainError:
        raise UploadUnreadable from None


def _done(value: tuple[bool, bool]) -> Future[tuple[bool, bool]]:
    future: Future[tuple[bool, bool]] = Future()
    future.set_result(value)
    return future
