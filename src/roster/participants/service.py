"""The participant API's operations (SPEC §7, §8). Flushes, never commits: the request owns the transaction.

Visibility: a participant is found only by users whose role covers its site (others get 404, so an ID
reveals nothing beyond what the caller may read). Personal data goes out only to roles that may read it
at the participant's site (`Action.READ_PII`); monitors and viewers get the keys in `NON_PII_KEYS`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, delete, false, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.models import User
from roster.auth.permissions import Action, StudyAccess, study_access
from roster.db import utcnow
from roster.errors import DomainError, Forbidden, NotFound
from roster.participants import audit, fields, profile, rules, search, writer
from roster.participants.models import (
    AVAILABLE,
    REMOVED,
    AuditEvent,
    Participant,
    ParticipantMrn,
    participant_key,
)
from roster.participants.schemas import (
    NON_PII_KEYS,
    ParticipantOut,
    SingleParticipantIn,
    SingleParticipantOut,
)
from roster.schemas import Page, PageParams
from roster.studies.models import Site, Study
from roster.studies.service import require_available

# API name -> Participant attribute, for every field a profile update may change.
ATTRIBUTES = {f.name: f.column for f in fields.EDITABLE}
# API name -> the column of its case-insensitive key (uid, empi).
_KEYS = {f.name: f.key_column for f in fields.EDITABLE if f.key_column is not None}
# Lists whose order means nothing: the same values in another order are no change.
_UNORDERED = tuple(f.name for f in fields.EDITABLE if f.kind is fields.Kind.CHOICES)
ACTION_PROFILE_UPDATE = "profile_update"
ACTION_REMOVE = "remove"
ACTION_RESTORE = "restore"


class RecordErrors(DomainError):
    """400 with every rule a record broke: `{"message": first code, "params", "detail", "errors": [...]}`."""

    def __init__(self, errors: Sequence[dict[str, str]]) -> None:
        super().__init__(errors[0]["code"], 400)
        self.errors = list(errors)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": self.errors}


def lock_study(session: Session, study: Study) -> None:
    """Serialises writers of one study (caps, uid/empi/MRN uniqueness) as the bulk writer does, in the
    same order, and tells bulk jobs deciding ahead that the study's participants changed."""
    writer.lock_study(session, study.id)


# ---------------------------------------------------------------------------------------------- lookups


def find(session: Session, study: Study, participant_id: str) -> Participant | None:
    if rules.has_control_character(participant_id):
        return None  # no stored ID holds one, and PostgreSQL refuses NUL in a parameter
    return session.scalar(
        select(Participant).where(
            Participant.study_id == study.id, Participant.participant_key == participant_key(participant_id)
        )
    )


def visible(session: Session, user: User, study: Study, participant_id: str) -> tuple[Participant, StudyAccess]:
    """The participant, for a caller with a role covering its site: noRoleSetUp (403) for a caller with no
    role in the study, participantNotFound (404) for an unknown ID or a site the caller cannot see."""
    access = study_access(session, user, study)
    if not access.has_role:
        raise Forbidden(codes.NO_ROLE_SET_UP)
    participant = find(session, study, participant_id)
    if participant is None or not access.can(Action.READ, participant.site_id):
        raise NotFound(codes.PARTICIPANT_NOT_FOUND_OC, {"participantID": participant_id})
    return participant, access


def writable(session: Session, user: User, study: Study, participant_id: str) -> tuple[Participant, Site]:
    """For changes: visible, study and site available, write permission at the participant's site."""
    participant, access = visible(session, user, study, participant_id)
    return participant, require_write(session, access, study, participant)


def require_write(session: Session, access: StudyAccess, study: Study, participant: Participant) -> Site:
    """Study and the participant's site available (400), then write permission there (403)."""
    site = session.get_one(Site, participant.site_id)
    require_available(study, site)
    access.require(Action.WRITE, participant.site_id)
    return site


# ---------------------------------------------------------------------------------------------- output


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


# ---------------------------------------------------------------------------------------------- changes


def _current(session: Session, participant: Participant) -> dict[str, Any]:
    """The editable fields as they are stored, by API name (pmis with their site ids)."""
    values = {name: getattr(participant, attr) for name, attr in ATTRIBUTES.items()}
    values["race"] = participant.race or []
    values["ethnicities"] = participant.ethnicities or []
    rows = session.execute(
        select(ParticipantMrn.mrn, ParticipantMrn.site_id, Site.name)
        .join(Site, Site.id == ParticipantMrn.site_id)
        .where(ParticipantMrn.participant_id == participant.id)
        .order_by(ParticipantMrn.id)
    )
    values["pmis"] = [{"mrn": mrn, "siteName": name, "siteId": site_id} for mrn, site_id, name in rows]
    return values


def _same(name: str, old: Any, new: Any) -> bool:
    if name == "pmis":
        return {(p["siteId"], p["mrn"]) for p in old} == {(p["siteId"], p["mrn"]) for p in new}
    if name in _UNORDERED:
        return set(old) == set(new) and len(old) == len(new)
    return bool(old == new)


def _plain_pmis(pmis: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"mrn": p["mrn"], "siteName": p["siteName"]} for p in pmis]


def require_not_removed(participant: Participant) -> None:
    """A removed participant is read-only until restored (as bulk rows refuse its ID)."""
    if participant.status == REMOVED:
        raise DomainError(codes.PARTICIPANT_ID_NOT_AVAILABLE, 400, {"participantID": participant.participant_id})


