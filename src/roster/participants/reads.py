"""The participant API's reads (SPEC §7, §8): records as the API returns them, the list with its
filters and search, the audit trail, the Participate access link. Callers find the participant and
check access first (roster.participants.service.visible); personal data goes out only to roles that may
read it at the participant's site (`Action.READ_PII`), others get the keys in `NON_PII_KEYS`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, false, func, select
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.permissions import Action, StudyAccess
from roster.errors import NotFound
from roster.participants import profile, rules, search
from roster.participants.models import AuditEvent, Participant, ParticipantMrn
from roster.participants.schemas import NON_PII_KEYS, ParticipantOut
from roster.schemas import Page, PageParams
from roster.studies.models import Site, Study


class Records:
    """Turns participants into API records with two queries per page (sites, MRNs), never one per row."""

    def __init__(self, session: Session, study: Study) -> None:
        self.session = session
        self.sites = {s.id: s for s in session.scalars(select(Site).where(Site.study_id == study.id))}

    def mrns(self, ids: Iterable[int]) -> dict[int, list[dict[str, str]]]:
        out: dict[int, list[dict[str, str]]] = defaultdict(list)
        ids = list(ids)
        if ids:
            rows = self.session.execute(
                select(ParticipantMrn.participant_id, ParticipantMrn.mrn, ParticipantMrn.site_id)
                .where(ParticipantMrn.participant_id.in_(ids))
                .order_by(ParticipantMrn.id)
            )
            for pid, mrn, site_id in rows:
                out[pid].append({"mrn": mrn, "siteName": self.sites[site_id].name})
        return out

    def many(self, participants: Sequence[Participant], access: StudyAccess) -> list[dict[str, Any]]:
        mrns = self.mrns(p.id for p in participants if access.can(Action.READ_PII, p.site_id))
        return [self._one(p, mrns.get(p.id, []), access.can(Action.READ_PII, p.site_id)) for p in participants]

    def one(self, participant: Participant, access: StudyAccess) -> dict[str, Any]:
        return self.many([participant], access)[0]

    def _one(self, p: Participant, pmis: list[dict[str, str]], pii: bool) -> dict[str, Any]:
        record = ParticipantOut(
            id=p.id,
            participant_id=p.participant_id,
            subject_key=p.participant_id,
            subject_oid=p.oid,
            site_oid=self.sites[p.site_id].oid,
            status=p.status,
            participate_status=p.participate_status,
            first_name=p.first_name,
            last_name=p.last_name,
            email_address=p.email_address,
            mobile_number=p.mobile_number,
            identifier=p.identifier,
            middle_name=p.middle_name,
            uid=p.uid,
            empi=p.empi,
            birth_date=p.birth_date,
            death_date=p.death_date,
            vital_status=p.vital_status,
            gender=p.gender,
            race=p.race or [],
            ethnicities=p.ethnicities or [],
            sex_genotype=p.sex_genotype,
            pmis=pmis,
            activity_status=p.activity_status or profile.DEFAULT_ACTIVITY_STATUS,
            created_at=p.created_at,
            created_by=p.created_by,
            updated_at=p.updated_at,
            updated_by=p.updated_by,
        ).model_dump(mode="json", by_alias=True)
        # Monitors and viewers: the personal keys are left out, not nulled, so nothing hints at a value.
        return record if pii else {k: v for k, v in record.items() if k in NON_PII_KEYS}


def list_filters(
    session: Session,
    study: Study,
    access: StudyAccess,
    *,
    site: Site | None = None,
    status: str | None = None,
    q: str | None = None,
) -> list[ColumnElement[bool]]:
    """The list's WHERE: the study, `site` or the sites the caller may read, `status`, the term `q`."""
    term = q.strip() if q else ""
    # With a term the search's indexes find the rows; a site filter SQLite could read through an index
    # (it has no statistics) would tempt it to read whole sites instead, so then it is a plain filter.
    site_id = search.unindexed(Participant.site_id) if term else Participant.site_id
    where: list[ColumnElement[bool]] = [Participant.study_id == study.id]
    if site is not None:
        where.append(site_id == site.id)
    else:
        sites = access.site_ids(Action.READ)
        if sites is not None:
            where.append(site_id.in_(sorted(sites)))
    if status:
        where.append(Participant.status == status)
    if term:
        # Stored values hold no control characters (the rules refuse them), so such a term matches nothing.
        where.append(false() if rules.has_control_character(term) else search.condition(session, term, access))
    return where


def page_of(where: Sequence[ColumnElement[bool]], page: PageParams) -> Select[Participant]:
    """Oldest first. The bounds as literals: with `LIMIT ?` SQLite's planner walks the whole primary key
    for the ORDER BY instead of the search's indexes (bench/search.py); they are validated integers."""
    offset: BindParameter[int] = bindparam(None, page.offset, literal_execute=True)
    limit: BindParameter[int] = bindparam(None, page.page_size, literal_execute=True)
    return select(Participant).where(*where).order_by(Participant.id).offset(offset).limit(limit)


def list_participants(
    session: Session,
    study: Study,
    access: StudyAccess,
    page: PageParams,
    *,
    site: Site | None = None,
    status: str | None = None,
    q: str | None = None,
) -> Page[dict[str, Any]]:
    """Oldest first; limited to the sites the caller may read. `q`: roster.participants.search."""
    where = list_filters(session, study, access, site=site, status=status, q=q)
    total = session.scalar(select(func.count(Participant.id)).where(*where)) or 0
    rows = list(session.scalars(page_of(where, page)))
    return Page[dict[str, Any]](
        items=Records(session, study).many(rows, access), page=page.page, page_size=page.page_size, total=total
    )


def access_link(base_url: str, study: Study, participant: Participant, include_code: bool) -> dict[str, Any]:
    """Where the participant signs in to Participate; the code only when asked for (it is a credential)."""
    if not participant.access_code:
        raise NotFound(codes.PARTICIPANT_NOT_REGISTERED, {"participantID": participant.participant_id})
    host = base_url.rstrip("/")
    link = f"{host}/participate/{quote(study.oid, safe='')}/login"
    if include_code:
        link += f"?accessCode={participant.access_code}"
    return {"accessCode": participant.access_code if include_code else None, "host": host, "accessLink": link}


def audit_page(session: Session, participant: Participant, pii: bool, page: PageParams) -> Page[dict[str, Any]]:
    """Oldest first. For monitors and viewers the values of personal fields are withheld (the field name
    and the fact of a change are not personal)."""
    where = AuditEvent.participant_id == participant.id
    total = session.scalar(select(func.count(AuditEvent.id)).where(where)) or 0
    events = session.scalars(
        select(AuditEvent).where(where).order_by(AuditEvent.id).offset(page.offset).limit(page.page_size)
    )
    items = []
    for e in events:
        changes = []
        for change in e.changes or []:
            hidden = not pii and change.get("field") not in NON_PII_KEYS
            changes.append(
                {
                    "field": change.get("field"),
                    "old": None if hidden else change.get("old"),
                    "new": None if hidden else change.get("new"),
                    "redacted": hidden,
                }
            )
        items.append(
            {
                "id": e.id,
                "at": _iso(e.at),
                "username": e.username,
                "action": e.action,
                "source": e.source,
                "changes": changes,
            }
        )
    return Page[dict[str, Any]](items=items, page=page.page, page_size=page.page_size, total=total)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
