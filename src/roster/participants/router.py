"""The OpenClinica-style participant API (SPEC §7) under `P/clinicaldata/studies/{studyOID}`.

Check order: token (before the body is read), study, then — for the single POST, the bulk endpoint's
order — site, study/site available, role, write permission, `register`, participateActive, body; for a
participant's own resource: a role in the study (noRoleSetUp), the participant visible to the caller
(404 otherwise), study/site available, write permission (or PII permission for the access link), body.
Participant IDs are matched case-insensitively. SPEC §5 allows `/` in an ID; a client sends it encoded
(`%2F`), and the server decodes the path before routing, so the ID is a `path` parameter and
`…/participants/X%2Faudit` would also match `…/participants/{X}/audit`. A sub-resource route therefore
matches only when its last segment is literally there (SubresourceRoute): `X%2Faudit` is the participant
"X/audit", `X/audit` the audit trail of "X" (docs/decisions.md, Participant API).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.routing import Match
from starlette.types import Scope

from roster import codes
from roster.auth.models import User
from roster.auth.permissions import Action, require_site_action, study_access
from roster.deps import CurrentUser, SessionDep, SettingsDep, TokenFirstRoute
from roster.errors import DomainError
from roster.openapi import errors, json_body
from roster.participants import reads, schemas, service
from roster.participants.models import Participant
from roster.schemas import YES_NO_SCHEMA, Page, PageParams, page_params, parse_yes_no
from roster.studies.models import Study
from roster.studies.service import get_site, get_study, require_available

router = APIRouter(
    prefix="/pages/auth/api/clinicaldata/studies/{studyOID}", tags=["participants"], route_class=TokenFirstRoute
)


class SubresourceRoute(TokenFirstRoute):
    """`…/participants/{participantID}/<name>` that matches only when `/<name>` is a real path segment of the
    request as sent, not the tail of an ID holding an encoded `/` (which the server decoded before routing).
    Not matching, the request falls through to the participant's own routes: GET `X%2Faudit` reads
    participant "X/audit", POST `X%2Fremove` is 405 (no POST on a participant)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        raw_path = scope.get("raw_path")
        if match is not Match.NONE and isinstance(raw_path, bytes):
            # Last segment as sent (split on literal slashes only), then decoded: `aud%69t` still counts.
            sent = unquote(raw_path.decode("latin-1").rpartition("/")[2], encoding="utf-8", errors="replace")
            if sent != self.path.rpartition("/")[2]:
                return Match.NONE, {}
        return match, child_scope


class ParticipantRoute(TokenFirstRoute):
    """`…/participants/{participantID}` that leaves `X/audit` (a literal slash before a sub-resource's name)
    to the sub-resource: PUT on an audit trail is 405, not a write to participant "X/audit"."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        raw_path = scope.get("raw_path")
        if match is not Match.NONE and isinstance(raw_path, bytes):
            head, _, last = raw_path.decode("latin-1").rpartition("/")
            if not head.endswith("/participants") and unquote(last, encoding="utf-8", errors="replace") in SUBRESOURCES:
                return Match.NONE, {}
        return match, child_scope


SUBRESOURCES = ("accessLink", "audit", "remove", "restore")


def subresource(
    method: str, path: str, route_class: type[TokenFirstRoute] = SubresourceRoute, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`@router.<method>(path)` with SubresourceRoute (FastAPI's decorators take no route class)."""

    def decorator(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(path, endpoint, methods=[method], route_class_override=route_class, **kwargs)
        return endpoint

    return decorator


StudyOID = Annotated[str, Path(alias="studyOID")]
SiteOID = Annotated[str, Path(alias="siteOID")]
ParticipantID = Annotated[str, Path(alias="participantID", description="Matched case-insensitively")]
Pages = Annotated[PageParams, Depends(page_params)]
Status = Annotated[Literal["available", "removed"] | None, Query()]
Search = Annotated[
    str | None,
    Query(
        max_length=255,
        description="Matches the ID and OID; names, email, phone, identifier, uid, empi and MRNs only where the caller "
        "may read personal data",
    ),
]
_RECORD: dict[int | str, dict[str, Any]] = {
    200: {
        "model": schemas.ParticipantOut,
        "description": "The participant (personal keys left out for monitors and viewers)",
    }
}
_LIST: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Page[schemas.ParticipantOut],
        "description": "Participants (personal keys left out where the caller may not read them)",
    }
}
_AUDIT: dict[int | str, dict[str, Any]] = {
    200: {"model": Page[schemas.AuditEventOut], "description": "Audit events, oldest first"}
}


