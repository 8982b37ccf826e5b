"""Deciding a batch of validated participant records (SPEC §5): every record's outcome, the participants
to create and change, their audit events, IDs, OIDs and access codes. `decide()` writes nothing; it reads
what it needs through a `BatchReads` (roster.participants.batch_reads) and returns a frozen `Decision`,
which roster.participants.batch turns into statements. Records are applied strictly in order, each seeing
the effect of the ones before it, so a row's outcome does not depend on which batch it falls in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from roster import codes
from roster.participants.fields import CONTACT_COLUMNS, WRITABLE_COLUMNS
from roster.participants.identifiers import MAX_ID_LENGTH, IdGenerator, new_access_code, oid_base
from roster.participants.models import AVAILABLE, REMOVED, participant_key
from roster.participants.records import (
    CREATED,
    FAILED,
    PARTICIPATE_CREATED,
    UNCHANGED,
    UPDATED,
    BatchContext,
    RecordLike,
    Result,
    State,
    StudyLike,
)
from roster.participants.rules import rule_error

# (API field name, old value, new value). A plain tuple: deciding makes several per row, and a NamedTuple's
# constructor stood out in the bulk worker's profile (bench/HISTORY.md).
Change = tuple[str, str | None, str | None]


class Event(NamedTuple):
    """An audit event, written once the participant has its id."""

    state: State
    action: str  # create | update | register
    changes: list[Change]


class BatchReads(Protocol):
    """What deciding reads, from one snapshot or under the study lock (roster.participants.batch_reads)."""

    def participants(self, keys: Collection[str]) -> Iterable[State]:
        """The study's participants with these ID keys."""

    def active_counts(self, *, study: bool, site: bool) -> tuple[int, int]:
        """Non-removed participants in the study and at the site (0 where not asked)."""

    def existing_keys(self, keys: Collection[str]) -> set[str]:
        """Which of these ID keys the study has."""

    def taken_access_codes(self, candidates: Collection[str]) -> set[str]:
        """Which of these access codes any participant holds (they are unique across Roster)."""

    def taken_oids(self, candidates: Collection[str]) -> set[str]:
        """Which of these OIDs the study has."""

    def next_ids(self, count: int, floor: int) -> list[int]:
        """Primary keys for new participants; `floor`: ids the job gave out that are not written yet."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A decided batch: what to write, and what the next batch starts from."""

    context: BatchContext
    now: dt.datetime
    results: tuple[Result, ...]  # in record order
    states: tuple[State | None, ...]  # each record's participant (None for a failed record)
    live: Mapping[str, State]  # every participant the batch read or made, by ID key, as it leaves them
    created: tuple[State, ...]  # in creation order, ids ascending
    changed: tuple[State, ...]  # existing participants with new values or a new access code
    events: tuple[Event, ...]
    counts: tuple[int, int] | None  # non-removed participants (study, site), when a cap was checked
    counter_before: int  # the study's ID counter before and after the batch
    counter_after: int
    issued: frozenset[str]  # access codes it gives out
    oids: frozenset[str]  # OIDs of the participants it creates
    max_pk: int  # the largest participant id given out so far in the job


def decide(
    records: Sequence[RecordLike],
    *,
    context: BatchContext,
    study: StudyLike,
    site_cap: int | None,
    reads: BatchReads,
    after: Decision | None,
    now: dt.datetime,
) -> Decision:
    """Every record's outcome, from what `reads` sees plus the batch before (`after`), which may not be
    in the snapshot yet."""
    return _Deciding(context, study, site_cap, reads, after).run(records, now)


