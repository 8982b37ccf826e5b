"""SPEC §13: workers are visible (heartbeat rows, GET P/admin/workers) and `roster worker --check` is a
health check that passes only while a worker on this host beats within its lease."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import func, select, update

from roster import __version__
from roster.bulk import heartbeat
from roster.bulk.models import WorkerHeartbeat
from roster.bulk.worker import Workers
from roster.db import utcnow
from tests.foundation.test_cli import run
from tests.support import P


def _row_count(db) -> int:
    with db.read_sessions() as s:
        return s.scalar(select(func.count()).select_from(WorkerHeartbeat))


def _age(db, row_id: int, seconds: int) -> None:
    with db.transaction() as s:
        s.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.id == row_id)
            .values(last_seen=utcnow() - dt.timedelta(seconds=seconds))
        )


def test_running_workers_are_listed_for_admins_with_their_current_jobs(client, api, db, settings):
    workers = Workers(db, settings, concurrency=2).start()
    try:
        with heartbeat.running("0b5e3a52-8d3c-4d0e-9d8b-1d1f1c9c6a11"):
            workers.beat.beat()
            [listed] = api.ok(client.get(f"{P}/admin/workers", headers=api.admin))
        assert listed["host"] == heartbeat.HOST and listed["pid"] == os.getpid() and listed["threads"] == 2
        assert listed["version"] == __version__ and listed["currentJobs"] == ["0b5e3a52-8d3c-4d0e-9d8b-1d1f1c9c6a11"]
        assert dt.datetime.fromisoformat(listed["startedAt"]) <= dt.datetime.fromisoformat(
            listed["lastSeen"]
        ) + dt.timedelta(seconds=1)
        workers.beat.beat()
        assert api.ok(client.get(f"{P}/admin/workers", headers=api.admin))[0]["currentJobs"] == []
    finally:
        workers.stop()
    assert _row_count(db) == 0  # a clean stop removes the row
    assert api.ok(client.get(f"{P}/admin/workers", headers=api.admin)) == []


def test_only_live_workers_are_listed(client, api, db, settings):
    live = heartbeat.Heartbeat(db, settings.job_lease_seconds, 1)
    dead = heartbeat.Heartbeat(db, settings.job_lease_seconds, 1)
    live.beat()
    dead.beat()
    _age(db, dead.row_id, settings.job_lease_seconds + 5)
    listed = api.ok(client.get(f"{P}/admin/workers", headers=api.admin))
    assert len(listed) == 1 and _row_count(db) == 2


def test_the_workers_list_is_for_admins_only(client, api):
    assert client.get(f"{P}/admin/workers").status_code == 401
    api.setup_study("S_W(TEST)", ("S_WA(TEST)",))
    dm = api.user("dm", "data_manager", "S_W(TEST)")
    r = client.get(f"{P}/admin/workers", headers=dm)
    assert r.status_code == 403 and r.json()["message"] == "errorCode.noSufficientPrivileges"


def test_a_beat_whose_row_was_purged_writes_a_new_one(db, settings):
    beat = heartbeat.Heartbeat(db, settings.job_lease_seconds, 1)
    beat.beat()
    with db.transaction() as s:
        s.execute(WorkerHeartbeat.__table__.delete())
    beat.beat()
    assert _row_count(db) == 1 and heartbeat.check(db, settings.job_lease_seconds)


@pytest.fixture
def cli_env(settings, tmp_path) -> dict[str, str]:
    return {
        "ROSTER_DATABASE_URL": settings.database_url,
        "ROSTER_JWT_SECRET": settings.jwt_secret,
        "ROSTER_DATA_DIR": str(tmp_path / "data"),
    }


def test_worker_check_exits_0_only_while_a_worker_on_this_host_beats_within_its_lease(db, settings, cli_env, tmp_path):
    nobody = run(["worker", "--check"], cli_env, tmp_path)
    assert nobody.returncode == 1 and "no worker on" in nobody.stderr

    beat = heartbeat.Heartbeat(db, settings.job_lease_seconds, 1)
    beat.beat()
    live = run(["worker", "--check"], cli_env, tmp_path)
    assert live.returncode == 0, live.stderr

    _age(db, beat.row_id, settings.job_lease_seconds + 5)
    assert run(["worker", "--check"], cli_env, tmp_path).returncode == 1
    # A longer lease in the checking process's settings: the same beat counts again.
    longer = run(
        ["worker", "--check"], cli_env | {"ROSTER_JOB_LEASE_SECONDS": str(settings.job_lease_seconds + 60)}, tmp_path
    )
    assert longer.returncode == 0


def test_another_hosts_worker_does_not_make_this_host_healthy(db, settings):
    beat = heartbeat.Heartbeat(db, settings.job_lease_seconds, 1)
    beat.beat()
    with db.transaction() as s:
        s.execute(update(WorkerHeartbeat).values(host="some-other-host"))
    assert not heartbeat.check(db, settings.job_lease_seconds)
    assert heartbeat.check(db, settings.job_lease_seconds, host="some-other-host")


def test_worker_check_fails_when_the_database_cannot_be_reached(tmp_path):
    env = {"ROSTER_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "ROSTER_JWT_SECRET": "s" * 40}
    result = run(["worker", "--check"], env, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
