"""Reverting a bulk job (SPEC §11.2): the request that queues a revert job, and the runner that undoes
the reverted job's `created` and `updated` rows in its row order.

Resumable as the importer is: each batch is one transaction holding the study lock, the participants'
changes, the batch's log entries and the fenced checkpoint (roster.bulk.queue.Checkpoint). A reclaimed
revert starts after the last row its own log holds, so no row is undone twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.models import User
from roster.auth.permissions import Action, study_access
from roster.bulk import queue
from roster.bulk.importer import Stopped
from roster.bulk.jobs_service import can_see, find_job
from roster.bulk.models import (
    CANCELLED,
    COMPLETED,
    FINISHED,
    JOB_TYPE_BULK_ADD,
    JOB_TYPE_REVERT,
    Job,
    LogEntry,
)
from roster.bulk.queue import Claim, LeaseLost
from roster.config import Settings
from roster.db import Database, table_of
from roster.errors import Conflict, NotFound
from roster.participants import undo, writer

log = logging.getLogger("roster.revert")

CREATED, UPDATED, DELETED, RESTORED, FAILED = "created", "updated", "deleted", "restored", "failed"
_UNDONE = (CREATED, UPDATED)
_LOG = table_of(LogEntry)


# ------------------------------------------------------------------------------------------ the request


def queue_revert(session: Session, user: User, value: str) -> tuple[Job, str, str]:
    """Queues the revert of the job `value` in the request's transaction; returns it with its OIDs."""
    found = find_job(session, value)
    if found is None:
        raise NotFound(codes.JOB_NOT_FOUND, {"uuid": value})
    access = study_access(session, user, found[0].study_id)
    if not (access.has_role or can_see(session, user, found[0])):
        raise NotFound(codes.JOB_NOT_FOUND, {"uuid": value})
    job, study_oid, site_oid = found
    access.require(Action.WRITE, job.site_id)
    if job.status not in FINISHED:
        raise Conflict(codes.JOB_NOT_FINISHED, {"uuid": job.uuid, "status": job.status})
    taken = session.scalar(select(Job.id).where(Job.revert_of == job.uuid))
    if job.type != JOB_TYPE_BULK_ADD or job.dry_run or taken is not None:
        raise Conflict(codes.JOB_NOT_REVERTIBLE, {"uuid": job.uuid})
    revert = queue.new_job(
        type=JOB_TYPE_REVERT,
        revert_of=job.uuid,
        study_id=job.study_id,
        site_id=job.site_id,
        register=False,
        source_file_name=job.source_file_name,
        created_by=user.username,
        created_by_id=user.id,
        dry_run=False,
    )
    try:
        with session.begin_nested():
            session.add(revert)
            session.flush()
    except IntegrityError:  # a concurrent request queued its revert first (jobs.revert_of is unique)
        raise Conflict(codes.JOB_NOT_REVERTIBLE, {"uuid": job.uuid}) from None
    return revert, study_oid, site_oid


# ------------------------------------------------------------------------------------------- the runner


class Reverter:
    """Runs one claimed revert job; the same interface as roster.bulk.importer.Importer."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        claim: Claim,
        stop: threading.Event | None = None,
        lost: threading.Event | None = None,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.db, self.settings, self.claim = db, settings, claim
        # Called inside each batch's transaction, after its checkpoint: a seam for tests that stop a worker there.
        self.on_batch = on_batch
        self.stop = stop or threading.Event()
        self.lost = lost or threading.Event()

    def run(self) -> str:
        with self.db.read_sessions() as session:
            job = session.get(Job, self.claim.job_id)
            target = session.scalar(select(Job.id).where(Job.uuid == job.revert_of)) if job else None
            if job is not None:
                session.expunge(job)
        if job is None:
            return ""
        if self.claim.cancel_requested:
            return CANCELLED if queue.cancel(self.db, self.claim) else ""
        self.job, self.target = job, target
        if self.claim.rows_total is None:
            with self.db.transaction() as session:
                rows = self._count(session)
                cancel = queue.Checkpoint(
                    self.claim, self.settings.job_lease_seconds, processed=0, counts={}, rows_total=rows
                ).run(session)
            if cancel:
                return CANCELLED if queue.cancel(self.db, self.claim) else ""
        processed = self.claim.processed
        while True:
            if self.lost.is_set():
                raise LeaseLost(self.claim.uuid)
            if self.stop.is_set():
                raise Stopped
            with self.db.transaction() as session:
                done, cancel = self._batch(session, processed)
            if done is None:
                return COMPLETED if queue.finish(self.db, self.claim, COMPLETED) else ""
            processed = done
            if cancel:
                return CANCELLED if queue.cancel(self.db, self.claim) else ""

    def _count(self, session: Session) -> int:
        if self.target is None:  # the reverted job was deleted: nothing to read back
            return 0
        return (
            session.scalar(
                select(func.count()).select_from(_LOG).where(_LOG.c.job_id == self.target, _LOG.c.outcome.in_(_UNDONE))
            )
            or 0
        )

    def _batch(self, session: Session, processed: int) -> tuple[int | None, bool]:
        """One batch in the caller's transaction: returns the new checkpoint (None when nothing was left)
        and whether a cancel was requested."""
        writer.lock_study(session, self.job.study_id)
        if self.target is None:
            return None, False
        last = session.scalar(select(func.max(_LOG.c.row)).where(_LOG.c.job_id == self.job.id)) or 0
        rows = session.execute(
            select(_LOG.c.row, _LOG.c.line, _LOG.c.participant_id, _LOG.c.participant_oid, _LOG.c.outcome)
            .where(_LOG.c.job_id == self.target, _LOG.c.outcome.in_(_UNDONE), _LOG.c.row > last)
            .order_by(_LOG.c.row)
            .limit(self.settings.batch_size)
        ).all()
        if not rows:
            return None, False
        counts = {DELETED: 0, RESTORED: 0, FAILED: 0}
        entries = []
        for r in rows:
            outcome, status, errors = self._undo(session, r.participant_id, r.outcome)
            counts[outcome] += 1
            entries.append(
                {
                    "job_id": self.job.id,
                    "row": r.row,
                    "line": r.line,
                    "participant_id": r.participant_id,
                    "participant_key": None,
                    "participant_oid": r.participant_oid,
                    "outcome": outcome,
                    "participate_status": status,
                    "errors": errors,
                    "cells": None,
                }
            )
        session.execute(insert(_LOG), entries)
        processed += len(rows)
        cancel = queue.Checkpoint(self.claim, self.settings.job_lease_seconds, processed=processed, counts=counts).run(
            session
        )
        if self.on_batch is not None:
            self.on_batch(processed)
        return processed, cancel

    def _undo(
        self, session: Session, participant_id: str | None, outcome: str
    ) -> tuple[str, str | None, list[dict[str, str | None]]]:
        source = self.job.revert_of or ""
        found = undo.trail(session, self.job.study_id, participant_id, source) if participant_id else None
        if found is None or found.changed_since:
            status = found.participant.participate_status if found else None
            return (
                FAILED,
                status,
                [
                    {
                        "code": codes.CHANGED_SINCE_JOB,
                        "column": None,
                        "message": codes.message_for(codes.CHANGED_SINCE_JOB),
                    }
                ],
            )
        if outcome == CREATED:
            undo.delete_participant(session, found.participant, self.job.created_by, self.job.uuid)
            return DELETED, None, []
        return RESTORED, undo.restore_values(session, found, self.job.created_by, self.job.uuid), []
