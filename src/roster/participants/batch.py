"""Writing a decided batch (roster.participants.decision.Decision): a fixed number of statements whatever
its size — the study's ID counter if it moved, one INSERT for the new participants, one UPDATE for the
changed ones, one INSERT for their audit events (roster.fastsql) — run in the caller's transaction
(`write`) or handed to a caller that runs them elsewhere (`statements`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import Update, update
from sqlalchemy.orm import Session

from roster.db import table_of
from roster.fastsql import Bulk, Statement, bulk_for
from roster.participants import audit
from roster.participants.decision import Decision
from roster.participants.fields import WRITABLE_COLUMNS
from roster.participants.models import AVAILABLE, AuditEvent, Participant
from roster.studies.models import Study

_T = table_of(Participant)
_STUDIES = table_of(Study)
_AUDIT = table_of(AuditEvent)

# Column -> State attribute, for the columns before the contact columns (State.values, in WRITABLE_COLUMNS order).
_INSERTED = {
    "id": "pk",
    "participant_id": "participant_id",
    "participant_key": "key",
    "oid": "oid",
    "participate_status": "participate_status",
    "access_code": "access_code",
}
_UPDATED = {"participate_status": "participate_status", "access_code": "access_code"}
# An UPDATE's payload row is (id, *its columns); `updated_at` and `updated_by` are the same in every row.
INSERT_COLUMNS = (*_INSERTED, *WRITABLE_COLUMNS)
UPDATE_COLUMNS = (*_UPDATED, "updated_at", "updated_by", *WRITABLE_COLUMNS)
AUDIT_COLUMNS = ("participant_id", "action", "changes")
_inserted = attrgetter(*_INSERTED.values())
_updated = attrgetter("pk", *_UPDATED.values())


def write(session: Session, decision: Decision, ready: Sequence[Statement] | None = None) -> None:
    """Writes the decision in `session`'s transaction (the study row already locked). `ready`: its
    `row_statements`, if built ahead."""
    if decision.counter_after != decision.counter_before:
        session.execute(_counter(decision))
    db = bulk_for(session)
    with db.index_lookups_only():
        db.run(row_statements(decision, db) if ready is None else ready)


def statements(decision: Decision, db: Bulk, ready: Sequence[Statement] | None = None) -> Iterator[Statement]:
    """What `write` runs, as driver statements for a caller that runs them elsewhere (SQLite only:
    `Bulk.driver` needs positional parameters)."""
    if decision.counter_after != decision.counter_before:
        yield db.driver(_counter(decision))
    yield from row_statements(decision, db) if ready is None else ready


def row_statements(decision: Decision, db: Bulk) -> tuple[Statement, ...]:
    """The participants' and audit events' statements, payloads encoded: the Python part of writing, which
    a planner builds ahead so that the writer, whose time the database waits on, only sends them."""
    return (*participant_statements(decision, db), *audit_statements(decision, db))


def ids_free_check(decision: Decision, db: Bulk) -> Statement | None:
    """A statement whose one value is 1 while the ids the decision gave out are still free (None: no ids,
    or ids that stay free). On SQLite they follow the largest id of the snapshot, and a writer of another
    study (whom the study revision does not track) may have taken them since."""
    first = decision.created[0].pk if decision.created else None
    return None if first is None else db.ids_free_check("participants", first)


def ids_free(session: Session, decision: Decision) -> bool:
    first = decision.created[0].pk if decision.created else None
    return first is None or bulk_for(session).ids_free("participants", first)


def _counter(decision: Decision) -> Update:
    return (
        update(_STUDIES)
        .where(_STUDIES.c.id == decision.context.study_id)
        .values(id_counter=decision.counter_after, updated_at=_STUDIES.c.updated_at)
    )


def participant_statements(decision: Decision, db: Bulk) -> Iterator[Statement]:
    context, user = decision.context, decision.context.username
    now = db.stamp(_T.c.created_at, decision.now)
    if decision.created:
        # Values every row shares go once (fastsql's `same`).
        same = {
            "study_id": context.study_id,
            "site_id": context.site_id,
            "status": AVAILABLE,
            "activity_status": "Active",
            "created_at": now,
            "created_by": user,
            "updated_at": now,
            "updated_by": user,
        }
        rows = [(*_inserted(s), *s.values.values()) for s in decision.created]
        yield from db.inserts(_T, INSERT_COLUMNS, db.payload(rows), same)
    if decision.changed:
        rows = [(*_updated(s), now, user, *s.values.values()) for s in decision.changed]
        yield from db.updates(_T, UPDATE_COLUMNS, db.payload(rows))


def audit_statements(decision: Decision, db: Bulk) -> Iterator[Statement]:
    if not decision.events:
        return
    context = decision.context
    same = {"at": db.stamp(_AUDIT.c.at, decision.now), "username": context.username, "source": context.source}
    rows: list[tuple[Any, ...]] = [(e.state.pk, e.action, audit.changes_json(e.changes)) for e in decision.events]
    yield from db.inserts(_AUDIT, AUDIT_COLUMNS, db.payload(rows), same)
