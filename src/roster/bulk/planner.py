"""Plans a bulk job's batches (docs/bulk.md): everything about a batch that needs no lock — the in-file
duplicate check, the participant writer's decisions and the log entries — read from one snapshot plus
the batch before it, which may still be being written. The sink (roster.bulk.sink) writes the plan.

The in-file duplicate check asks the job's own log entries (indexed by the ID key) whether an earlier row
carried the same ID, instead of keeping a set of every ID in memory: the worker's memory does not grow
with the file, and a resumed job sees exactly what the first worker saw. A fixed-size filter
(roster.bulk.keyfilter) spares the question for IDs that cannot have occurred before.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

from roster import codes
from roster.bulk.csvreader import ID_COLUMN, Header
from roster.bulk.keyfilter import KeyFilter
from roster.bulk.models import LogEntry
from roster.bulk.rows import Row
from roster.bulk.sink import BatchSink, RunningJob
from roster.db import table_of
from roster.fastsql import Bulk, Payload, bulk_for, encode_json
from roster.participants import writer
from roster.participants.records import RecordLike
from roster.participants.rules import RuleError, rule_error

LOG = table_of(LogEntry)
_MAX_LOGGED_ID = 255


class LogRow(NamedTuple):
    """One log entry as its INSERT takes it: the fields are the columns (the job's id goes once per batch)."""

    row: int
    line: int
    participant_id: str | None
    participant_key: str | None
    participant_oid: str | None
    outcome: str
    participate_status: str | None
    errors: str  # JSON
    cells: str | None  # JSON, kept for failed rows only (failedRows rebuilds them)


LOG_COLUMNS = LogRow._fields


@dataclass(slots=True)
class BatchPlan:
    rows: list[Row]
    keys: set[str]  # the rows' ID keys, for the next batch's in-file duplicate check
    batch: writer.Plan | None  # None: the sink decides the batch itself (`BatchSink.decides`)
    duplicate: RuleError  # the error of a row whose ID an earlier row had
    asked: Collection[str]  # the keys the job's log was asked about (the filter's "maybe"s; every key of a resumed job)
    entries: Payload | None = None  # the log entries' insert payload
    counts: dict[str, int] | None = None
    request: bytes | None = None  # what the sink prepared ahead (SQLite writer process), until sent

    @property
    def last_row(self) -> int:
        return self.rows[-1].entry.row

    @property
    def records(self) -> list[RecordLike]:
        """The rows that go to the participant writer: no field error, no earlier row with their ID."""
        # A row without errors has its fields (Row.fields is None only for a refused row).
        return cast(list[RecordLike], [r for r in self.rows if not r.errors and not r.duplicate])


class Planner:
    def __init__(self, job: RunningJob, header: Header, sink: BatchSink) -> None:
        self.job, self.header, self.sink = job, header, sink
        # The ID keys of the job's earlier rows, when this worker decided all of them (it started the job at
        # its first row): the duplicate check then asks the log only about keys the filter cannot rule out.
        # None (a job resumed from a checkpoint): the log is asked about every key.
        self.seen_filter: KeyFilter | None = KeyFilter() if job.claim.processed == 0 else None

    def plan(self, rows: list[Row], previous: BatchPlan | None) -> BatchPlan:
        id_written = self.header.written[ID_COLUMN]
        run, job = self.job, self.job.job
        with run.db.read_sessions() as session:
            run.db.snapshot(session)
            bulk = bulk_for(session)
            keys = {r.key for r in rows if r.key}
            asked = keys if self.seen_filter is None else self.seen_filter.maybe_seen(keys)
            seen = set()
            if asked:
                with bulk.index_lookups_only():
                    seen = {
                        r[0]
                        for r in bulk.by_keys(
                            "t.participant_key", "job_log_entries", "participant_key", asked, scope=("job_id", job.id)
                        )
                    }
            if previous is not None:
                seen |= previous.keys & keys
            for r in rows:
                if r.key is not None:
                    r.duplicate = r.key in seen and r.fields is not None
                    seen.add(r.key)
            duplicate = rule_error(codes.PARTICIPANT_ID_DUPLICATED_IN_FILE, id_written)
            plan = BatchPlan(rows, keys, None, duplicate, asked)
            if self.sink.decides:
                return plan
            plan.batch = batch = writer.plan_batch(
                session,
                run.study,
                run.site,
                plan.records,
                after=previous.batch if previous is not None else None,
                register=job.register,
                username=job.created_by,
                source=job.uuid,
                id_column=id_written,
            )
            if not batch.stale:
                plan.entries, plan.counts = log_entries(plan, batch.results, bulk)
                self.sink.prepare(plan, session)
        return plan


def log_entries(plan: BatchPlan, results: Sequence[writer.Result], bulk: Bulk) -> tuple[Payload, dict[str, int]]:
    """The batch's log entries as an insert payload (roster.fastsql), and its counts."""
    duplicate = plan.duplicate
    outcomes = iter(results)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    entries = []
    for r in plan.rows:
        pid: str | None
        oid: str | None
        status: str | None
        if r.errors or r.duplicate:
            errors = [*r.errors, duplicate] if r.duplicate else r.errors
            outcome, pid, oid, status = writer.FAILED, r.participant_id, None, None
        else:
            res = next(outcomes)
            outcome, pid, oid, status, errors = (
                res.outcome,
                res.participant_id,
                res.participant_oid,
                res.participate_status,
                res.errors,
            )
        counts[outcome] += 1
        if outcome == writer.FAILED:
            logged_errors, cells = encode_json([e.as_dict() for e in errors]), encode_json(r.entry.cells)
        else:
            logged_errors, cells = "[]", None
        entries.append(
            LogRow(
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
