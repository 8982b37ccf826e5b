"""`POST P/clinicaldata/studies/{studyOID}/sites/{siteOID}/participants/bulk` (SPEC §4).

Checks 1–8 run on a read session before a byte of the body is read (the endpoint declares no body
parameter, so FastAPI leaves the stream alone); then the body streams through checks 9–15 into a spool;
then the job and its upload are written in the request's transaction (`SessionDep`, which commits before
the answer is sent). Any failing check answers with its code, and nothing has been stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from roster import codes
from roster.auth.permissions import Action, require_site_action
from roster.bulk import queue
from roster.bulk.upload import ReceivedUpload, receive_upload
from roster.db import Database
from roster.deps import BearerToken, SessionDep, load_user
from roster.errors import DomainError
from roster.openapi import UPLOAD_BODY, errors, schema_ref
from roster.schemas import YES_NO_SCHEMA, OutModel, parse_yes_no
from roster.studies.service import get_site, get_study, require_available

P = "/pages/auth/api"
router = APIRouter(tags=["bulk"])


class UploadAccepted(OutModel):
    """The answer when `Accept` asks for JSON."""

    job_uuid: str
    status: Literal["IN_QUEUE"]


# The 200 answer of an endpoint that queues a job (the upload, the extract).
ACCEPTED = {
    "content": {
        "text/plain": {
            "schema": {"type": "string", "pattern": "^job uuid: [0-9a-f-]{36}$"},
            "example": "job uuid: 3f1c…",
        },
        "application/json": {"schema": schema_ref(UploadAccepted)},
    },
}


def parse_register(value: str | None) -> bool:
    return parse_yes_no(value, codes.INVALID_REGISTER_PARAMETER)


def _authorize(
    request: Request, token: str, study_oid: str, site_oid: str, register: str | None, dry_run: str | None
) -> dict[str, Any]:
    """Checks 1–8 (and `dryRun`'s right after check 7), in order, on a read session (on SQLite a write
    session would lock the database for as long as the client takes to send the body)."""
    db: Database = request.app.state.db
    with db.read_sessions() as session, session.begin():
        user = load_user(session, request.app.state.tokens, token)
        study = get_study(session, study_oid)
        site = get_site(session, study, site_oid)
        require_available(study, site)
        require_site_action(session, user, study, site, Action.WRITE)
        wants_register = parse_register(register)
        wants_dry_run = parse_yes_no(dry_run, codes.INVALID_DRY_RUN_PARAMETER)
        if wants_register and not study.participate_active:
            raise DomainError(codes.PARTICIPATE_INACTIVE, 400, {"studyOID": study.oid})
        return {
            "study_id": study.id,
            "site_id": site.id,
            "register": wants_register,
            "dry_run": wants_dry_run,
            "username": user.username,
            "user_id": user.id,
        }


def _store(session: Session, checked: dict[str, Any], upload: ReceivedUpload) -> str:
    inspected = upload.inspected
    job = queue.enqueue(
        session,
        study_id=checked["study_id"],
        site_id=checked["site_id"],
        register=checked["register"],
        dry_run=checked["dry_run"],
        file_name=upload.file_name,
        username=checked["username"],
        user_id=checked["user_id"],
        size=inspected.size,
        sha256=inspected.sha256,
        warnings=list(inspected.warnings),
        chunks=upload.chunks(),
    )
    # Flushed here so a database error answers before the 200 does.
    session.flush()
    return job.uuid


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/plain" not in accept.split("application/json")[0]


@router.post(
    P + "/clinicaldata/studies/{studyOID}/sites/{siteOID}/participants/bulk",
    response_class=PlainTextResponse,
    responses={200: ACCEPTED, **errors(400, 403, 413)},
    openapi_extra=UPLOAD_BODY,
    summary="Upload a CSV of participants (or only validate it, dryRun=y); answers with the job's UUID at once",
)
async def upload_participants(
    request: Request,
    studyOID: str,
    siteOID: str,
    session: SessionDep,
    token: BearerToken,
    background: BackgroundTasks,
    register: Annotated[
        str | None, Query(description="y|yes|n|no, any case; absent = n", json_schema_extra=YES_NO_SCHEMA)
    ] = None,
    dryRun: Annotated[
        str | None,
        Query(
            description="y|yes|n|no, any case; absent = n. y: only validate — the job logs what each row would "
            "do and changes nothing (SPEC §11.1)",
            json_schema_extra=YES_NO_SCHEMA,
        ),
    ] = None,
) -> Response:
    checked = await run_in_threadpool(_authorize, request, token, studyOID, siteOID, register, dryRun)
    upload = await receive_upload(request, request.app.state.settings.max_upload_bytes)
    try:
        job_uuid = await run_in_threadpool(_store, session, checked, upload)
    finally:
        upload.close()
    return accepted(request, job_uuid, background)


def accepted(request: Request, job_uuid: str, background: BackgroundTasks) -> Response:
    """`job uuid: <uuid>` (or JSON when asked for) with the job's Location; wakes the workers after the
    answer, so after the request's transaction has committed."""
    wake = getattr(request.app.state, "wake_workers", None)
    if wake is not None:
        background.add_task(wake)
    headers = {"Location": f"{P}/jobs/{job_uuid}"}
    if _wants_json(request):
        return JSONResponse({"jobUuid": job_uuid, "status": "IN_QUEUE"}, headers=headers, background=background)
    return PlainTextResponse(f"job uuid: {job_uuid}", headers=headers, background=background)
