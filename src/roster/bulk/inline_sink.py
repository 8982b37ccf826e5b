"""The sink that writes a batch in the worker's own transaction (roster.bulk.sink). On PostgreSQL it may
run in a writer thread beside the planner (`overlaps`): the server works while the thread waits without
the GIL. It is also the fallback of the SQLite writer process when a plan is out of date there."""

from __future__ import annotations

from sqlalchemy.orm import Session

from roster.bulk.planner import LOG, LOG_COLUMNS, BatchPlan, log_entries
from roster.bulk.sink import BatchOutcome, RunningJob, retrying
from roster.fastsql import bulk_for
from roster.participants import writer


class InlineSink:
    decides = False

    def __init__(self, job: RunningJob, *, overlaps: bool) -> None:
        self.job = job
        self.overlaps = overlaps

    def prepare(self, plan: BatchPlan, reads: Session) -> None:
        pass

    def write(self, plan: BatchPlan) -> BatchOutcome:
        return retrying(self.job, lambda: self.write_once(plan))

    def write_once(self, plan: BatchPlan) -> BatchOutcome:
        job = self.job
        last = plan.last_row
        # A batch lands with its checkpoint or not at all, so a batch lost in a crash of the machine is
        # simply done again: its commit need not wait for the disk (the job's end does, as usual).
        assert plan.batch is not None
        with job.db.transaction(relaxed=True) as session:
            results, redone = writer.write_planned(session, plan.batch, job.study, job.site)
            if redone or plan.entries is None:
                plan.entries, plan.counts = log_entries(plan, results, bulk_for(session))
            cancel = log_and_checkpoint(session, job, plan)
        return BatchOutcome(cancel, redone, last)


def log_and_checkpoint(session: Session, job: RunningJob, plan: BatchPlan) -> bool:
    """The batch's log entries and the job's fenced checkpoint, in the batch's transaction. Returns whether
    a cancel was requested."""
    assert plan.entries is not None and plan.counts is not None
    bulk_for(session).insert(LOG, LOG_COLUMNS, plan.entries, {"job_id": job.job.id})
    return job.checkpoint(plan.last_row, plan.counts).run(session)
