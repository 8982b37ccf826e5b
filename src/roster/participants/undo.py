"""Undoing what one source (a bulk job) did to a participant (SPEC §11.2): read back its audit events,
delete a participant it created, restore the values it changed. Flushes, never commits; the caller
holds the study lock (writer.lock_study)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from roster.db import table_of, utcnow
from roster.participants import audit
from roster.participants.fields import CONTACT_COLUMNS
from roster.participants.models import AuditEvent, Participant, ParticipantMrn, participant_key

ACTION_DELETE = "delete"
ACTION_REVERT = "revert"
_REGISTER = "register"
# Audit field name -> column, for what a bulk row may change (the batch writer's names).
_COLUMNS = {**CONTACT_COLUMNS, "participateStatus": "participate_status"}
_T = table_of(Participant)


@dataclass
class Trail:
    """What `source` did to one participant, from its audit events."""

    participant: Any  # the participants row
    # field -> its value before the source's first change of it
    old: dict[str, Any] = field(default_factory=dict)
    registered: bool = False
    changed_since: bool = False  # a later event from another source


def trail(session: Session, study_id: int, participant_id: str, source: str) -> Trail | None:
    """The participant with this ID and what `source` changed; None when it is gone or `source` never
    touched it (e.g. deleted and created again by someone else)."""
    row = session.execute(
        select(_T).where(_T.c.study_id == study_id, _T.c.participant_key == participant_key(participant_id))
    ).one_or_none()
    if row is None:
        return None
    events = session.execute(
        select(AuditEvent.source, AuditEvent.action, AuditEvent.changes)
        .where(AuditEvent.participant_id == row.id)
        .order_by(AuditEvent.id)
    ).all()
    found = Trail(row)
    seen = False
    for event_source, action, changes in events:
        if event_source == source:
            seen = True
            found.registered |= action == _REGISTER
            for change in changes or ():
                found.old.setdefault(change["field"], change["old"])
        elif seen:
            found.changed_since = True
    return found if seen else None


def delete_participant(session: Session, row: Any, username: str, source: str) -> None:
    """Deletes the participant with its MRNs and access code; its audit trail stays, ending with `delete`."""
    session.execute(delete(ParticipantMrn).where(ParticipantMrn.participant_id == row.id))
    session.execute(delete(Participant).where(Participant.id == row.id).execution_options(synchronize_session=False))
    changes = [
        {"field": "participantId", "old": row.participant_id, "new": None},
        {"field": "status", "old": row.status, "new": None},
    ]
    audit.write(session, [audit.event(row.id, username, ACTION_DELETE, source, changes)])
    session.flush()


def restore_values(session: Session, found: Trail, username: str, source: str) -> str | None:
    """Puts back every value the source changed (and takes back an access code it issued).
    Returns the participate status afterwards."""
    row = found.participant
    values: dict[str, Any] = {}
    changes = []
    for name, old in found.old.items():
        column = _COLUMNS.get(name)
        if column is None:
            continue
        if getattr(row, column) != old:
            values[column] = old
            changes.append({"field": name, "old": getattr(row, column), "new": old})
    if found.registered and row.access_code is not None:
        # The code itself stays out of the trail, as when it was issued.
        values["access_code"] = None
    if values:
        values.update(updated_at=utcnow(), updated_by=username)
        session.execute(update(_T).where(_T.c.id == row.id).values(**values))
        audit.write(session, [audit.event(row.id, username, ACTION_REVERT, source, changes)])
        session.flush()
    status: str | None = values.get("participate_status", row.participate_status)
    return status
