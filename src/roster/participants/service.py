"""The participant API's lookups and changes (SPEC §7, §8); its reads are roster.participants.reads.
Flushes, never commits: the request owns the transaction.

Visibility: a participant is found only by users whose role covers its site (others get 404, so an ID
reveals nothing beyond what the caller may read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.models import User
from roster.auth.permissions import Action, StudyAccess, study_access
from roster.db import utcnow
from roster.errors import DomainError, Forbidden, NotFound
from roster.participants import audit, fields, profile, rules, writer
from roster.participants.models import (
    AVAILABLE,
    REMOVED,
    Participant,
    ParticipantMrn,
    participant_key,
)
from roster.participants.schemas import (
    SingleParticipantIn,
    SingleParticipantOut,
)
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
