"""What deciding a batch reads (roster.participants.decision.BatchReads), in one study and site: the
participants a batch names, the enrollment counts, ID keys, taken OIDs and access codes, and new ids. A
batch costs a fixed number of lookups whatever its size, each through an index (roster.fastsql).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from roster.db import table_of
from roster.fastsql import bulk_for
from roster.participants.fields import WRITABLE_COLUMNS
from roster.participants.models import REMOVED, Participant
from roster.participants.records import State

_T = table_of(Participant)


class _Stored(NamedTuple):
    """A loaded participant's columns before its contact columns (WRITABLE_COLUMNS follow in the row)."""

    id: int
    site_id: int
    participant_id: str
    participant_key: str
    oid: str | None
    status: str
    participate_status: str | None
    access_code: str | None


_STORED_WIDTH = len(_Stored._fields)
_LOAD = ", ".join(f"t.{column}" for column in (*_Stored._fields, *WRITABLE_COLUMNS))


class SessionBatchReads:
    """BatchReads through `session`, from its snapshot or under the study lock."""

    def __init__(self, session: Session, study_id: int, site_id: int) -> None:
        self.session, self.study_id, self.site_id = session, study_id, site_id
        self.bulk = bulk_for(session)
        self.scope = ("study_id", study_id)

    def index_lookups_only(self) -> AbstractContextManager[None]:
        """Around a whole `decide`: every lookup it makes goes by key or id (docs/bulk.md)."""
        return self.bulk.index_lookups_only()

    def participants(self, keys: Collection[str]) -> Iterator[State]:
        for row in self.bulk.by_keys(_LOAD, "participants", "participant_key", keys, scope=self.scope):
            s = _Stored._make(row[:_STORED_WIDTH])
            values = dict(zip(WRITABLE_COLUMNS, row[_STORED_WIDTH:], strict=True))
            yield State(
                s.id,
                s.site_id,
                s.participant_id,
                s.participant_key,
                s.oid,
                s.status,
                s.participate_status,
                s.access_code,
                values,
            )

    def active_counts(self, *, study: bool, site: bool) -> tuple[int, int]:
        active = (_T.c.study_id == self.study_id, _T.c.status != REMOVED)
        count = select(func.count()).select_from(_T).where(*active)
        in_study = (self.session.scalar(count) or 0) if study else 0
        at_site = (self.session.scalar(count.where(_T.c.site_id == self.site_id)) or 0) if site else 0
        return in_study, at_site

    def existing_keys(self, keys: Collection[str]) -> set[str]:
        found = self.bulk.by_keys("t.participant_key", "participants", "participant_key", keys, scope=self.scope)
        return {r[0] for r in found}

    def taken_access_codes(self, candidates: Collection[str]) -> set[str]:
        return {r[0] for r in self.bulk.by_keys("t.access_code", "participants", "access_code", candidates)}

    def taken_oids(self, candidates: Collection[str]) -> set[str]:
        return {r[0] for r in self.bulk.by_keys("t.oid", "participants", "oid", candidates, scope=self.scope)}

    def next_ids(self, count: int, floor: int) -> list[int]:
        return self.bulk.next_ids("participants", count, floor)
