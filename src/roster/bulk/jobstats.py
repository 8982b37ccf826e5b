"""What a worker tells about its jobs (SPEC §13): a start and an end line per attempt, with the job's UUID,
type, counts, seconds and rows/s, and the job metrics; `JobsCollector` reads jobs by status and live
workers from the database at scrape time. UUIDs, types and counts only: rows carry personal data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from roster import metrics
from roster.bulk import heartbeat
from roster.bulk.models import CANCELLED, COMPLETED, FAILED, FINISHED, IN_PROGRESS, IN_QUEUE, Job
from roster.bulk.queue import Claim
from roster.db import Database

log = logging.getLogger("roster.worker")

# A revert job counts deleted and restored rows (SPEC §11.2); the other outcomes are every job type's.
OUTCOMES = ("created", "updated", "unchanged", "failed", "deleted", "restored")
STATUSES = (IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)


@dataclass(frozen=True, slots=True)
class _State:
    type: str
    status: str
    processed: int
    counts: dict[str, int]
    seconds_run: float | None  # first start to end, once finished


def _state(db: Database, job_id: int) -> _State | None:
    with db.read_sessions() as session, session.begin():
        row = session.execute(
            select(
                Job.type,
                Job.status,
                Job.processed,
                Job.created,
                Job.updated,
                Job.unchanged,
                Job.failed,
                Job.deleted,
                Job.restored,
                Job.date_started,
                Job.date_completed,
            ).where(Job.id == job_id)
        ).one_or_none()
    if row is None:
        return None
    seconds = (
        (row.date_completed - row.date_started).total_seconds() if row.date_completed and row.date_started else None
    )
    return _State(row.type, row.status, row.processed, {o: getattr(row, o) for o in OUTCOMES}, seconds)


class JobRun:
    """One attempt at a job, from claim to end: `with JobRun(db, claim): …` logs both lines and counts the
    attempt's rows by outcome. Reading the job row costs two queries per attempt."""

    def __init__(self, db: Database, claim: Claim) -> None:
        self.db = db
        self.claim = claim

    def __enter__(self) -> JobRun:
        self._running = heartbeat.running(self.claim.uuid)
        self._running.__enter__()
        self.started = time.perf_counter()
        self.before = _state(self.db, self.claim.job_id)
        job_type = self.before.type if self.before else "?"
        log.info(
            "job %s started: %s, attempt %d, from row %d",
            self.claim.uuid,
            job_type,
            self.claim.attempts,
            self.claim.processed + 1,
            extra={
                "job": {
                    "uuid": self.claim.uuid,
                    "type": job_type,
                    "attempt": self.claim.attempts,
                    "from_row": self.claim.processed + 1,
                }
            },
        )
        return self

    def __exit__(self, *_exc: object) -> None:
        self._running.__exit__(None, None, None)
        try:
            self._ended(time.perf_counter() - self.started)
        except Exception as exc:  # the job itself is settled; only its end line is lost
            log.warning("job %s: end not recorded (%s)", self.claim.uuid, type(exc).__name__)

    def _ended(self, seconds: float) -> None:
        after = _state(self.db, self.claim.job_id)
        if after is None:
            log.info(
                "job %s ended: deleted while it ran, %.2fs",
                self.claim.uuid,
                seconds,
                extra={"job": {"uuid": self.claim.uuid, "status": "DELETED", "seconds": round(seconds, 3)}},
            )
            return
        before = self.before or _State(after.type, IN_QUEUE, self.claim.processed, dict.fromkeys(OUTCOMES, 0), None)
        rows = max(after.processed - before.processed, 0)
        rate = rows / seconds if seconds > 0 else 0.0
        for outcome in OUTCOMES:
            delta = after.counts[outcome] - before.counts[outcome]
            if delta > 0:
                metrics.BULK_ROWS.labels(outcome).inc(delta)
        if after.status in FINISHED and after.seconds_run is not None:
            metrics.JOB_DURATION.labels(after.type).observe(after.seconds_run)
        c = after.counts
        log.info(
            "job %s ended %s: %s, attempt %d, %d rows in %.2fs (%.0f rows/s); job totals: %d processed, %d created, "
            "%d updated, %d unchanged, %d failed, %d deleted, %d restored",
            self.claim.uuid,
            after.status,
            after.type,
            self.claim.attempts,
            rows,
            seconds,
            rate,
            after.processed,
            c["created"],
            c["updated"],
            c["unchanged"],
            c["failed"],
            c["deleted"],
            c["restored"],
            extra={
                "job": {
                    "uuid": self.claim.uuid,
                    "type": after.type,
                    "status": after.status,
                    "attempt": self.claim.attempts,
                    "rows": rows,
                    "seconds": round(seconds, 3),
                    "rows_per_second": round(rate, 1),
                    "processed": after.processed,
                    **c,
                }
            },
        )


class JobsCollector:
    """`roster_jobs{status}` (jobs in the database by status) and `roster_workers` (live worker processes),
    read when scraped. A database that cannot be reached leaves them out of that scrape."""

    def __init__(self, db: Database, lease_seconds: int) -> None:
        self.db = db
        self.lease_seconds = lease_seconds

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.db.read_sessions() as session, session.begin():
                by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
                workers = heartbeat.live_count(session, self.lease_seconds)
        except Exception as exc:
            log.warning("metrics: jobs not read (%s)", type(exc).__name__)
            return
        jobs = GaugeMetricFamily("roster_jobs", "Jobs in the database by status", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], by_status.get(status, 0))
        yield jobs
        yield GaugeMetricFamily(
            "roster_workers", "Worker processes whose heartbeat is within the job lease", value=workers
        )
