"""A real `roster serve` process on a free loopback port (tests.support.start_serve) over the test
database (wiped), with a bootstrap admin written straight into it (a client could not create the first
one) and everything else set up through the setup API over HTTP, as a site would."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from roster.auth.models import User
from roster.auth.tokens import TokenService
from roster.config import Settings
from roster.db import Database
from tests.support import P, start_serve

STUDY, SITE = "S_LOAD(TEST)", "S_LOAD_SITE(TEST)"
DM = "load-dm"
DM_PASSWORD = "load-test-password-1"
TOKEN_URL = "/user-service/api/oauth/token"


@dataclass
class LiveRoster:
    base: str
    process: subprocess.Popen
    log_path: Path
    admin: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def setup_study(self) -> dict[str, str]:
        """A study with one site and a data manager, through the setup API; returns the data manager's
        headers, from a real sign-in (the one production-cost hash of the test)."""
        with httpx.Client(base_url=self.base, headers=self.admin, timeout=60) as c:
            for path, body in (
                ("/admin/studies", {"oid": STUDY, "name": "Load"}),
                (f"/admin/studies/{quote(STUDY, safe='')}/sites", {"oid": SITE, "name": "Load site"}),
                ("/admin/users", {"username": DM, "password": DM_PASSWORD}),
                (f"/admin/users/{DM}/roles", {"studyOid": STUDY, "role": "data_manager"}),
            ):
                r = c.post(P + path, json=body)
                assert r.status_code == 201, (path, r.status_code, r.text)
            r = c.post(TOKEN_URL, json={"username": DM, "password": DM_PASSWORD}, headers={})
            assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.text.strip()}"}


def study_url(site: bool = False) -> str:
    path = f"{P}/clinicaldata/studies/{quote(STUDY, safe='')}"
    return path + f"/sites/{quote(SITE, safe='')}" if site else path


@pytest.fixture
def live_roster(db: Database, settings: Settings, tmp_path: Path) -> Iterator[Callable[..., LiveRoster]]:
    """Starts `roster serve` with extra ROSTER_* settings; stops every process it started."""
    with db.transaction() as session:
        session.add(User(username="load-admin", username_key="load-admin", enabled=True, admin=True))
    admin = {"Authorization": f"Bearer {TokenService(settings).issue('load-admin')[0]}"}
    started: list[subprocess.Popen] = []

    def start(**env: str) -> LiveRoster:
        log_path = tmp_path / f"serve-{len(started)}.log"
        full_env = os.environ | {
            "ROSTER_DATABASE_URL": settings.database_url,
            "ROSTER_JWT_SECRET": settings.jwt_secret,
            "ROSTER_DATA_DIR": str(tmp_path / "serve-data"),
            "ROSTER_LOG_LEVEL": "WARNING",
            **env,
        }
        process, base = start_serve(full_env, tmp_path, log_path)
        started.append(process)
        return LiveRoster(base, process, log_path, admin)

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
