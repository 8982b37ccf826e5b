"""The participant at OpenSpecimen's path (SPEC §7, seed 004): `GET`/`PUT /rest/ng/participants/{id}`.

Same resource and rules as the OpenClinica-style path, in OpenSpecimen's shapes: the answer carries
`id` (a string, as in the seed's example) and `activityStatus`; every error is a JSON list
`[{"code", "message"}]` — rendered by this router's route class, so other endpoints keep theirs.

Decisions: the resource is the participant's profile, all of it personal data, so both methods need a
role that may read personal data at the participant's site: monitors and viewers get 403. A caller
with no role covering the participant's site gets 404 PARTICIPANT_NOT_FOUND (a numeric id reveals
nothing). PUT replaces the OpenSpecimen fields only (left out = empty, activityStatus Active); the
OpenClinica contact fields this resource does not carry (email, mobile, identifier) stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, RootModel
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.models import User
from roster.auth.permissions import Action, StudyAccess, study_access
from roster.deps import CurrentUser, SessionDep, TokenFirstRoute
from roster.errors import DomainError, NotFound
from roster.openapi import errors, json_body
from roster.participants import reads, schemas, service
from roster.participants.models import Participant
from roster.participants.router import RawBody
from roster.schemas import MAX_INT32
from roster.studies.models import Study


def _problem(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


class Problem(BaseModel):
    code: str
    message: str


class Problems(RootModel[list[Problem]]):
    """OpenSpecimen's error body: a list of `{code, message}`."""


class OpenSpecimenRoute(TokenFirstRoute):
    """Renders every error of these endpoints as OpenSpecimen does: a list of `{code, message}`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openspecimen_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except (service.RecordErrors, schemas.BodyInvalid) as exc:
                if isinstance(exc, service.RecordErrors):
                    problems = [_problem(e["code"], e["message"]) for e in exc.errors]
                else:
                    problems = [_problem(exc.code, f"{e['field']}: {e['message']}") for e in exc.errors]
                return JSONResponse(problems, status_code=400)
            except DomainError as exc:
                return JSONResponse([_problem(exc.code, exc.detail)], status_code=exc.status, headers=exc.headers)
            except RequestValidationError:
                # Only the path parameter is validated by FastAPI here, and it is a plain string.
                return JSONResponse(
                    [_problem(codes.VALIDATION_FAILED, codes.message_for(codes.VALIDATION_FAILED))], status_code=400
                )

        return openspecimen_errors


router = APIRouter(
    prefix="/rest/ng/participants",
    tags=["openspecimen"],
    route_class=OpenSpecimenRoute,
    responses=errors(400, 401, 403, 404, model=Problems),
)
# A string, checked by hand: anything but a known numeric id is PARTICIPANT_NOT_FOUND, not a 422.
ParticipantPk = Annotated[str, Path(alias="id", description="Roster's numeric participant id")]


def _not_found(value: str) -> NotFound:
    return NotFound(codes.PARTICIPANT_NOT_FOUND, {"id": value})


def _participant(session: Session, user: User, value: str) -> tuple[Participant, Study, StudyAccess]:
    """The participant by Roster's numeric id, for a caller who may read its personal data."""
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_INT32:
        raise _not_found(value)
    participant = session.get(Participant, int(text))
    if participant is None:
        raise _not_found(value)
    access = study_access(session, user, participant.study_id)
    if not access.can(Action.READ, participant.site_id):
        raise _not_found(value)
    access.require(Action.READ_PII, participant.site_id)
    return participant, session.get_one(Study, participant.study_id), access


def _answer(session: Session, study: Study, participant: Participant, access: StudyAccess) -> dict[str, Any]:
    record = reads.Records(session, study).one(participant, access)
    return {"id": str(participant.id), **{name: record[name] for name in schemas.OPENSPECIMEN_FIELDS}}


@router.get("/{id}", response_model=schemas.OpenSpecimenParticipantOut)
def get_participant(participant_id: ParticipantPk, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    participant, study, access = _participant(session, user, participant_id)
    return _answer(session, study, participant, access)


@router.put(
    "/{id}",
    response_model=schemas.OpenSpecimenParticipantOut,
    openapi_extra=json_body(schemas.OpenSpecimenParticipantIn),
)
def update_participant(
    participant_id: ParticipantPk, user: CurrentUser, session: SessionDep, raw: RawBody
) -> dict[str, Any]:
    """Replaces the profile; all rule errors together, as a 400 list."""
    participant, study, access = _participant(session, user, participant_id)
    service.require_write(session, access, study, participant)
    service.require_not_removed(participant)
    body = schemas.parse_body(schemas.OpenSpecimenParticipantIn, raw)
    sent = schemas.openspecimen_sent(body)
    service.update_profile(
        session, study, participant, sent, replace=schemas.OPENSPECIMEN_FIELDS, username=user.username
    )
    return _answer(session, study, participant, access)
