"""`POST P/clinicaldata/studies/{studyOID}/sites/{siteOID}/participants/extractParticipantsInfo` (SPEC §11.3).

Checks 1–6 of §4 with read instead of write permission, then `includeParticipateInfo`; queues an
`EXTRACT_PARTICIPANTS` job in the request's transaction and answers as the bulk upload does. The request
has no body (one sent is not read).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import PlainTextResponse, Response

from roster import codes
from roster.auth.permissions import Action, require_site_action
from roster.bulk import extract
from roster.bulk.router import ACCEPTED, P, accepted
from roster.deps import CurrentUser, SessionDep
from roster.openapi import errors
from roster.schemas import YES_NO_SCHEMA, parse_yes_no
from roster.studies.service import get_site, get_study, require_available

router = APIRouter(tags=["bulk"])


@router.post(
    P + "/clinicaldata/studies/{studyOID}/sites/{siteOID}/participants/extractParticipantsInfo",
    response_class=PlainTextResponse,
    responses={200: ACCEPTED, **errors(400, 403)},
    summary="Extract the site's participants to a CSV; answers with the job's UUID at once",
)
def extract_participants(
    request: Request,
    studyOID: str,
    siteOID: str,
    session: SessionDep,
    user: CurrentUser,
    background: BackgroundTasks,
    includeParticipateInfo: Annotated[
        str | None,
        Query(
            description="y|yes|n|no, any case; absent = n. y adds the access codes (for roles that may read PII)",
            json_schema_extra=YES_NO_SCHEMA,
        ),
    ] = None,
) -> Response:
    study = get_study(session, studyOID)
    site = get_site(session, study, siteOID)
    require_available(study, site)
    require_site_action(session, user, study, site, Action.READ)
    include = parse_yes_no(includeParticipateInfo, codes.INVALID_INCLUDE_PARTICIPATE_INFO)
    job = extract.enqueue(session, user, study, site, include)
    return accepted(request, job.uuid, background)
