"""The dry run's sink (SPEC §11.1, roster.bulk.sink): decides each batch as the real import would and
writes only the batch's log entries and the fenced checkpoint — no participant, access code, audit event
or generated ID.

Each batch is decided in its own transaction under the study lock (docs/bulk.md, invariant 1) by the same
`decide()` as a real batch, reading the database as it is then plus what the dry run would have written
before (`WouldBeReads`): its creations count toward the caps (the checkpoint's `created` count), the ID
counter starts past the IDs it would have generated, and in a study that generates IDs the participants it
would have created are found in `dry_run_creations`, written with each batch. Its memory does not grow
with the file, and a resumed dry run sees exactly what the first worker's batches would have done. In-file
duplicates need nothing: the planner asks the job's log, which a dry run writes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace

from sqlalchemy import delete
from sqlalchemy.orm import Session

from roster.bulk.inline_sink import log_and_checkpoint
from roster.bulk.models import DryRunCreation
from roster.bulk.planner import BatchPlan, log_entries
from roster.bulk.sink import BatchOutcome, RunningJob, retrying
from roster.db import table_of, utcnow
from roster.fastsql import bulk_for, encode_json
from roster.participants import writer
from roster.participants.batch_reads import SessionBatchReads
from roster.participants.decision import Decision, decide
from roster.participants.models import AVAILABLE
from roster.participants.records import PARTICIPATE_CREATED, BatchContext, RecordLike, State
from roster.studies.service import check_available

_CREATIONS = table_of(DryRunCreation)
_CREATION_COLUMNS = ("participant_key", "participant_id", "contact_values")
# A would-be participant of a register=y dry run has an access code, which a dry run never draws: deciding
# asks only whether it has one.
_NOT_DRAWN = ""


@contextmanager
def dry_run_sink(job: RunningJob) -> Iterator[DryRunSink]:
    """The sink of a dry-run job (roster.bulk.sinks). Once the job has gone through its file (completed or
    cancelled), its would-be participants go; a job that stopped otherwise is resumed and needs them."""
    yield DryRunSink(job)
    with job.db.transaction() as session:
        session.execute(delete(_CREATIONS).where(_CREATIONS.c.job_id == job.job.id))


@dataclass(frozen=True, slots=True)
class _Study:
    """The study as the dry run would have left it (participants.records.StudyLike)."""

    enrollment_cap: int | None
    id_counter: int
    participant_id_method: str
    participant_id_template: str | None


class DryRunSink:
    overlaps = False
    decides = True

    def __init__(self, job: RunningJob) -> None:
        self.job = job
        # Rows logged `created` so far (the checkpoint's count when the job was claimed): the participants the
        # dry run would have made, which the database does not hold.
        self.created = job.job.created
        # The study's ID counter as the last batch would have left it. None (first batch, or resumed): the
        # study's own, and the generator skips the IDs earlier batches would have taken as taken.
        self.counter: int | None = None

    def prepare(self, plan: BatchPlan, reads: Session) -> None:
        pass  # nothing is decided ahead: `write` decides under the lock

    def write(self, plan: BatchPlan) -> BatchOutcome:
        return retrying(self.job, lambda: self._write_once(plan))

    def _write_once(self, plan: BatchPlan) -> BatchOutcome:
        job = self.job
        records = plan.records
        decision = None
        with job.db.transaction(relaxed=True) as session:
            row = writer.lock_study(session, job.study.id)
            site_cap, site_status = session.execute(writer.site_settings_statement(job.site.id)).one()
            check_available(job.study.oid, row.status, job.site.oid, site_status)
            results: Sequence[writer.Result] = ()
            if records:
                counter = row.id_counter if self.counter is None else max(row.id_counter, self.counter)
                study = _Study(row.enrollment_cap, counter, row.participant_id_method, row.participant_id_template)
                decision = self._decide(session, plan, study, site_cap)
                results = _would_be(records, decision.results)
                if study.participant_id_method == "system":
                    self._keep_creations(session, decision)
            plan.entries, plan.counts = log_entries(plan, list(results), bulk_for(session))
            cancel = log_and_checkpoint(session, job, plan)
        # Kept only once committed: a batch tried again is decided again from the same state.
        if decision is not None:
            self.counter = decision.counter_after
        self.created += plan.counts["created"]
        return BatchOutcome(cancel, False, plan.last_row)

    def _decide(self, session: Session, plan: BatchPlan, study: _Study, site_cap: int | None) -> Decision:
        job = self.job.job
        # The duplicate error names the column the file gave the ID in, as the writer's errors do.
        context = BatchContext(job.study_id, job.site_id, job.register, job.created_by, job.uuid, plan.duplicate.column)
        reads = WouldBeReads(session, job.id, context, self.created)
        with reads.index_lookups_only():
            return decide(
                plan.records, context=context, study=study, site_cap=site_cap, reads=reads, after=None, now=utcnow()
            )

    def _keep_creations(self, session: Session, decision: Decision) -> None:
        """The batch's would-be participants, for later batches (only a study that generates IDs lets a later
        row meet one other than as an in-file duplicate)."""
        if decision.created:
            bulk = bulk_for(session)
            rows = [(s.key, s.participant_id, encode_json(s.values)) for s in decision.created]
            bulk.insert(_CREATIONS, _CREATION_COLUMNS, bulk.payload(rows), {"job_id": self.job.job.id})


class WouldBeReads:
    """What deciding reads (participants.decision.BatchReads), as the database would be had the dry run
    written its earlier batches: the database plus its would-be participants. IDs, OIDs and access codes
    need no overlay: the dry run takes none, and a would-be participant's are never shown."""

    def __init__(self, session: Session, job_id: int, context: BatchContext, created: int) -> None:
        self.reads = SessionBatchReads(session, context.study_id, context.site_id)
        self.job_id, self.context, self.created = job_id, context, created

    def index_lookups_only(self) -> AbstractContextManager[None]:
        return self.reads.index_lookups_only()

    def participants(self, keys: Collection[str]) -> Iterator[State]:
        found = set()
        for state in self.reads.participants(keys):
            found.add(state.key)
            yield state
        if len(found) < len(keys):
            yield from self._would_be([k for k in keys if k not in found])

    def active_counts(self, *, study: bool, site: bool) -> tuple[int, int]:
        # Every would-be participant is at the job's site, and none is removed.
        in_study, at_site = self.reads.active_counts(study=study, site=site)
        return (in_study + self.created if study else 0), (at_site + self.created if site else 0)

    def existing_keys(self, keys: Collection[str]) -> set[str]:
        return self.reads.existing_keys(keys) | {r[0] for r in self._creations("t.participant_key", keys)}

    def taken_access_codes(self, candidates: Collection[str]) -> set[str]:
        return self.reads.taken_access_codes(candidates)

    def taken_oids(self, candidates: Collection[str]) -> set[str]:
        return self.reads.taken_oids(candidates)

    def next_ids(self, count: int, floor: int) -> list[int]:
        # Nothing is inserted: no id is taken from the table (its sequence on PostgreSQL).
        return list(range(floor + 1, floor + 1 + count))

    def _would_be(self, keys: Collection[str]) -> Iterator[State]:
        context = self.context
        registered = context.register  # the job's creations were all registered, or none was
        for key, pid, values in self._creations("t.participant_key, t.participant_id, t.contact_values", keys):
            yield State(
                None,
                context.site_id,
                pid,
                key,
                None,
                AVAILABLE,
                PARTICIPATE_CREATED if registered else None,
                _NOT_DRAWN if registered else None,
                json.loads(values),
            )

    def _creations(self, columns: str, keys: Collection[str]) -> list[tuple[str, ...]]:
        bulk = self.reads.bulk
        return bulk.by_keys(columns, "dry_run_creations", "participant_key", keys, scope=("job_id", self.job_id))


def _would_be(records: Sequence[RecordLike], results: Sequence[writer.Result]) -> list[writer.Result]:
    """The results as a dry run logs them: a row it would create has no OID (none is taken), and a
    generated ID is not shown either (none is taken: another upload may get it)."""
    return [
        replace(res, participant_oid=None, participant_id=res.participant_id if rec.participant_id else None)
        if res.outcome == writer.CREATED
        else res
        for rec, res in zip(records, results, strict=True)
    ]
