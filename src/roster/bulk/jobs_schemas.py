"""What the jobs endpoints answer (SPEC §6), camelCase on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from roster.schemas import OutModel

OUTCOMES = ("created", "updated", "unchanged", "failed", "deleted", "restored")
# The wire enums of SPEC §6 and §11 (revert and extract jobs log `deleted` / `restored`).
JobType = Literal["BULK_ADD_PARTICIPANTS", "REVERT_BULK_ADD_PARTICIPANTS", "EXTRACT_PARTICIPANTS"]
JobStatus = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"]
Outcome = Literal["created", "updated", "unchanged", "failed", "deleted", "restored"]
# The downloadFile `Status` column (OpenClinica's words).
OUTCOME_LABELS = {
    "created": "Created",
    "updated": "Updated",
    "unchanged": "Unchanged",
    "failed": "Failed",
    "deleted": "Deleted",
    "restored": "Restored",
}
LOG_CSV_HEADER = ("Row", "ParticipantID", "Participant OID", "Participate Status", "Status", "Message")


class JobCounts(OutModel):
    rows: int | None = Field(description="Data rows in the file; null until the worker has counted them")
    processed: int
    created: int
    updated: int
    unchanged: int
    failed: int
    deleted: int = Field(description="A revert job: participants it deleted (the reverted job had created them)")
    restored: int = Field(description="A revert job: participants whose values it restored")


class JobOut(OutModel):
    uuid: str
    type: JobType
    dry_run: bool = Field(description="A dry run validates without writing (SPEC §11.1)")
    revert_of: str | None = Field(description="A revert job: the UUID of the job it reverts; else null")
    status: JobStatus
    study_oid: str
    site_oid: str
    # `register` itself would shadow a BaseModel attribute; the wire name stays `register`.
    register_flag: bool = Field(alias="register")
    source_file_name: str
    created_by: str
    date_created: dt.datetime
    date_started: dt.datetime | None
    date_completed: dt.datetime | None
    counts: JobCounts
    progress: float = Field(ge=0, le=1)
    rows_per_second: float | None = Field(
        None, description="While IN_PROGRESS: rows processed per second since the job started; else null"
    )
    eta_seconds: int | None = Field(
        None, description="While IN_PROGRESS and the rows are counted: seconds left at that rate; else null"
    )
    cancel_requested: bool
    include_participate_info: bool = Field(
        False, description="Extract jobs: access codes were asked for (includeParticipateInfo=y)"
    )
    warnings: list[Any]
    error: str | None
    # The job-level code in plain words, for people (the web page shows it next to the code).
    error_message: str | None = None


class LogError(OutModel):
    code: str
    column: str | None = None
    message: str | None = None


class LogEntryOut(OutModel):
    row: int
    line: int
    participant_id: str | None
    participant_oid: str | None
    outcome: Outcome
    participate_status: str | None
    errors: list[LogError]