async def raw_body(request: Request) -> bytes:
    """Read after the token check (TokenFirstRoute) and the dependencies before it; parsed by the endpoint."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


@router.post(
    "/sites/{siteOID}/participants",
    response_model=schemas.SingleParticipantOut,
    responses=errors(400, 403),
    openapi_extra=json_body(schemas.SingleParticipantIn),
)
def add_participant(
    study_oid: StudyOID,
    site_oid: SiteOID,
    user: CurrentUser,
    session: SessionDep,
    raw: RawBody,
    register: Annotated[
        str | None, Query(description="y|yes|n|no, any case; absent = n", json_schema_extra=YES_NO_SCHEMA)
    ] = None,
) -> dict[str, Any]:
    """Adds or updates one participant with the bulk row's rules; 400 lists every rule broken."""
    study = get_study(session, study_oid)
    site = get_site(session, study, site_oid)
    require_available(study, site)
    require_site_action(session, user, study, site, Action.WRITE)
    registering = parse_yes_no(register, codes.INVALID_REGISTER_PARAMETER)
    if registering and not study.participate_active:
        raise DomainError(codes.PARTICIPATE_INACTIVE, 400)
    body = schemas.parse_body(schemas.SingleParticipantIn, raw)
    return service.add_or_update(session, study, site, body, register=registering, username=user.username)


@router.get("/participants", responses={**_LIST, **errors(403)})
def list_study_participants(
    study_oid: StudyOID,
    user: CurrentUser,
    session: SessionDep,
    page: Pages,
    status: Status = None,
    q: Search = None,
    site_oid: Annotated[str | None, Query(alias="siteOID")] = None,
) -> dict[str, Any]:
    """Participants of the sites the caller may read (every site for a study-level role), oldest first."""
    study = get_study(session, study_oid)
    access = study_access(session, user, study)
    access.require_study(Action.READ)
    site = None
    if site_oid:
        site = get_site(session, study, site_oid)
        access.require(Action.READ, site.id)
    return reads.list_participants(session, study, access, page, site=site, status=status, q=q).model_dump(
        by_alias=True
    )


@router.get("/sites/{siteOID}/participants", responses={**_LIST, **errors(403)})
def list_site_participants(
    study_oid: StudyOID,
    site_oid: SiteOID,
    user: CurrentUser,
    session: SessionDep,
    page: Pages,
    status: Status = None,
    q: Search = None,
) -> dict[str, Any]:
    study = get_study(session, study_oid)
    site = get_site(session, study, site_oid)
    access = require_site_action(session, user, study, site, Action.READ)
    return reads.list_participants(session, study, access, page, site=site, status=status, q=q).model_dump(
        by_alias=True
    )


@subresource(
    "GET",
    "/participants/{participantID:path}/accessLink",
    response_model=schemas.AccessLinkOut,
    responses=errors(400, 403),
)
def access_link(
    study_oid: StudyOID,
    participant_id: ParticipantID,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    include_access_code: Annotated[
        str | None, Query(alias="includeAccessCode", json_schema_extra=YES_NO_SCHEMA)
    ] = None,
) -> dict[str, Any]:
    """404 participantNotRegistered until the participant has an access code. Personal data: PII roles only."""
    study = get_study(session, study_oid)
    participant, access = service.visible(session, user, study, participant_id)
    access.require(Action.READ_PII, participant.site_id)
    include = parse_yes_no(include_access_code, codes.INVALID_INCLUDE_ACCESS_CODE)
    return reads.access_link(settings.public_base_url, study, participant, include)


