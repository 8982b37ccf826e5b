"""Runs one claimed bulk job (SPEC §5, §9): reads the stored upload, applies it batch by batch in file
order, and logs one entry per data row (docs/bulk.md).

Each batch is planned (roster.bulk.planner: field rules, the in-file duplicate check, the participant
writer's decisions, the log entries) and handed to the job's sink (roster.bulk.sink), which writes it with
its log and the fenced checkpoint in one transaction, or not at all. A reclaimed job skips the rows at or
below the checkpoint, so every row is applied and logged exactly once however often workers die.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from sqlalchemy import select

from roster import codes
from roster.bulk import queue
from roster.bulk.csvreader import Header
from roster.bulk.models import CANCELLED, COMPLETED, FAILED, Job, UploadChunk
from roster.bulk.planner import BatchPlan, Planner
from roster.bulk.queue import Claim, LeaseLost
from roster.bulk.rows import Row, batches
from roster.bulk.sink import BatchOutcome, BatchSink, RunningJob, Stopped
from roster.bulk.sinks import SinkFactory, open_sink
from roster.bulk.source import read_upload
from roster.config import Settings
from roster.db import Database, table_of
from roster.errors import DomainError
from roster.studies.models import Site, Study
from roster.studies.service import require_available

log = logging.getLogger("roster.importer")

_CHUNKS = table_of(UploadChunk)
_UNAVAILABLE = (codes.STUDY_NOT_AVAILABLE, codes.SITE_NOT_AVAILABLE)
__all__ = ["Importer", "Stopped", "UploadUnreadable", "stored_chunks"]
_P = ParamSpec("_P")
_T = TypeVar("_T")


class UploadUnreadable(Exception):
    """The stored upload does not match what was accepted (size, digest) or cannot be parsed."""


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
        sinks: SinkFactory = open_sink,
    ):
        self.db = db
        self.settings = settings
        self.claim = claim
        self.stop = stop or threading.Event()
        self.lost = lost or threading.Event()
        self.sinks = sinks
        self.processed = claim.processed

    def run(self) -> str:
        """Runs the job to its end; returns the status it ended in (or "" when it was taken from us)."""
        with self.db.read_sessions() as session:
            job = session.get(Job, self.claim.job_id)
            if job is None:
                return ""
            study = session.get(Study, job.study_id)
            site = session.get(Site, job.site_id)
            session.expunge_all()
        assert study is not None and site is not None
        self.job, self.study, self.site = job, study, site
        if self.claim.cancel_requested:
            return self._cancelled()
        try:
            # Checked again at every batch, under the study lock (participants.writer).
            require_available(study, site)
            if self.claim.rows_total is None and self._verify_and_count():
                # Cancelled while the first pass ran: no batch has started, so none is applied.
                return self._cancelled()
            return self._apply_all(
                RunningJob(self.db, self.settings, self.claim, job, study, site, self.stop, self.lost)
            )
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
            checkpoint = queue.Checkpoint(
                self.claim, self.settings.job_lease_seconds, processed=self.processed, counts={}, rows_total=rows
            )
            return checkpoint.run(session)

    def _check_stop(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(self.claim.uuid)
        if self.stop.is_set():
            raise Stopped

    def _apply_all(self, running: RunningJob) -> str:
        """Plan → sink.write, batch after batch. A sink that `overlaps` writes batch N in a writer thread
        while batch N+1 is planned here (from a snapshot plus batch N's plan); a plan the sink had to
        decide again makes the next plan, which started from it, be made again."""
        header, batches = self._reading()
        with self.sinks(running) as sink, _writing(sink) as writing:
            planner = Planner(running, header, sink)
            pending: Future[BatchOutcome] | None = None
            previous: BatchPlan | None = None
            try:
                for rows in batches:
                    plan = planner.plan(rows, previous)
                    if pending is not None:
                        written, pending = pending, None
                        outcome = self._landed(written.result())
                        if outcome.cancel:
                            return self._cancelled()
                        running.check_stop()
                        if outcome.redone:
                            plan = planner.plan(rows, None)
                    pending = writing.submit(sink.write, plan)
                    previous = plan
                if pending is not None:
                    written, pending = pending, None
                    if self._landed(written.result()).cancel:
                        return self._cancelled()
            except BaseException:
                # Reading or planning failed while a batch was being written: that batch's outcome still
                # counts. A cancel it saw wins; its own failure is logged, and the planner's is raised.
                if pending is not None and self._cancel_seen(pending):
                    return self._cancelled()
                raise
        return COMPLETED if queue.finish(self.db, self.claim, COMPLETED) else ""

    def _landed(self, outcome: BatchOutcome) -> BatchOutcome:
        self.processed = outcome.processed
        return outcome

    def _cancelled(self) -> str:
        return CANCELLED if queue.cancel(self.db, self.claim) else ""

    def _cancel_seen(self, pending: Future[BatchOutcome]) -> bool:
        try:
            return pending.result().cancel
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


def _readable(rows: Iterator[list[Row]]) -> Iterator[list[Row]]:
    """The reader's DomainError (bytes that are not a readable CSV) as the job's UploadUnreadable."""
    try:
        yield from rows
    except DomainError:
        raise UploadUnreadable from None


class _Now(Executor):
    """Runs what is submitted at once, in the caller's thread (a sink that does not overlap)."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        future: Future[_T] = Future()
        future.set_result(fn(*args, **kwargs))  # a failure is raised here, before the next batch is planned
        return future


def _writing(sink: BatchSink) -> Executor:
    return ThreadPoolExecutor(1, thread_name_prefix="roster-batch-writer") if sink.overlaps else _Now()
