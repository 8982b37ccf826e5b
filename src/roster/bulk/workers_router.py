"""`GET P/admin/workers` (SPEC §13): the worker processes whose heartbeat is within the job lease (admin)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from roster.bulk import heartbeat
from roster.deps import AdminUser, ReadSessionDep, SettingsDep
from roster.schemas import OutModel

router = APIRouter(prefix="/pages/auth/api/admin", tags=["operations"])


class WorkerOut(OutModel):
    host: str
    pid: int
    version: str
    threads: int
    started_at: dt.datetime
    last_seen: dt.datetime
    current_jobs: list[str]


@router.get("/workers", response_model=list[WorkerOut])
def list_workers(_admin: AdminUser, session: ReadSessionDep, settings: SettingsDep) -> list[WorkerOut]:
    """Live workers (last beat within ROSTER_JOB_LEASE_SECONDS), by host and start time."""
    return [WorkerOut.model_validate(row) for row in heartbeat.live(session, settings.job_lease_seconds)]
