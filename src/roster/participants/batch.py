"""One batch of validated participant records: deciding every record's outcome (`Batch.decide`) and
writing the result (`Batch.write`). `roster.participants.writer` runs it, under the study lock or ahead
of it. A batch costs a fixed number of statements whatever its size: one SELECT for the participants it
names, one INSERT for the new ones, one UPDATE for the changed ones, one INSERT for their audit events
(`roster.fastsql`). Records are applied strictly in order, each seeing the effect of the ones before it,
so a row's outcome does not depend on which batch it falls in.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Update, func, select, update
from sqlalchemy.orm import Session

from roster import codes
from roster.db import table_of, utcnow
from roster.fastsql import Bulk, Payload, Statement, bulk_for
from roster.participants import audit
from roster.participants.identifiers import (
    MAX_ID_LENGTH,
    IdGenerator,
    new_access_code,
    oid_base,
)
from roster.participants.models import (
    AVAILABLE,
    REMOVED,
    AuditEvent,
    Participant,
    participant_key,
)
from roster.participants.rules import RuleError, rule_error
from roster.studies.models import Study

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
FAILED = "failed"

# Participate status of a participant who has just been given an access code.
PARTICIPATE_CREATED = "Created"
# API field name -> Participant column, for the contact fields a bulk row may carry.
CONTACT_FIELDS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "emailAddress": "email_address",
    "mobileNumber": "mobile_number",
    "identifier": "identifier",
}
_COLUMNS = tuple(CONTACT_FIELDS.values())

_T = table_of(Participant)
_STUDIES = table_of(Study)
_AUDIT = table_of(AuditEvent)
_INSERT_COLUMNS = ("id", "participant_id", "participant_key", "oid", "participate_status", "access_code", *_COLUMNS)
_UPDATE_COLUMNS = ("participate_status", "access_code", "updated_at", "updated_by", *_COLUMNS)
_LOAD_COLUMNS = ", ".join(
    f"t.{c}"
    for c in (
        "id",
        "site_id",
        "participant_id",
        "participant_key",
        "oid",
        "status",
        "participate_status",
        "access_code",
        *_COLUMNS,
    )
)
_AUDIT_COLUMNS = ("participant_id", "action", "changes")


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
    participant_pk: int | None = None


class _State:
    """One participant as this batch sees it: loaded from the database, created by an earlier record, or
    carried over from the batch before (`follow`)."""

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
        self.values = values  # column -> value, for the contact columns
        self.new = new
        self.dirty = False
        self.needs_code = False

    def follow(self) -> _State:
        """This participant as the next batch starts from it, once this batch is written."""
        state = copy.copy(self)
        state.values = dict(self.values)
        state.new = state.dirty = state.needs_code = False
        return state


class Batch:
    def __init__(self, study_id: int, site_id: int, register: bool, username: str, source: str, id_column: str):
        self.study_id, self.site_id, self.register = study_id, site_id, register
        self.username, self.source, self.id_column = username, source, id_column
        self.now = utcnow()
        self.live: dict[str, _State] = {}
        self.created: list[_State] = []
        # (state, action, [(field, old, new)]): audit rows once new participants have ids.
        self.events: list[tuple[_State, str, list[tuple[str, Any, Any]]]] = []
        self.counts: list[int] | None = None  # [study, site] non-removed participants, when a cap applies
        self.results: list[Result] = []
        self.states: list[_State | None] = []
        self.records: Sequence[RecordLike] = ()
        # Planning (plan_batch): the revision expected before this batch's lock, the settings decided with.
        self.base, self.stale = 0, False
        self.settings: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None
        self.counter_before = self.counter_after = 0
        self.issued: set[str] = set()  # access codes this batch gives out
        self.oids: set[str] = set()  # OIDs of the participants it creates
        self.max_pk = 0  # the largest participant id given out so far in the job (SQLite: not yet in the snapshot)
        self.inserts: Payload | None = None  # payloads (roster.fastsql)
        self.updates: Payload | None = None
        self.audit: Payload | None = None

    def decide(
        self, reads: Session, records: Sequence[RecordLike], study: StudyLike, site_cap: int | None, after: Batch | None
    ) -> None:
        """Every record's outcome, reading through `reads`; nothing is written yet."""
        self.reads = reads
        self.db = bulk_for(reads)
        self.after = after
        with self.db.index_lookups_only():
            self._decide(records, study, site_cap)
        # Only the deciding needs the batch before; keeping it would chain every batch of the job.
        self.after = None

    def _decide(self, records: Sequence[RecordLike], study: StudyLike, site_cap: int | None) -> None:
        after = self.after
        self.study_cap = study.enrollment_cap
        self.site_cap = site_cap
        if after is not None and after.counts is not None:
            self.counts = list(after.counts)
        self.counter_before = after.counter_after if after is not None else study.id_counter
        generating = sum(1 for r in records if not r.participant_id)
        ids = (
            IdGenerator(self.db, self.study_id, study.participant_id_template, self.counter_before)
            if (generating and study.participant_id_method == "system" and study.participant_id_template)
            else None
        )
        if ids is not None and after is not None:
            ids.existing.update(s.key for s in after.created)

        self._load({participant_key(r.participant_id) for r in records if r.participant_id})
        states: list[_State | None] = []
        apply = self._apply
        results = [apply(r, ids, generating, states) for r in records]
        self.counter_after = ids.counter if ids is not None else self.counter_before
        self._issue_access_codes()
        self._assign_oids()
        self._payloads()
        for result, state in zip(results, states, strict=True):
            if state is not None:
                result.participant_oid = state.oid
                result.participate_status = state.participate_status
                result.participant_pk = state.pk
        self.states = states
        self.results = results

    def ids_free(self, session: Session) -> bool:
        """Whether the participant ids given out while deciding are still free. On SQLite they follow the
        largest id of the snapshot, and a writer of another study (whom the study revision does not
        track) may have taken them since; PostgreSQL's come from its sequence."""
        return not self.created or bulk_for(session).ids_free("participants", self.created[0].pk)

    def ids_free_check(self, db: Bulk) -> Statement | None:
        """A statement whose one value is 1 while the ids given out are still free (None: they stay free)."""
        return db.ids_free_check("participants", self.created[0].pk) if self.created else None

    def write(self, session: Session) -> None:
        """Writes what `decide` decided, in `session`'s transaction (the study row already locked)."""
        if self.counter_after != self.counter_before:
            session.execute(self._counter())
        db = bulk_for(session)
        with db.index_lookups_only():
            db.run(self._rows(db))

    def statements(self, db: Bulk) -> list[Statement]:
        """What `write` runs, as driver statements, for a caller that runs them elsewhere (a bulk sink)."""
        counter = [db.driver(self._counter())] if self.counter_after != self.counter_before else []
        return [*counter, *self._rows(db)]

    def _counter(self) -> Update:
        return (
            update(_STUDIES)
            .where(_STUDIES.c.id == self.study_id)
            .values(id_counter=self.counter_after, updated_at=_STUDIES.c.updated_at)
        )

    # -- reading ---------------------------------------------------------------------------------

    def _load(self, keys: set[str]) -> None:
        if self.after is not None:
            # The batch before may not be in the snapshot yet: its participants are taken as it left them.
            earlier = self.after.live
            for key in [k for k in keys if k in earlier]:
                self.live[key] = earlier[key].follow()
                keys.discard(key)
        if not keys:
            return
        rows = self.db.by_keys(
            _LOAD_COLUMNS, "participants", "participant_key", keys, scope=("study_id", self.study_id)
        )
        live = self.live
        for row in rows:
            live[row[3]] = _State(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                row[7],
                dict(zip(_COLUMNS, row[8:], strict=True)),
            )

    def _cap_reached(self) -> bool:
        if self.study_cap is None and self.site_cap is None:
            return False
        if self.counts is None:
            active = (_T.c.study_id == self.study_id, _T.c.status != REMOVED)
            study_count = (
                self.reads.scalar(select(func.count()).select_from(_T).where(*active))
                if self.study_cap is not None
                else 0
            )
            site_count = (
                self.reads.scalar(select(func.count()).select_from(_T).where(*active, _T.c.site_id == self.site_id))
                if self.site_cap is not None
                else 0
            )
            self.counts = [study_count or 0, site_count or 0]
        return (self.study_cap is not None and self.counts[0] >= self.study_cap) or (
            self.site_cap is not None and self.counts[1] >= self.site_cap
        )

    # -- one record ------------------------------------------------------------------------------

    def _fail(self, participant_id: str | None, code: str) -> Result:
        return Result(FAILED, participant_id, None, None, [rule_error(code, self.id_column)])

    def _apply(
        self, record: RecordLike, ids: IdGenerator | None, generating: int, states: list[_State | None]
    ) -> Result:
        pid = record.participant_id
        if not pid:
            if ids is None:
                # The field rules refuse an empty ID for manual studies; a system study without a
                # template cannot generate one either.
                states.append(None)
                return self._fail(None, codes.MISSING_PARTICIPANT_ID)
            if self._cap_reached():
                states.append(None)
                return self._fail(None, codes.ENROLLMENT_CAP_REACHED)
            pid = ids.peek(self.live, generating)
            if len(pid) > MAX_ID_LENGTH:
                # The template has grown past the column: refuse rather than truncate.
                states.append(None)
                return self._fail(pid, codes.PARTICIPANT_ID_TOO_LONG)
            ids.take()
        key = participant_key(pid)
        state = self.live.get(key)
        if state is None:
            if self._cap_reached():
                states.append(None)
                return self._fail(pid, codes.ENROLLMENT_CAP_REACHED)
            return self._create(record, pid, key, states)
        if state.site_id != self.site_id:
            states.append(None)
            return self._fail(pid, codes.PARTICIPANT_ID_AT_ANOTHER_SITE)
        if state.status == REMOVED:
            states.append(None)
            return self._fail(pid, codes.PARTICIPANT_ID_NOT_AVAILABLE)
        return self._update(record, state, states)

    def _create(self, record: RecordLike, pid: str, key: str, states: list[_State | None]) -> Result:
        values = dict.fromkeys(_COLUMNS)
        changes = [("participantId", None, pid), ("status", None, AVAILABLE)]
        for name, value in record.fields.items():
            if value:
                values[CONTACT_FIELDS[name]] = value
                changes.append((name, None, value))
        state = _State(None, self.site_id, pid, key, None, AVAILABLE, None, None, values, new=True)
        self.live[key] = state
        self.created.append(state)
        if self.counts is not None:
            self.counts[0] += 1
            self.counts[1] += 1
        self.events.append((state, "create", changes))
        self._register(state)
        states.append(state)
        return Result(CREATED, pid, None, None)

    def _update(self, record: RecordLike, state: _State, states: list[_State | None]) -> Result:
        changes = []
        values = state.values
        for name, value in record.fields.items():
            column = CONTACT_FIELDS[name]
            old = values[column]
            if value and old != value:
                changes.append((name, old, value))
                values[column] = value
        if changes:
            state.dirty = True
            self.events.append((state, "update", changes))
        registered = self._register(state)
        states.append(state)
        return Result(UPDATED if changes or registered else UNCHANGED, state.participant_id, None, None)

    def _register(self, state: _State) -> bool:
        """register=y: a participant without an access code gets one; one that has a code keeps it."""
        if not self.register or state.access_code is not None or state.needs_code:
            return False
        state.needs_code = True
        state.dirty = True
        old = state.participate_status
        state.participate_status = PARTICIPATE_CREATED
        # The code itself stays out of the trail: it is a credential.
        self.events.append((state, "register", [("participateStatus", old, PARTICIPATE_CREATED)]))
        return True

    # -- writing ---------------------------------------------------------------------------------

    def _issue_access_codes(self) -> None:
        waiting = [s for s in self.live.values() if s.needs_code]
        while waiting:
            fresh: dict[str, _State] = {}
            for state in waiting:
                code = new_access_code()
                while code in fresh:
                    code = new_access_code()
                fresh[code] = state
            # Unique across Roster (the column is): a clash means drawing again, which at 31^9 codes
            # practically never happens.
            taken = {r[0] for r in self.db.by_keys("t.access_code", "participants", "access_code", fresh)}
            if self.after is not None:
                taken |= self.after.issued & fresh.keys()
            waiting = []
            for code, state in fresh.items():
                if code in taken:
                    waiting.append(state)
                else:
                    state.access_code = code
                    self.issued.add(code)

    def _taken_oids(self, candidates: set[str]) -> set[str]:
        taken = {
            r[0] for r in self.db.by_keys("t.oid", "participants", "oid", candidates, scope=("study_id", self.study_id))
        }
        return taken | (self.after.oids & candidates) if self.after is not None else taken

    def _assign_oids(self) -> None:
        bases = {s.key: oid_base(s.participant_id) for s in self.created}
        used: set[str] = set()
        self.oids = used
        waiting, suffix = self.created, 1
        while waiting:
            # Each takes its base if free. IDs like "P-1" and "P1" share a base: the later one gets the first
            # free "_N" suffix (a base never holds "_", so suffixed OIDs cannot clash with bases).
            candidates = {s.key: bases[s.key] if suffix == 1 else f"{bases[s.key]}_{suffix}" for s in waiting}
            taken = self._taken_oids(set(candidates.values()))
            still = []
            for state in waiting:
                candidate = candidates[state.key]
                if candidate in taken or candidate in used:
                    still.append(state)
                else:
                    state.oid = candidate
                    used.add(candidate)
            waiting, suffix = still, suffix + 1

    def _payloads(self) -> None:
        """The batch's rows as the statements will take them, ids included: built while deciding, so that
        the writing is only statements (roster.fastsql)."""
        db, user = self.db, self.username
        now = db.stamp(_T.c.created_at, self.now)
        after = self.after
        floor = after.max_pk if after is not None else 0
        for state, pk in zip(self.created, db.next_ids("participants", len(self.created), floor), strict=True):
            state.pk = pk
        self.max_pk = max(floor, (self.created[-1].pk or 0) if self.created else 0)
        # Values every row of a statement shares go once (fastsql's `same`).
        self.insert_same = {
            "study_id": self.study_id,
            "site_id": self.site_id,
            "status": AVAILABLE,
            "activity_status": "Active",
            "created_at": now,
            "created_by": user,
            "updated_at": now,
            "updated_by": user,
        }
        self.inserts = (
            db.payload(
                [
                    (s.pk, s.participant_id, s.key, s.oid, s.participate_status, s.access_code, *s.values.values())
                    for s in self.created
                ]
            )
            if self.created
            else None
        )
        changed = [s for s in self.live.values() if s.dirty and not s.new]
        self.updates = (
            db.payload([(s.pk, s.participate_status, s.access_code, now, user, *s.values.values()) for s in changed])
            if changed
            else None
        )
        at = db.stamp(_AUDIT.c.at, self.now)
        source = self.source
        self.audit_same = {"at": at, "username": user, "source": source}
        self.audit = (
            db.payload([(s.pk, action, audit.changes_json(changes)) for s, action, changes in self.events])
            if self.events
            else None
        )

    def _rows(self, db: Bulk) -> Iterator[Statement]:
        if self.inserts is not None:
            yield from db.inserts(_T, _INSERT_COLUMNS, self.inserts, self.insert_same)
        if self.updates is not None:
            yield from db.updates(_T, _UPDATE_COLUMNS, self.updates)
        if self.audit is not None:
            yield from db.inserts(_AUDIT, _AUDIT_COLUMNS, self.audit, self.audit_same)
