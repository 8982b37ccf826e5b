"""Fixtures for the participant API: a Participate-active study with two sites and one user per kind of
access; participants are added through the single endpoint, as a client would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from roster.auth.models import RoleAssignment, User
from roster.config import Settings
from roster.db import Database
from roster.studies.models import Study, oid_key
from tests.support import Api, P

STUDY = "S_PART(TEST)"
SITE_A = "S_SITE_A(TEST)"
SITE_B = "S_SITE_B(TEST)"
STUDY_PATH = f"{P}/clinicaldata/studies/{quote(STUDY)}"

# username -> (role, site OID or None for study level)
PEOPLE = {
    "dm": ("data_manager", None),
    "crc_a": ("clinical_research_coordinator", SITE_A),
    "inv_b": ("investigator", SITE_B),
    "monitor": ("monitor", None),
    "viewer_a": ("viewer", SITE_A),
    "monitor_a_crc_b": ("monitor", SITE_A),
    "outsider": (None, None),
}


@dataclass
class World:
    api: Api
    db: Database
    settings: Settings
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def client(self):
        return self.api.client

    def h(self, username: str) -> dict[str, str]:
        return self.headers[username]

    def add(
        self, participant_id: str, site: str = SITE_A, user: str = "dm", register: str | None = None, **fields: Any
    ):
        """POST the single endpoint; returns the response."""
        params = {"register": register} if register is not None else {}
        body = {"subjectKey": participant_id, **fields}
        return self.client.post(
            f"{STUDY_PATH}/sites/{quote(site)}/participants", json=body, headers=self.h(user), params=params
        )

    def created(self, participant_id: str, site: str = SITE_A, **fields: Any) -> dict[str, Any]:
        r = self.add(participant_id, site, **fields)
        assert r.status_code == 200, r.text
        return r.json()

    def path(self, participant_id: str, suffix: str = "") -> str:
        return f"{STUDY_PATH}/participants/{quote(participant_id, safe='')}{suffix}"

    def get(self, participant_id: str, user: str = "dm", suffix: str = "", **params: Any):
        return self.client.get(self.path(participant_id, suffix), headers=self.h(user), params=params)

    def record(self, participant_id: str, user: str = "dm") -> dict[str, Any]:
        r = self.get(participant_id, user)
        assert r.status_code == 200, r.text
        return r.json()

    def put(self, participant_id: str, body: Any, user: str = "dm"):
        return self.client.put(self.path(participant_id), json=body, headers=self.h(user))

    def patch(self, participant_id: str, body: Any, user: str = "dm"):
        return self.client.patch(self.path(participant_id), json=body, headers=self.h(user))

    def post(self, participant_id: str, action: str, user: str = "dm"):
        return self.client.post(self.path(participant_id, f"/{action}"), headers=self.h(user))

    def audit(self, participant_id: str, user: str = "dm", **params: Any) -> list[dict[str, Any]]:
        r = self.get(participant_id, user, "/audit", **params)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def pk(self, participant_id: str) -> int:
        return self.record(participant_id)["id"]

    def os_get(self, pk: int | str, user: str = "dm"):
        return self.client.get(f"/rest/ng/participants/{pk}", headers=self.h(user))

    def os_put(self, pk: int | str, body: Any, user: str = "dm"):
        return self.client.put(f"/rest/ng/participants/{pk}", json=body, headers=self.h(user))

    def bulk(
        self, csv: str, site: str = SITE_A, user: str = "dm", register: str = "n"
    ) -> tuple[str, list[dict[str, Any]]]:
        """Uploads a CSV, runs the worker until the queue is empty, returns the job UUID and its log."""
        from roster.bulk.worker import drain

        url = f"{STUDY_PATH}/sites/{quote(site)}/participants/bulk"
        r = self.client.post(
            url,
            params={"register": register},
            files={"file": ("p.csv", csv.encode(), "text/csv")},
            headers={**self.h(user), "Accept": "application/json"},
        )
        assert r.status_code == 200, r.text
        job = r.json()["jobUuid"]
        drain(self.db, self.settings)
        log = self.client.get(f"{P}/jobs/{job}/log", headers=self.h(user))
        assert log.status_code == 200, log.text
        return job, log.json()["items"]

    def set_study(self, **fields: Any) -> None:
        self.api.ok(self.client.patch(f"{P}/admin/studies/{quote(STUDY)}", json=fields, headers=self.api.admin))

    def set_site(self, site: str, **fields: Any) -> None:
        self.api.ok(
            self.client.patch(
                f"{P}/admin/studies/{quote(STUDY)}/sites/{quote(site)}", json=fields, headers=self.api.admin
            )
        )


def codes_of(response) -> list[str]:
    """The codes of a 400 answer of either shape (OpenClinica `errors`, or OpenSpecimen's list)."""
    body = response.json()
    if isinstance(body, list):
        return [e["code"] for e in body]
    return [e["code"] for e in body.get("errors", [])] or [body["message"]]


@pytest.fixture
def world(api: Api, db: Database, settings: Settings) -> World:
    api.setup_study(STUDY, (SITE_A, SITE_B), participateActive=True)
    # Users are written directly (they only use tokens): keeps argon2 out of every test's setup.
    with db.transaction() as s:
        study = s.scalar(select(Study).where(Study.oid_key == oid_key(STUDY)))
        sites = {site.oid: site.id for site in study.sites}
        for username, (role, site_oid) in PEOPLE.items():
            user = User(username=username, username_key=username, enabled=True, admin=False)
            s.add(user)
            s.flush()
            if role:
                s.add(RoleAssignment(user_id=user.id, study_id=study.id, site_id=sites.get(site_oid), role=role))
        crc_b = s.scalar(select(User).where(User.username_key == "monitor_a_crc_b"))
        s.add(
            RoleAssignment(
                user_id=crc_b.id, study_id=study.id, site_id=sites[SITE_B], role="clinical_research_coordinator"
            )
        )
    w = World(api, db, settings)
    w.headers = {username: api.headers(username) for username in PEOPLE} | {"admin": api.admin}
    return w