class _Deciding:
    """The working state of one `decide` call."""

    def __init__(
        self, context: BatchContext, study: StudyLike, site_cap: int | None, reads: BatchReads, after: Decision | None
    ) -> None:
        self.context, self.reads, self.after = context, reads, after
        self.study, self.study_cap, self.site_cap = study, study.enrollment_cap, site_cap
        self.live: dict[str, State] = {}
        self.created: list[State] = []
        self.events: list[Event] = []
        self.counts: list[int] | None = list(after.counts) if after is not None and after.counts is not None else None

    def run(self, records: Sequence[RecordLike], now: dt.datetime) -> Decision:
        after, study = self.after, self.study
        counter_before = after.counter_after if after is not None else study.id_counter
        generating = sum(1 for r in records if not r.participant_id)
        ids = (
            IdGenerator(self.reads.existing_keys, study.participant_id_template, counter_before)
            if (generating and study.participant_id_method == "system" and study.participant_id_template)
            else None
        )
        if ids is not None and after is not None:
            ids.existing.update(s.key for s in after.created)
        self._load({participant_key(r.participant_id) for r in records if r.participant_id})
        states: list[State | None] = []
        apply = self._apply
        results = [apply(r, ids, generating, states) for r in records]
        issued = self._issue_access_codes()
        oids = self._assign_oids()
        max_pk = self._assign_ids()
        for result, state in zip(results, states, strict=True):
            if state is not None:
                result.participant_oid = state.oid
                result.participate_status = state.participate_status
        return Decision(
            context=self.context,
            now=now,
            results=tuple(results),
            states=tuple(states),
            live=self.live,
            created=tuple(self.created),
            changed=tuple(s for s in self.live.values() if s.dirty and not s.new),
            events=tuple(self.events),
            counts=(self.counts[0], self.counts[1]) if self.counts is not None else None,
            counter_before=counter_before,
            counter_after=ids.counter if ids is not None else counter_before,
            issued=frozenset(issued),
            oids=frozenset(oids),
            max_pk=max_pk,
        )

    def _load(self, keys: set[str]) -> None:
        if self.after is not None:
            # The batch before may not be in the snapshot yet: its participants are taken as it left them.
            earlier = self.after.live
            for key in [k for k in keys if k in earlier]:
                self.live[key] = earlier[key].follow()
                keys.discard(key)
        if keys:
            self.live.update((state.key, state) for state in self.reads.participants(keys))

    def _cap_reached(self) -> bool:
        if self.study_cap is None and self.site_cap is None:
            return False
        if self.counts is None:
            study, site = self.reads.active_counts(study=self.study_cap is not None, site=self.site_cap is not None)
            self.counts = [study, site]
        return (self.study_cap is not None and self.counts[0] >= self.study_cap) or (
            self.site_cap is not None and self.counts[1] >= self.site_cap
        )

    # -- one record ------------------------------------------------------------------------------

    def _fail(self, participant_id: str | None, code: str, states: list[State | None]) -> Result:
        states.append(None)
        return Result(FAILED, participant_id, None, None, [rule_error(code, self.context.id_column)])

    def _apply(
        self, record: RecordLike, ids: IdGenerator | None, generating: int, states: list[State | None]
    ) -> Result:
        pid = record.participant_id
        if not pid:
            if ids is None:
                # The field rules refuse an empty ID for manual studies; a system study without a
                # template cannot generate one either.
                return self._fail(None, codes.MISSING_PARTICIPANT_ID, states)
            if self._cap_reached():
                return self._fail(None, codes.ENROLLMENT_CAP_REACHED, states)
            pid = ids.peek(self.live, generating)
            if len(pid) > MAX_ID_LENGTH:
                # The template has grown past the column: refuse rather than truncate.
                return self._fail(pid, codes.PARTICIPANT_ID_TOO_LONG, states)
            ids.take()
        key = participant_key(pid)
        state = self.live.get(key)
        if state is None:
            if self._cap_reached():
                return self._fail(pid, codes.ENROLLMENT_CAP_REACHED, states)
            return self._create(record, pid, key, states)
        if state.site_id != self.context.site_id:
            return self._fail(pid, codes.PARTICIPANT_ID_AT_ANOTHER_SITE, states)
        if state.status == REMOVED:
            return self._fail(pid, codes.PARTICIPANT_ID_NOT_AVAILABLE, states)
        return self._update(record, state, states)

    def _create(self, record: RecordLike, pid: str, key: str, states: list[State | None]) -> Result:
        values: dict[str, Any] = dict.fromkeys(WRITABLE_COLUMNS)
        changes: list[Change] = [("participantId", None, pid), ("status", None, AVAILABLE)]
        for name, value in record.fields.items():
            if value:
                values[CONTACT_COLUMNS[name]] = value
                changes.append((name, None, value))
        state = State(None, self.context.site_id, pid, key, None, AVAILABLE, None, None, values, new=True)
        self.live[key] = state
        self.created.append(state)
        if self.counts is not None:
            self.counts[0] += 1
            self.counts[1] += 1
        self.events.append(Event(state, "create", changes))
        self._register(state)
        states.append(state)
        return Result(CREATED, pid, None, None)

    def _update(self, record: RecordLike, state: State, states: list[State | None]) -> Result:
        changes: list[Change] = []
        values = state.values
        for name, value in record.fields.items():
            column = CONTACT_COLUMNS[name]
            old = values[column]
            if value and old != value:
                changes.append((name, old, value))
                values[column] = value
        if changes:
            state.dirty = True
            self.events.append(Event(state, "update", changes))
        registered = self._register(state)
        states.append(state)
        return Result(UPDATED if changes or registered else UNCHANGED, state.participant_id, None, None)

    def _register(self, state: State) -> bool:
        """register=y: a participant without an access code gets one; one that has a code keeps it."""
        if not self.context.register or state.access_code is not None or state.needs_code:
            return False
        state.needs_code = True
        state.dirty = True
        old = state.participate_status
        state.participate_status = PARTICIPATE_CREATED
        # The code itself stays out of the trail: it is a credential.
        self.events.append(Event(state, "register", [("participateStatus", old, PARTICIPATE_CREATED)]))
        return True

    # -- identifiers -----------------------------------------------------------------------------

    def _issue_access_codes(self) -> set[str]:
        issued: set[str] = set()
        waiting = [s for s in self.live.values() if s.needs_code]
        while waiting:
            fresh: dict[str, State] = {}
            for state in waiting:
                code = new_access_code()
                while code in fresh:
                    code = new_access_code()
                fresh[code] = state
            # Unique across Roster (the column is): a clash means drawing again, which at 31^9 codes
            # practically never happens.
            taken = self.reads.taken_access_codes(fresh.keys())
            if self.after is not None:
                taken |= self.after.issued & fresh.keys()
            waiting = []
            for code, state in fresh.items():
                if code in taken:
                    waiting.append(state)
                else:
                    state.access_code = code
                    issued.add(code)
        return issued

    def _assign_oids(self) -> set[str]:
        bases = {s.key: oid_base(s.participant_id) for s in self.created}
        used: set[str] = set()
        waiting, suffix = self.created, 1
        while waiting:
            # Each takes its base if free. IDs like "P-1" and "P1" share a base: the later one gets the first
            # free "_N" suffix (a base never holds "_", so suffixed OIDs cannot clash with bases).
            candidates = {s.key: bases[s.key] if suffix == 1 else f"{bases[s.key]}_{suffix}" for s in waiting}
            wanted = set(candidates.values())
            taken = self.reads.taken_oids(wanted)
            if self.after is not None:
                taken |= self.after.oids & wanted
            still = []
            for state in waiting:
                candidate = candidates[state.key]
                if candidate in taken or candidate in used:
                    still.append(state)
                else:
                    state.oid = candidate
                    used.add(candidate)
            waiting, suffix = still, suffix + 1
        return used

    def _assign_ids(self) -> int:
        """Ids for the new participants, so that their rows and audit events go in with them known.
        Returns the largest id the job has given out so far."""
        floor = self.after.max_pk if self.after is not None else 0
        top = floor
        for state, pk in zip(self.created, self.reads.next_ids(len(self.created), floor), strict=True):
            state.pk = top = pk
        return max(floor, top)