def update_profile(
    session: Session,
    study: Study,
    participant: Participant,
    sent: dict[str, Any],
    *,
    replace: Sequence[str] | None,
    username: str,
) -> bool:
    """PATCH (`replace` None): the fields sent. PUT: every field in `replace`, those left out cleared.
    All errors are raised together (RecordErrors); True when something changed."""
    if replace is not None:
        sent = {name: sent.get(name) for name in replace}
    lock_study(session, study)
    # Read again under the lock: a bulk batch may have changed the participant since it was loaded.
    session.refresh(participant)
    require_not_removed(participant)
    checked = profile.clean(session, study, participant, sent)
    old = _current(session, participant)
    new = {**old, **checked.values}
    judged = {e["column"] for e in checked.errors}
    unique = {k: v for k, v in checked.values.items() if k not in judged or k == "pmis"}
    errors = (
        checked.errors
        + profile.record_errors(new, judged)
        + profile.uniqueness_errors(session, study, participant, unique)
    )
    if errors:
        raise RecordErrors(errors)

    changed = [name for name in checked.values if not _same(name, old[name], new[name])]
    if not changed:
        return False
    try:
        _write_profile(session, participant, old, new, changed, username)
    except IntegrityError:
        # The only unique key a profile can break is an MRN's, taken by a concurrent request.
        raise RecordErrors([profile.error(codes.DUP_MRN, "pmis")]) from None
    return True


def _write_profile(
    session: Session,
    participant: Participant,
    old: dict[str, Any],
    new: dict[str, Any],
    changed: list[str],
    username: str,
) -> None:
    for name in changed:
        if name == "pmis":
            continue
        setattr(participant, ATTRIBUTES[name], new[name])
        if name in _KEYS:
            setattr(participant, _KEYS[name], profile.key(new[name]) if new[name] else None)
    if "pmis" in changed:
        session.execute(delete(ParticipantMrn).where(ParticipantMrn.participant_id == participant.id))
        rows = [
            {
                "participant_id": participant.id,
                "site_id": p["siteId"],
                "mrn": p["mrn"],
                "mrn_key": profile.key(p["mrn"]),
            }
            for p in new["pmis"]
        ]
        if rows:
            session.execute(insert(ParticipantMrn), rows)
    participant.updated_at, participant.updated_by = utcnow(), username
    changes = audit.diff(
        {name: _plain_pmis(old[name]) if name == "pmis" else old[name] for name in changed},
        {name: _plain_pmis(new[name]) if name == "pmis" else new[name] for name in changed},
    )
    audit.write(session, [audit.event(participant.id, username, ACTION_PROFILE_UPDATE, audit.SOURCE_API, changes)])
    session.flush()


def add_or_update(
    session: Session,
    study: Study,
    site: Site,
    body: SingleParticipantIn,
    *,
    register: bool,
    username: str,
) -> dict[str, Any]:
    """The single endpoint: the bulk row's rules and the bulk writer, with one record, answered at once."""
    values = {rules.PARTICIPANT_ID: (body.subject_key or "").strip()}
    written = {rules.PARTICIPANT_ID: "subjectKey"}
    sent = body.model_dump(by_alias=True)
    mobile, phone = (body.mobile_number or "").strip(), (body.phone_number or "").strip()
    for field in fields.CONTACT:
        value, column = (sent[field.name] or "").strip(), field.name
        if field is fields.MOBILE and not mobile and phone:
            # Errors name the column the client used: phoneNumber when only the alias was given.
            value, column = phone, "phoneNumber"
        if value:  # empty means "no value given": the stored one stays, as for a bulk cell
            values[field.name], written[field.name] = value, column
    errors = rules.check_record(values, written, id_method=study.participant_id_method)
    if errors:
        raise RecordErrors([e.as_dict() for e in errors])
    contact = {name: value for name, value in values.items() if name != rules.PARTICIPANT_ID}
    record = writer.Record(participant_id=values[rules.PARTICIPANT_ID], fields=contact)
    [result] = writer.apply_batch(
        session,
        study,
        site,
        [record],
        register=register,
        username=username,
        source=audit.SOURCE_API,
        id_column="subjectKey",
    )
    if result.outcome == writer.FAILED:
        raise RecordErrors([e.as_dict() for e in result.errors])
    return SingleParticipantOut(
        subject_key=result.participant_id,
        subject_oid=result.participant_oid,
        # The writer only ever creates or updates participants that are available.
        status=AVAILABLE,
        participate_status=result.participate_status,
        outcome=result.outcome,
    ).model_dump(by_alias=True)


def _set_status(session: Session, participant: Participant, status: str, action: str, username: str) -> None:
    old = participant.status
    participant.status = status
    participant.updated_at, participant.updated_by = utcnow(), username
    changes = [{"field": "status", "old": old, "new": status}]
    audit.write(session, [audit.event(participant.id, username, action, audit.SOURCE_API, changes)])
    session.flush()


def remove(session: Session, study: Study, participant: Participant, username: str) -> bool:
    """Removed participants stay readable; their ID is refused for new rows and they leave the caps' counts."""
    lock_study(session, study)
    session.refresh(participant)
    if participant.status == REMOVED:
        return False
    _set_status(session, participant, REMOVED, ACTION_REMOVE, username)
    return True


def restore(session: Session, study: Study, site: Site, participant: Participant, username: str) -> bool:
    """A restored participant counts towards the caps again, so a full study or site refuses it."""
    lock_study(session, study)
    session.refresh(participant)
    if participant.status != REMOVED:
        return False
    counted = (Participant.study_id == study.id, Participant.status != REMOVED)
    for cap, where in (
        (study.enrollment_cap, counted),
        (site.enrollment_cap, (*counted, Participant.site_id == site.id)),
    ):
        if cap is not None and (session.scalar(select(func.count(Participant.id)).where(*where)) or 0) >= cap:
            raise DomainError(codes.ENROLLMENT_CAP_REACHED, 400)
    _set_status(session, participant, AVAILABLE, ACTION_RESTORE, username)
    return True


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
