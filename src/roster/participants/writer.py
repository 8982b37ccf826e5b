"""Applies validated participant records to the database (SPEC §5): the bulk importer and the
single-participant endpoint both come through here, so both follow the same database rules.

A batch costs a fixed number of statements whatever its size: the study row lock, one SELECT for the
participants the batch names, one INSERT (COPY on PostgreSQL) for the new ones, one UPDATE for the
changed ones, and one INSERT for their audit events (`roster.fastsql`). Records are applied strictly in
order, each seeing the effect of the ones before it, so a row's outcome does not depend on which batch
it falls in. Flushes, never commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_str

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from roster import codes
from roster.db import utcnow
from roster.fastsql import Bulk
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
from roster.studies.models import Site, Study

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

_T = Participant.__table__
_STUDIES = Study.__table__
_AUDIT = AuditEvent.__table__
_INSERT_COLUMNS = ("id", "study_id", "site_id", "participant_id", "participant_key", "oid", "status", "participate_status",
                   "access_code", "activity_status", "created_at", "created_by", "updated_at", "updated_by", *_COLUMNS)
# name -> PostgreSQL array element type, for the set-at-a-time UPDATE
_UPDATE_COLUMNS = {"participate_status": "text", "access_code": "text", "updated_at": "timestamptz", "updated_by": "text",
                   **dict.fromkeys(_COLUMNS, "text")}
_LOAD_COLUMNS = ", ".join(f"t.{c}" for c in ("id", "site_id", "participant_id", "participant_key", "oid", "status",
                                              "participate_status", "access_code", *_COLUMNS))
_AUDIT_COLUMNS = ("participant_id", "at", "username", "action", "source", "changes")


@dataclass(slots=True)
class Record:
    row: int  # data-row number (1 for the single endpoint)
    participant_id: str  # trimmed; "" only when the study's method is "system" (-> next generated ID)
    fields: dict[str, str]  # contact field (API name) -> trimmed value; absent or empty = keep stored


@dataclass(slots=True)
class Result:
    outcome: str  # created | updated | unchanged | failed
    participant_id: str | None  # as stored (the generated one for system IDs); as given when failed
    participant_oid: str | None
    participate_status: str | None
    errors: list[RuleError] = field(default_factory=list)
    participant_pk: int | None = None


class _State:
    """One participant as this batch sees it: loaded from the database or created by an earlier record."""

    __slots__ = ("pk", "site_id", "participant_id", "key", "oid", "status", "participate_status", "access_code", "values", "new", "dirty", "needs_code")

    def __init__(self, pk, site_id, participant_id, key, oid, status, participate_status, access_code, values, new=False):
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


def apply_batch(
    session: Session,
    study: Study,
    site: Site,
    records: Sequence[Record],
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
    batch = _Batch(session, study.id, site.id, register, username, source, id_column)
    return batch.run(records)


class _Batch:
    def __init__(self, session: Session, study_id: int, site_id: int, register: bool, username: str, source: str, id_column: str):
        self.session = session
        self.study_id = study_id
        self.site_id = site_id
        self.register = register
        self.username = username
        self.source = source
        self.id_column = id_column
        self.now = utcnow()
        self.live: dict[str, _State] = {}
        self.created: list[_State] = []
        # (state, action, [(field, old, new)]): audit rows once new participants have ids.
        self.events: list[tuple[_State, str, list[tuple]]] = []
        self.counts: list[int] | None = None  # [study, site] non-removed participants, when a cap applies

    def run(self, records: Sequence[Record]) -> list[Result]:
        # The study row lock serialises every writer of this study's participants (PostgreSQL; SQLite's
        # BEGIN IMMEDIATE already does): caps, the ID counter and key uniqueness hold across concurrent jobs.
        study = self.session.execute(
            select(_STUDIES.c.id_counter, _STUDIES.c.enrollment_cap, _STUDIES.c.participant_id_method, _STUDIES.c.participant_id_template)
            .where(_STUDIES.c.id == self.study_id)
            .with_for_update()
        ).one()
        self.db = Bulk(self.session)
        with self.db.keyed():
            return self._run(records, study)

    def _run(self, records: Sequence[Record], study) -> list[Result]:
        self.study_cap = study.enrollment_cap
        self.site_cap = self.session.scalar(select(Site.__table__.c.enrollment_cap).where(Site.__table__.c.id == self.site_id))
        generating = sum(1 for r in records if not r.participant_id)
        ids = IdGenerator(self.db, self.study_id, study.participant_id_template, study.id_counter) if (
            generating and study.participant_id_method == "system" and study.participant_id_template
        ) else None

        self._load({participant_key(r.participant_id) for r in records if r.participant_id})
        states: list[_State | None] = []
        apply = self._apply
        results = [apply(r, ids, generating, states) for r in records]

        if ids is not None and ids.counter != study.id_counter:
            # updated_at stays: the counter moving is not a change of the study's settings.
            self.session.execute(
                update(_STUDIES).where(_STUDIES.c.id == self.study_id).values(id_counter=ids.counter, updated_at=_STUDIES.c.updated_at)
            )
        self._issue_access_codes()
        self._assign_oids()
        self._write()
        for result, state in zip(results, states):
            if state is not None:
                result.participant_oid = state.oid
                result.participate_status = state.participate_status
                result.participant_pk = state.pk
        return results

    # -- reading ---------------------------------------------------------------------------------

    def _load(self, keys: set[str]) -> None:
        if not keys:
            return
        rows = self.db.by_keys(_LOAD_COLUMNS, "participants", "participant_key", keys, scope=("study_id", self.study_id))
        live = self.live
        for row in rows:
            live[row[3]] = _State(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], dict(zip(_COLUMNS, row[8:])))

    def _cap_reached(self) -> bool:
        if self.study_cap is None and self.site_cap is None:
            return False
        if self.counts is None:
            active = (_T.c.study_id == self.study_id, _T.c.status != REMOVED)
            study_count = self.session.scalar(select(func.count()).select_from(_T).where(*active)) if self.study_cap is not None else 0
            site_count = self.session.scalar(select(func.count()).select_from(_T).where(*active, _T.c.site_id == self.site_id)) if self.site_cap is not None else 0
            self.counts = [study_count, site_count]
        return (self.study_cap is not None and self.counts[0] >= self.study_cap) or (
            self.site_cap is not None and self.counts[1] >= self.site_cap
        )

    # -- one record ------------------------------------------------------------------------------

    def _fail(self, participant_id: str | None, code: str) -> Result:
        return Result(FAILED, participant_id, None, None, [rule_error(code, self.id_column)])

    def _apply(self, record: Record, ids: IdGenerator | None, generating: int, states: list) -> Result:
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

    def _create(self, record: Record, pid: str, key: str, states: list) -> Result:
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

    def _update(self, record: Record, state: _State, states: list) -> Result:
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
            waiting = []
            for code, state in fresh.items():
                if code in taken:
                    waiting.append(state)
                else:
                    state.access_code = code

    def _taken_oids(self, candidates: set[str]) -> set[str]:
        return {r[0] for r in self.db.by_keys("t.oid", "participants", "oid", candidates, scope=("study_id", self.study_id))}

    def _assign_oids(self) -> None:
        if not self.created:
            return
        bases = {s.key: oid_base(s.participant_id) for s in self.created}
        taken = self._taken_oids(set(bases.values()))
        used: set[str] = set()
        clashing: list[_State] = []
        for state in self.created:
            base = bases[state.key]
            if base in taken or base in used:
                clashing.append(state)
            else:
                state.oid = base
                used.add(base)
        suffix = 2
        while clashing:
            # IDs like "P-1" and "P1" share a base: the later one gets the first free "_N" suffix
            # (a base never holds "_", so suffixed OIDs cannot clash with bases).
            candidates = {s.key: f"{bases[s.key]}_{suffix}" for s in clashing}
            taken = self._taken_oids(set(candidates.values()))
            still = []
            for state in clashing:
                candidate = candidates[state.key]
                if candidate in taken or candidate in used:
                    still.append(state)
                else:
                    state.oid = candidate
                    used.add(candidate)
            clashing = still
            suffix += 1

    def _write(self) -> None:
        db, user = self.db, self.username
        now = db.bind(_T.c.created_at, self.now)
        if self.created:
            for state, pk in zip(self.created, db.next_ids("participants", len(self.created))):
                state.pk = pk
            db.insert("participants", _INSERT_COLUMNS, [
                (s.pk, self.study_id, s.site_id, s.participant_id, s.key, s.oid, AVAILABLE, s.participate_status, s.access_code,
                 "Active", now, user, now, user, *s.values.values())
                for s in self.created
            ])
        changed = [s for s in self.live.values() if s.dirty and not s.new]
        if changed:
            db.update("participants", _UPDATE_COLUMNS, [
                (s.pk, s.participate_status, s.access_code, now, user, *s.values.values()) for s in changed
            ])
        if self.events:
            at = db.bind(_AUDIT.c.at, self.now)
            source = self.source
            db.insert("audit_events", _AUDIT_COLUMNS, [
                (s.pk, at, user, action, source, changes_json(changes)) for s, action, changes in self.events
            ])


def changes_json(changes: list[tuple[str, str | None, str | None]]) -> str:
    """`[{"field", "old", "new"}, …]` as JSON (audit.diff's shape), built directly: at bulk rates the
    general encoder costs more than the rest of the row. Field names are fixed identifiers."""
    return "[" + ",".join([
        '{"field":"%s","old":%s,"new":%s}' % (f, "null" if o is None else _json_str(o), "null" if n is None else _json_str(n))
        for f, o, n in changes
    ]) + "]"
