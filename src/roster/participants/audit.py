"""Audit trail (SPEC §8): append-only events, written in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring as _json_str
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from roster.db import utcnow
from roster.participants.models import AuditEvent

SOURCE_API = "api"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fields of `new` whose value differs from `old`, as [{field, old, new}]."""
    return [
        {"field": field, "old": _plain(old.get(field)), "new": _plain(value)}
        for field, value in new.items()
        if old.get(field) != value
    ]


def event(
    participant_id: int,
    username: str,
    action: str,
    source: str,
    changes: list[dict[str, Any]],
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "at": at or utcnow(),
        "username": username,
        "action": action,
        "source": source,
        "changes": changes,
    }


def write(session: Session, events: Iterable[dict[str, Any]]) -> None:
    """One executemany INSERT for the API's events (the bulk writer inserts a batch's through roster.fastsql)."""
    rows = list(events)
    if rows:
        session.execute(insert(AuditEvent), rows)


def changes_json(changes: Sequence[tuple[str, str | None, str | None]]) -> str:
    """`[{"field", "old", "new"}, …]` as JSON (diff's shape), built directly: at bulk rates the
    general encoder costs more than the rest of the row. Field names are fixed identifiers."""
    return (
        "["
        + ",".join(
            [
                f'{{"field":"{f}","old":{"null" if o is None else _json_str(o)},'
                f'"new":{"null" if n is None else _json_str(n)}}}'
                for f, o, n in changes
            ]
        )
        + "]"
    )
