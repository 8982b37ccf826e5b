"""The dry run's sink (SPEC §11.1, roster.bulk.sink): decides each batch as the real import would and
writes only the batch's log entries and the fenced checkpoint — no participant, access code, audit event
or generated ID.

Each batch is decided in its own transaction under the study lock (docs/bulk.md, invariant 1), from the
database as it is then, after what the dry run itself would have done before (`carry`: the batch decided
last, as the real import's plans take the batch before as `after`). Its creations count toward the caps,
the ID counter moves past the IDs it would have generated, and in a study that generates IDs the
participants it would have created stay known, so that a later row naming one finds it as the real
import would. In-file duplicates need nothing: the planner asks the job's log, which a dry run writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from roster.bulk.inline_sink import log_and_checkpoint
from roster.bulk.planner import BatchPlan, log_entries
from roster.bulk.sink import BatchOutcome, RunningJob, retrying
from roster.db import table_of
from roster.fastsql import bulk_for
from roster.participants import writer
from roster.participants.batch import RecordLike
from roster.participants.models import REMOVED, Participant
from roster.studies.service import check_available

_T = table_of(Participant)


class DryRunSink:
    overlaps = False
    decides = True

    def __init__(self, job: RunningJob) -> None:
        self.job = job
        self.carry: writer.Plan | None = None  # the batch decided last, holding what later batches must see
        self.revision: int | None = None  # the study's revision as this sink's last batch left it
        # Rows logged `created` so far (the checkpoint's count when the job was claimed): the participants
        # the dry run would have made, which the database does not hold.
        self.created = job.job.created
        # Only a study that generates IDs lets a later row meet an earlier creation other than as an
        # in-file duplicate (an ID it names may be one generated before; a generated one skips IDs given).
        self.keeps_creations = job.study.participant_id_method == "system"

    def prepare(self, plan: BatchPlan, reads: Session) -> None:
        pass  # nothing is decided ahead: `write` decides under the lock

    def write(self, plan: BatchPlan) -> BatchOutcome:
        return retrying(self.job, lambda: self._write_once(plan))

    def _write_once(self, plan: BatchPlan) -> BatchOutcome:
        job = self.job
        records = plan.records
        batch = None
        with job.db.transaction(relaxed=True) as session:
            row = writer.lock_study(session, job.study.id)
            site_cap, site_status = session.execute(writer.site_settings_statement(job.site.id)).one()
            check_available(job.study.oid, row.status, job.site.oid, site_status)
            results: Sequence[writer.Result] = ()
            if records:
                batch = self._new_batch(plan)
                batch.decide(session, records, row, site_cap, self._after(session, row, plan))
                results = _would_be(records, batch.results)
            plan.entries, plan.counts = log_entries(plan, list(results), bulk_for(session))
            cancel = log_and_checkpoint(session, job, plan)
        # Kept only once committed: a batch tried again is decided again after the same carry.
        if batch is not None:
            self.carry = self._carried(batch, records)
        self.revision = row.revision
        self.created += plan.counts["created"]
        return BatchOutcome(cancel, False, plan.last_row)

    def _new_batch(self, plan: BatchPlan) -> writer.Plan:
        job = self.job.job
        # The duplicate error names the column the file gave the ID in, as the writer's errors do.
        return writer.Plan(job.study_id, job.site_id, job.register, job.created_by, job.uuid, plan.duplicate.column)

    def _after(self, session: Session, row: Row[Any], plan: BatchPlan) -> writer.Plan | None:
        """What the batch is decided after: the carry while nobody else wrote to the study since this sink's
        last batch; otherwise (another writer, or a job resumed by this worker) the carry set on the
        database as it is now, with the dry run's creations added to its counts."""
        carry = self.carry
        if self.revision is not None and row.revision == self.revision + 1:
            return carry
        if carry is None and self.created == 0:
            return None  # the dry run would have created nothing yet: the database is the whole truth
        base = self._new_batch(plan)
        if carry is not None:
            base.counter_after = max(row.id_counter, carry.counter_after)
            if self.keeps_creations:
                base.live, base.created = carry.live, carry.created
        else:
            # Resumed: the IDs the earlier worker would have generated are not known here (docs/decisions.md).
            base.counter_after = row.id_counter
        active = select(func.count()).select_from(_T).where(_T.c.study_id == self.job.study.id, _T.c.status != REMOVED)
        in_study = session.scalar(active) or 0
        at_site = session.scalar(active.where(_T.c.site_id == self.job.site.id)) or 0
        base.counts = [in_study + self.created, at_site + self.created]
        return base

    def _carried(self, batch: writer.Plan, records: Sequence[RecordLike]) -> writer.Plan:
        """`batch` as the next batch's `after`. A study that generates IDs keeps every participant the dry
        run would have created (`live`, for later rows naming them) and those created with a given ID
        (`created`, which the ID generator skips), not only this batch's."""
        if not self.keeps_creations:
            return batch
        before = self.carry
        live = before.live if before is not None else {}
        given = before.created if before is not None else []
        live.update((s.key, s) for s in batch.created)
        given.extend(s for r, s in zip(records, batch.states, strict=True) if r.participant_id and s and s.new)
        batch.live, batch.created = live, given
        return batch


def _would_be(records: Sequence[RecordLike], results: Sequence[writer.Result]) -> list[writer.Result]:
    """The results as a dry run logs them: a row it would create has no OID (none is taken), and a
    generated ID is not shown either (none is taken: another upload may get it)."""
    return [
        replace(res, participant_oid=None, participant_id=res.participant_id if rec.participant_id else None)
        if res.outcome == writer.CREATED
        else res
        for rec, res in zip(records, results, strict=True)
    ]