@subresource("GET", "/participants/{participantID:path}/audit", responses={**_AUDIT, **errors(403)})
def participant_audit(
    study_oid: StudyOID, participant_id: ParticipantID, user: CurrentUser, session: SessionDep, page: Pages
) -> dict[str, Any]:
    """The audit trail, oldest first; values of personal fields withheld from monitors and viewers."""
    study = get_study(session, study_oid)
    participant, access = service.visible(session, user, study, participant_id)
    pii = access.can(Action.READ_PII, participant.site_id)
    return reads.audit_page(session, participant, pii, page).model_dump(by_alias=True)


@subresource("POST", "/participants/{participantID:path}/remove", responses={**_RECORD, **errors(400, 403)})
def remove_participant(
    study_oid: StudyOID, participant_id: ParticipantID, user: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    """Idempotent: removing a removed participant changes nothing and writes no audit event."""
    study = get_study(session, study_oid)
    participant, _site = service.writable(session, user, study, participant_id)
    service.remove(session, study, participant, user.username)
    return _record(session, user, study, participant)


@subresource("POST", "/participants/{participantID:path}/restore", responses={**_RECORD, **errors(400, 403)})
def restore_participant(
    study_oid: StudyOID, participant_id: ParticipantID, user: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    study = get_study(session, study_oid)
    participant, site = service.writable(session, user, study, participant_id)
    service.restore(session, study, site, participant, user.username)
    return _record(session, user, study, participant)


@subresource("GET", "/participants/{participantID:path}", ParticipantRoute, responses={**_RECORD, **errors(403)})
def get_participant(
    study_oid: StudyOID, participant_id: ParticipantID, user: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    study = get_study(session, study_oid)
    participant, access = service.visible(session, user, study, participant_id)
    return reads.Records(session, study).one(participant, access)


@subresource(
    "PUT",
    "/participants/{participantID:path}",
    ParticipantRoute,
    responses={**_RECORD, **errors(400, 403)},
    openapi_extra=json_body(schemas.ProfileIn),
)
def replace_participant(
    study_oid: StudyOID, participant_id: ParticipantID, user: CurrentUser, session: SessionDep, raw: RawBody
) -> dict[str, Any]:
    """Replaces the contact and profile fields: those left out become empty (activityStatus: Active)."""
    return _update(session, user, study_oid, participant_id, raw, replace=True)


@subresource(
    "PATCH",
    "/participants/{participantID:path}",
    ParticipantRoute,
    responses={**_RECORD, **errors(400, 403)},
    openapi_extra=json_body(schemas.ProfileIn),
)
def patch_participant(
    study_oid: StudyOID, participant_id: ParticipantID, user: CurrentUser, session: SessionDep, raw: RawBody
) -> dict[str, Any]:
    """Changes only the fields sent; `null` (or an empty string) clears one."""
    return _update(session, user, study_oid, participant_id, raw, replace=False)


def _update(
    session: Session, user: User, study_oid: str, participant_id: str, raw: bytes, *, replace: bool
) -> dict[str, Any]:
    study = get_study(session, study_oid)
    participant, _site = service.writable(session, user, study, participant_id)
    service.require_not_removed(participant)
    body = schemas.parse_body(schemas.ProfileIn, raw)
    fields = (*schemas.CONTACT_FIELDS, *schemas.PROFILE_FIELDS) if replace else None
    service.update_profile(session, study, participant, body.sent(), replace=fields, username=user.username)
    return _record(session, user, study, participant)


def _record(session: Session, user: User, study: Study, participant: Participant) -> dict[str, Any]:
    return reads.Records(session, study).one(participant, study_access(session, user, study))
