"""The sink that sends a batch to the SQLite writer process (roster.bulk.writer_process), so that
SQLite's work runs on a second core while the worker plans the next batch.

The request is the plan as steps, built in the planning thread (`prepare`): the study lock and its checks
(the revision after the plan's, the settings it was decided with, planned ids still free), the plan's
statements, its log entries and the fenced checkpoint. When a check fails there (STALE), or a unique
constraint does (CONFLICT: an access code drawn meanwhile by another study), the process rolls back and
the batch is written in the worker instead, decided again under the lock (InlineSink).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from roster.bulk import writer_process
from roster.bulk.inline_sink import InlineSink
from roster.bulk.planner import LOG, LOG_COLUMNS, BatchPlan
from roster.bulk.queue import LeaseLost
from roster.bulk.sink import BatchOutcome, RunningJob, retrying
from roster.bulk.writer_process import ROW, Step, WriterProcess
from roster.fastsql import Bulk, bulk_for
from roster.participants import batch, writer


class WriterProcessSink:
    overlaps = True
    decides = False

    def __init__(self, job: RunningJob, process: WriterProcess, inline: InlineSink) -> None:
        self.job, self.process, self.inline = job, process, inline

    def prepare(self, plan: BatchPlan, reads: Session) -> None:
        # Encoded here, so that the writer thread only sends it and waits.
        job = self.job
        bulk = bulk_for(reads)
        assert plan.entries is not None and plan.counts is not None and job.db.sqlite_file is not None
        assert plan.batch is not None
        checkpoint = job.checkpoint(plan.last_row, plan.counts).statement(job.db.dialect)
        steps = [
            *planned_steps(bulk, plan.batch, job.study.id, job.site.id),
            *(
                (sql, params, None)
                for sql, params in bulk.inserts(LOG, LOG_COLUMNS, plan.entries, {"job_id": job.job.id})
            ),
            (*bulk.driver(checkpoint), ROW),
        ]
        plan.request = WriterProcess.encode(job.db.sqlite_file, steps)

    def write(self, plan: BatchPlan) -> BatchOutcome:
        return retrying(self.job, lambda: self._write_once(plan))

    def _write_once(self, plan: BatchPlan) -> BatchOutcome:
        if plan.request is not None:
            request, plan.request = plan.request, None
            outcome, detail = self.process.call(request, timeout=self.job.settings.job_lease_seconds)
            if outcome == writer_process.WRITTEN:
                cancel = self.job.checkpoint(plan.last_row, {}).cancel_requested(detail[0])
                return BatchOutcome(cancel, False, plan.last_row)
            if outcome == writer_process.MISSING:  # the checkpoint's fence: the job is no longer ours
                raise LeaseLost(self.job.claim.uuid)
            # STALE or CONFLICT: rolled back there; written here, decided again under the lock.
        return self.inline.write_once(plan)


def planned_steps(bulk: Bulk, plan: writer.Plan, study_id: int, site_id: int) -> list[Step]:
    """writer.write_planned's fast way as writer-process steps: the study lock and the same checks, then
    the plan's statements. When a check fails there, the worker runs write_planned itself, which decides
    the batch again under the lock (or stops the job, for a study or site locked meanwhile). The plan
    must not be stale."""
    study_settings, site_settings = plan.settings
    steps: list[Step] = [
        (*bulk.driver(writer.lock_statement(study_id)), (plan.base + 1, *study_settings)),
        (*bulk.driver(writer.site_settings_statement(site_id)), site_settings),
    ]
    if not plan.records:
        return steps
    decision = plan.decision
    assert decision is not None, "a plan that is not stale has its decision"
    ids_check = batch.ids_free_check(decision, bulk)
    if ids_check is not None:
        steps.append((*ids_check, (1,)))
    return steps + [(sql, params, None) for sql, params in batch.statements(decision, bulk, plan.statements)]
