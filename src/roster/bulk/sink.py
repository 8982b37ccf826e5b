"""The seam where a planned batch is written (docs/bulk.md): `BatchSink.write(plan) -> BatchOutcome`.

A sink writes one planned batch in one transaction — the participants, the batch's log entries and the
fenced checkpoint — or nothing at all. roster.bulk.sinks chooses the sink for a job; the importer only
plans batches and hands them over. Tests inject faults by wrapping the chosen sink (no private patching).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from roster.bulk.queue import Checkpoint, Claim, LeaseLost
from roster.config import Settings
from roster.db import Database, is_busy

if TYPE_CHECKING:
    from roster.bulk.models import Job
    from roster.bulk.planner import BatchPlan
    from roster.studies.models import Site, Study

log = logging.getLogger("roster.importer")

_BUSY_PAUSE, _BUSY_PAUSE_MAX = 0.1, 2.0  # seconds between tries of a batch that found the database busy


class Stopped(Exception):
    """The worker is shutting down: the job goes back to the queue after the current batch."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    cancel: bool  # the checkpoint found a cancel requested
    redone: bool  # the plan was out of date and the batch was decided again under the study lock
    processed: int  # the job's checkpoint after this batch (its last row)


@dataclass(slots=True)
class RunningJob:
    """What a sink needs of the job it writes for: where, under which claim, and when to stop."""

    db: Database
    settings: Settings
    claim: Claim
    job: Job
    study: Study
    site: Site
    stop: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)

    def checkpoint(self, processed: int, counts: Mapping[str, int]) -> Checkpoint:
        """The fence of the batch that ends at row `processed` (roster.bulk.queue)."""
        return Checkpoint(self.claim, self.settings.job_lease_seconds, processed, counts)

    def check_stop(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(self.claim.uuid)
        if self.stop.is_set():
            raise Stopped


class BatchSink(Protocol):
    # Whether `write` may run in a writer thread while the importer plans the next batch: only where the
    # database's work runs outside this process's GIL (PostgreSQL's server, the SQLite writer process).
    overlaps: bool
    # Whether `write` decides the batch itself, under the study lock (a dry run): the planner then only
    # reads, checks and keys the rows, and leaves `BatchPlan.batch` empty.
    decides: bool

    def prepare(self, plan: BatchPlan, reads: Session) -> None:
        """In the planning thread, with the plan's snapshot session: work a sink can do ahead (e.g. encode
        a request). Called for plans that are not stale."""

    def write(self, plan: BatchPlan) -> BatchOutcome:
        """Writes the batch with its log entries and checkpoint in one transaction, or raises having
        written nothing (LeaseLost when the checkpoint's fence finds the job no longer ours)."""


def retrying(job: RunningJob, attempt: Callable[[], BatchOutcome]) -> BatchOutcome:
    """`attempt` tried again while the database is busy (a lock held elsewhere, e.g. by a frozen worker
    until the server ends its transaction): a wait is not a failed attempt."""
    pause = _BUSY_PAUSE
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not is_busy(exc):
                raise
            log.info(
                "job %s: database busy (%s), the batch is tried again",
                job.claim.uuid,
                type(exc.__cause__ or exc).__name__,
            )
        job.check_stop()
        time.sleep(pause)
        pause = min(pause * 2, _BUSY_PAUSE_MAX)
