"""What the jobs endpoints answer (SPEC §6), camelCase on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from roster.schemas import OutModel

OUTCOMES = ("created", "updated", "unchanged", "failed")
# The downloadFile `Status` column (OpenClinica's words).
OUTCOME_LABELS = {"created": "Created", "updated": "Updated", "unchanged": "Unchanged", "failed": "Failed"}
LOG_CSV_HEADER = ("Row", "ParticipantID", "Participant OID", "Participate Status", "Status", "Message")


class JobCounts(OutModel):
    rows: int | None = Field(description="Data rows in the file; null until the worker has counted them")
    processed: int
    created: int
    updated: int
    unchanged: int
    failed: int


class JobOut(OutModel):
    uuid: str
    type: str
    status: str
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
    cancel_requested: bool
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
    outcome: str
    participate_status: str | None
    errors: list[LogError]
