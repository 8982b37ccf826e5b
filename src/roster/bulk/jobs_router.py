"""Jobs endpoints and the bulk-actions log (SPEC §6).

Decisions where the spec is silent:
- `status` (job lists) and `outcome` (log) are matched case-insensitively; `status` may repeat or be
  comma-separated; an unknown value answers 422 validationFailed naming the parameter, like `pageSize` > 1000.
- Cancel answers 200 with the job when a queued job is cancelled at once, and 202 with the job
  (`cancelRequested: true`, still IN_PROGRESS) when a running job has been asked to stop after its batch.
- A user with no role in the study still lists its own jobs (a creator always sees its jobs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from roster import codes
from roster.bulk import extract, revert
from roster.bulk import jobs_service as service
from roster.bulk.jobs_schemas import LOG_CSV_HEADER, OUTCOMES, JobOut, LogEntryOut
from roster.bulk.models import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, IN_QUEUE, JOB_TYPE_EXTRACT
from roster.csvout import MEDIA_TYPE, content_disposition, stream_csv
from roster.deps import CurrentUser, DatabaseDep, SessionDep
from roster.errors import DomainError
from roster.openapi import errors
from roster.schemas import Page, PageParams, page_params
from roster.studies.service import get_site, get_study

P = "/pages/auth/api"
router = APIRouter(prefix=P, tags=["jobs"])

JOB_STATUSES = (IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)
Paging = Annotated[PageParams, Depends(page_params)]


def _invalid(field: str, allowed: tuple[str, ...]) -> DomainError:
    message = f"must be one of {', '.join(allowed)}"
    return DomainError(
        codes.VALIDATION_FAILED,
        422,
        {"errors": [{"field": field, "message": message, "type": "enum"}]},
        detail=f"{field}: {message}",
    )


# Documented as enums (any case is accepted too, and an empty value means no filter).
def status_filter(
    statuses: Annotated[
        list[str] | None,
        Query(alias="status", json_schema_extra={"items": {"type": "string", "enum": [*JOB_STATUSES, ""]}}),
    ] = None,
) -> list[str]:
    wanted = [part.strip().upper() for value in statuses or () for part in value.split(",") if part.strip()]
    if any(s not in JOB_STATUSES for s in wanted):
        raise _invalid("status", JOB_STATUSES)
    return wanted


def outcome_filter(
    outcome: Annotated[str | None, Query(json_schema_extra={"enum": [*OUTCOMES, ""]})] = None,
) -> str | None:
    if outcome is None or not outcome.strip():
        return None
    value = outcome.strip().lower()
    if value not in OUTCOMES:
        raise _invalid("outcome", OUTCOMES)
    return value


@router.get("/studies/{study_oid}/jobs", response_model=Page[JobOut])
def list_study_jobs(
    study_oid: str,
    session: SessionDep,
    user: CurrentUser,
    page: Paging,
    statuses: Annotated[list[str], Depends(status_filter)],
) -> Page[JobOut]:
    study = get_study(session, study_oid)
    return service.list_jobs(session, user, study, None, statuses, page)


@router.get("/studies/{study_oid}/sites/{site_oid}/jobs", response_model=Page[JobOut])
def list_site_jobs(
    study_oid: str,
    site_oid: str,
    session: SessionDep,
    user: CurrentUser,
    page: Paging,
    statuses: Annotated[list[str], Depends(status_filter)],
) -> Page[JobOut]:
    study = get_study(session, study_oid)
    site = get_site(session, study, site_oid)
    return service.list_jobs(session, user, study, site, statuses, page)


@router.get("/jobs/{job_uuid}", response_model=JobOut)
def get_job(job_uuid: str, session: SessionDep, user: CurrentUser) -> JobOut:
    return service.job_out(*service.get_visible_job(session, user, job_uuid))


@router.get("/jobs/{job_uuid}/log", response_model=Page[LogEntryOut])
def job_log(
    job_uuid: str,
    session: SessionDep,
    user: CurrentUser,
    page: Paging,
    outcome: Annotated[str | None, Depends(outcome_filter)],
) -> Page[LogEntryOut]:
    job, _, _ = service.get_visible_job(session, user, job_uuid)
    return service.log_page(session, job, outcome, page)


@router.get(
    "/jobs/{job_uuid}/downloadFile",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **errors(403, 409, 410)},
)
def download_log(
    job_uuid: str, session: SessionDep, db: DatabaseDep, user: CurrentUser, open: bool = False
) -> StreamingResponse:
    """The log as OpenClinica's CSV; while the job runs, the rows committed so far. For an extract job,
    its file once COMPLETED (409 before; 403 when it holds PII the caller may no longer read)."""
    job, _, _ = service.get_visible_job(session, user, job_uuid)
    if job.type == JOB_TYPE_EXTRACT:
        extract.extract_file(session, user, job)
        body, filename = extract.stored_file(db, job.id), job.source_file_name
    else:
        body, filename = (
            stream_csv(service.log_csv_rows(db, job.id), LOG_CSV_HEADER),
            f"{service.file_stem(job)}-log.csv",
        )
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename, inline=open)},
    )


@router.get(
    "/jobs/{job_uuid}/failedRows",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **errors(403, 409, 410)},
)
def failed_rows(
    job_uuid: str, session: SessionDep, db: DatabaseDep, user: CurrentUser, open: bool = False
) -> StreamingResponse:
    """The failed rows with the upload's own header and delimiter, ready to fix and upload again. They hold
    the upload's personal data: only for a caller that may read it at the job's site now (else 403)."""
    job, _, _ = service.get_visible_job(session, user, job_uuid)
    service.require_upload(job)
    service.require_pii(session, user, job)
    header = service.upload_header(session, job)
    rows = service.failed_rows(db, job.id, len(header.names), header.columns["ParticipantID"])
    filename = f"{service.file_stem(job)}-failed-rows.csv"
    return StreamingResponse(
        stream_csv(rows, header.names, delimiter=header.delimiter),
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename, inline=open)},
    )


@router.post(
    "/jobs/{job_uuid}/cancel",
    response_model=JobOut,
    responses={202: {"model": JobOut, "description": "A running job will stop after its current batch"}, **errors(409)},
)
def cancel_job(job_uuid: str, session: SessionDep, user: CurrentUser) -> JSONResponse:
    job, study_oid, site_oid = service.get_visible_job(session, user, job_uuid)
    cancelled_now = service.cancel(session, job)
    body = service.job_out(job, study_oid, site_oid).model_dump(mode="json", by_alias=True)
    return JSONResponse(body, status_code=status.HTTP_200_OK if cancelled_now else status.HTTP_202_ACCEPTED)


@router.delete("/jobs/{job_uuid}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403))
def delete_job(job_uuid: str, session: SessionDep, user: CurrentUser) -> Response:
    service.delete_job(session, user, job_uuid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/jobs/{job_uuid}/revert",
    response_model=JobOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(403, 409),
)
def revert_job(
    job_uuid: str, request: Request, background: BackgroundTasks, session: SessionDep, user: CurrentUser
) -> JSONResponse:
    """Queues a REVERT_BULK_ADD_PARTICIPANTS job undoing a finished bulk job (SPEC §11.2): 409
    jobNotFinished while it runs, jobNotRevertible for a dry run, a revert, or a job already reverted."""
    job, study_oid, site_oid = revert.queue_revert(session, user, job_uuid)
    wake = getattr(request.app.state, "wake_workers", None)
    if wake is not None:
        background.add_task(wake)  # after the response, so after the request's commit
    body = service.job_out(job, study_oid, site_oid).model_dump(mode="json", by_alias=True)
    return JSONResponse(
        body, status_code=status.HTTP_201_CREATED, headers={"Location": f"{P}/jobs/{job.uuid}"}, background=background
    )
