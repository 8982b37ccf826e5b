"""What a batch of participant records takes and gives (SPEC §5): the records, their results, the
context a batch is written in, and a participant as a batch sees it (roster.participants.decision).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

from roster.participants.rules import RuleError

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
FAILED = "failed"

# Participate status of a participant who has just been given an access code.
PARTICIPATE_CREATED = "Created"


class RecordLike(Protocol):
    """What the writer reads of a record that passed the field rules: a `Record` (the single endpoint) or
    one of the bulk importer's rows (roster.bulk.rows.Row), which is passed as it is."""

    participant_id: str  # trimmed; "" only when the study's method is "system" (-> next generated ID)
    fields: dict[str, str]  # contact field (API name) -> trimmed value; absent or empty = keep stored


@dataclass(slots=True)
class Record:
    participant_id: str
    fields: dict[str, str]


@dataclass(slots=True)
class Result:
    outcome: str  # created | updated | unchanged | failed
    participant_id: str | None  # as stored (the generated one for system IDs); as given when failed
    participant_oid: str | None
    participate_status: str | None
    errors: list[RuleError] = field(default_factory=list)


class StudyLike(Protocol):
    """What deciding a batch reads of the study: a Study, or the row lock_study returned."""

    @property
    def enrollment_cap(self) -> int | None: ...
    @property
    def id_counter(self) -> int: ...
    @property
    def participant_id_method(self) -> str: ...
    @property
    def participant_id_template(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class BatchContext:
    """Who writes a batch where, and how its errors name the ID column."""

    study_id: int
    site_id: int
    register: bool  # register=y: participants without an access code get one
    username: str
    source: str  # the audit events' source: the job's UUID, or "api"
    id_column: str


class State:
    """One participant as a batch sees it: loaded from the database, created by an earlier record, or
    carried over from the batch before (`follow`). `values` holds the contact columns in
    fields.WRITABLE_COLUMNS order."""

    __slots__ = (
        "pk",
        "site_id",
        "participant_id",
        "key",
        "oid",
        "status",
        "participate_status",
        "access_code",
        "values",
        "new",
        "dirty",
        "needs_code",
    )

    def __init__(
        self,
        pk: int | None,
        site_id: int,
        participant_id: str,
        key: str,
        oid: str | None,
        status: str,
        participate_status: str | None,
        access_code: str | None,
        values: dict[str, Any],
        new: bool = False,
    ) -> None:
        self.pk = pk
        self.site_id = site_id
        self.participant_id = participant_id
        self.key = key
        self.oid = oid
        self.status = status
        self.participate_status = participate_status
        self.access_code = access_code
        self.values = values
        self.new = new
        self.dirty = False
        self.needs_code = False

    def follow(self) -> State:
        """This participant as the next batch starts from it, once this batch is written."""
        state = copy.copy(self)
        state.values = dict(self.values)
        state.new = state.dirty = state.needs_code = False
        return state
