"""Applies validated participant records to the database (SPEC §5): the bulk importer and the
single-participant endpoint both come through here, so both follow the same database rules.

`apply_batch` decides and writes a batch under the study lock. The bulk importer may instead decide a
batch ahead of its transaction (`plan_batch`) and write it later (`write_planned`), which writes it as
decided only if nobody else wrote to the study in between (`studies.revision`). The deciding is
`roster.participants.decision`, the writing `roster.participants.batch`. Flushes, never commits: the
caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from roster.db import table_of, utcnow
from roster.fastsql import Statement, bulk_for
from roster.participants import batch
from roster.participants.batch_reads import SessionBatchReads
from roster.participants.decision import Decision, decide
from roster.participants.records import (
    CREATED,
    FAILED,
    PARTICIPATE_CREATED,
    UNCHANGED,
    UPDATED,
    BatchContext,
    Record,
    RecordLike,
    Result,
    StudyLike,
)
from roster.studies.models import Site, Study
from roster.studies.service import check_available

# The writer's vocabulary, for its callers.
__all__ = ["CREATED", "FAILED", "PARTICIPATE_CREATED", "UNCHANGED", "UPDATED", "Record", "Result"]

_STUDIES = table_of(Study)
# The study's and the site's settings (_STUDY_SETTINGS, _SITE_SETTINGS) as a plan was decided with them.
Settings = tuple[tuple[Any, ...], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Plan:
    """A batch decided ahead of its transaction (`plan_batch`), for `write_planned`."""

    context: BatchContext
    records: Sequence[RecordLike]
    base: int  # the study's revision expected before this batch takes the lock
    settings: Settings  # the study's and site's settings it was decided with
    decision: Decision | None  # None: stale, the snapshot was not the state the batch before left
    statements: tuple[Statement, ...] = ()  # the decision's batch.row_statements, built with it

    @property
    def stale(self) -> bool:
        return self.decision is None

    @property
    def results(self) -> Sequence[Result]:
        return self.decision.results if self.decision is not None else ()


_SITES = table_of(Site)
# What a batch is decided with (`Plan.settings`): a change to any of them means deciding it again.
_STUDY_SETTINGS = (
    _STUDIES.c.enrollment_cap,
    _STUDIES.c.participant_id_method,
    _STUDIES.c.participant_id_template,
    _STUDIES.c.status,
)
_STUDY_ROW = (_STUDIES.c.revision, *_STUDY_SETTINGS, _STUDIES.c.id_counter)
_SITE_SETTINGS = (_SITES.c.enrollment_cap, _SITES.c.status)


def lock_study(session: Session, study_id: int) -> Row[*tuple[Any, ...]]:
    """Takes the study row's lock and moves its revision; every writer of a study's participants calls
    this first. The lock serialises them on PostgreSQL (SQLite's BEGIN IMMEDIATE already does): caps,
    the ID counter and key uniqueness hold across concurrent jobs. The revision tells a batch decided
    ahead of its transaction (`plan_batch`) whether anyone wrote in between. Returns the study row."""
    return session.execute(lock_statement(study_id)).one()


def lock_statement(study_id: int) -> ReturningUpdate[Any]:
    """lock_study's statement (it returns _STUDY_ROW: the revision, then the settings a plan records)."""
    # updated_at stays: neither the lock nor the counter is a change of the study's settings.
    return (
        update(_STUDIES)
        .where(_STUDIES.c.id == study_id)
        .values(revision=_STUDIES.c.revision + 1, updated_at=_STUDIES.c.updated_at)
        .returning(*_STUDY_ROW)
    )


def site_settings_statement(site_id: int) -> Select[Any]:
    return select(*_SITE_SETTINGS).where(_SITES.c.id == site_id)


def _open_site(session: Session, study: Study, site: Site, row: Row[*tuple[Any, ...]]) -> tuple[Any, ...]:
    """The site's settings (cap, status), once the study (`row`, as lock_study or a plan's snapshot read it)
    and the site are found available. A bulk job was checked when it was uploaded and may run much later: a
    study or site locked meanwhile stops it at its next batch (DomainError, studyNotAvailable or
    siteNotAvailable), and the single endpoint's own check cannot race a lock either: changing a study
    updates the row lock_study locks, and changing a site takes that lock too (studies.service.update_site)."""
    settings = tuple(session.execute(site_settings_statement(site.id)).one())
    check_available(study.oid, row.status, site.oid, settings[1])
    return settings


def _settings(row: Row[*tuple[Any, ...]], site_settings: tuple[Any, ...]) -> Settings:
    # _STUDY_ROW is (revision, *_STUDY_SETTINGS, …): the writer process checks the locked row's start against these.
    return tuple(row)[1 : 1 + len(_STUDY_SETTINGS)], site_settings


def apply_batch(
    session: Session,
    study: Study,
    site: Site,
    records: Sequence[RecordLike],
    *,
    register: bool,
    username: str,
    source: str,
    id_column: str = "ParticipantID",
) -> list[Result]:
    """Records already passed the field rules and the in-file duplicate check. Results in input order.

    Writes audit events for every created/updated participant and every registration, with `source`
    (the job UUID for bulk, "api" for the single endpoint), in the caller's transaction.
    """
    if not records:
        return []
    context = BatchContext(study.id, site.id, register, username, source, id_column)
    row = lock_study(session, study.id)
    site_cap = _open_site(session, study, site, row)[0]
    decision = _decide(session, context, records, row, site_cap, None)
    batch.write(session, decision)
    return list(decision.results)


def _decide(
    session: Session,
    context: BatchContext,
    records: Sequence[RecordLike],
    study: StudyLike,
    site_cap: int | None,
    after: Decision | None,
) -> Decision:
    reads = SessionBatchReads(session, context.study_id, context.site_id)
    with reads.index_lookups_only():
        return decide(records, context=context, study=study, site_cap=site_cap, reads=reads, after=after, now=utcnow())


def plan_batch(
    reads: Session,
    study: Study,
    site: Site,
    records: Sequence[RecordLike],
    *,
    after: Plan | None,
    register: bool,
    username: str,
    source: str,
    id_column: str,
) -> Plan:
    """Decides a batch ahead of its transaction, from a read snapshot (`reads`, REPEATABLE READ) and the
    batch before it (`after`), which may still be being written. `write_planned` writes it if nobody
    else wrote to the study in between, or decides it again under the lock (`apply_batch`) if someone did."""
    context = BatchContext(study.id, site.id, register, username, source, id_column)
    row = reads.execute(select(*_STUDY_ROW).where(_STUDIES.c.id == study.id)).one()
    site_settings = _open_site(reads, study, site, row)
    settings = _settings(row, site_settings)
    if after is None:
        base, stale = row.revision, False
    else:
        base = after.base + 1
        # The snapshot must be the state before `after` or after it, with nothing else in between.
        stale = row.revision not in (after.base, after.base + 1) or settings != after.settings
    if stale:
        return Plan(context, records, base, settings, None)
    earlier = after.decision if after is not None else None
    decision = _decide(reads, context, records, row, site_settings[0], earlier)
    return Plan(context, records, base, settings, decision, batch.row_statements(decision, bulk_for(reads)))


def write_planned(session: Session, plan: Plan, study: Study, site: Site) -> tuple[Sequence[Result], bool]:
    """Writes a planned batch in the caller's transaction. Returns its results and whether it had to be
    decided again because the study changed after the plan's snapshot."""
    # Locked even for a batch without records: the next batch's plan counts on this batch's revision.
    row = lock_study(session, study.id)
    # Checked first, so that even a batch with nothing to write stops once the study or site is locked.
    settings = _settings(row, _open_site(session, study, site, row))
    decision = plan.decision
    current = decision is not None and row.revision == plan.base + 1 and settings == plan.settings
    if not plan.records:
        return [], not current
    if current and decision is not None and batch.ids_free(session, decision):
        try:
            with session.begin_nested():
                batch.write(session, decision, plan.statements)
            return decision.results, False
        except (IntegrityError, session.get_bind().dialect.loaded_dbapi.IntegrityError):
            # An access code drawn in another study meanwhile (codes are unique across studies). The
            # statements run on the driver's connection, so the driver's own exception arrives.
            pass
    context = plan.context
    redone = apply_batch(
        session,
        study,
        site,
        plan.records,
        register=context.register,
        username=context.username,
        source=context.source,
        id_column=context.id_column,
    )
    return redone, True
