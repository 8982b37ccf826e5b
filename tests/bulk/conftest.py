"""Fixtures for the bulk pipeline: a study with two sites and users set up through the API (users
written directly: hashing passwords would dominate the tests), an `upload` through the real endpoint,
and the worker run with `drain`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, update

from roster.auth.models import User
from roster.bulk.models import Job, LogEntry, UploadChunk
from roster.bulk.sinks import SinkFactory, open_sink
from roster.bulk.worker import drain
from roster.config import Settings
from roster.db import Database
from roster.participants.models import Participant
from tests.support import Api, P

STUDY = "S_BULK(TEST)"
SITE_A = "S_SITE_A(TEST)"
SITE_B = "S_SITE_B(TEST)"
HEADER = "ParticipantID,firstName,lastName,emailAddress,mobileNumber,identifier"


def bulk_url(study: str = STUDY, site: str = SITE_A) -> str:
    return f"{P}/clinicaldata/studies/{quote(study, safe='')}/sites/{quote(site, safe='')}/participants/bulk"


def csv_of(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


@dataclass
class Bulk:
    api: Api
    db: Database
    settings: Settings
    users: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def client(self):
        return self.api.client

    def user(
        self, username: str, role: str | None = None, study: str = STUDY, site: str | None = None
    ) -> dict[str, str]:
        with self.db.transaction() as s:
            if s.scalar(select(User.id).where(User.username_key == username.lower())) is None:
                s.add(User(username=username, username_key=username.lower(), enabled=True, admin=False))
        if role:
            self.api.grant(username, role, study, site)
        self.users[username] = self.api.headers(username)
        return self.users[username]

    def post(
        self,
        data: bytes | None,
        *,
        name: str = "p.csv",
        register: str | None = None,
        dry_run: str | None = None,
        site: str = SITE_A,
        study: str = STUDY,
        user: str = "dm",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        params = {"register": register} if register is not None else {}
        if dry_run is not None:
            params["dryRun"] = dry_run
        files = {"file": (name, data, "text/csv")} if data is not None else None
        return self.client.post(
            bulk_url(study, site),
            params=params,
            files=files,
            headers=self.users[user] if headers is None else headers,
            **kwargs,
        )

    def upload(self, data: bytes, **kwargs: Any) -> str:
        r = self.post(data, **kwargs)
        assert r.status_code == 200, r.text
        return r.text.removeprefix("job uuid: ")

    def run(
        self, data: bytes, batch_sinks: SinkFactory = open_sink, **kwargs: Any
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Upload, drain the queue (its batches written by `batch_sinks`), and return the job and its whole log."""
        job = self.upload(data, **kwargs)
        drain(self.db, self.settings, batch_sinks)
        return self.job(job), self.log(job)

    def job(self, job_uuid: str, user: str = "dm") -> dict[str, Any]:
        return self.api.ok(self.client.get(f"{P}/jobs/{job_uuid}", headers=self.users[user]))

    def log(self, job_uuid: str, user: str = "dm") -> list[dict[str, Any]]:
        items, page = [], 1
        while True:
            body = self.api.ok(
                self.client.get(
                    f"{P}/jobs/{job_uuid}/log", params={"page": page, "pageSize": 1000}, headers=self.users[user]
                )
            )
            items += body["items"]
            if len(items) >= body["total"]:
                return items
            page += 1

    def participants(self) -> dict[str, dict[str, Any]]:
        """participant_id -> stored row (as a dict), straight from the table."""
        with self.db.read_sessions() as s:
            rows = s.execute(select(Participant.__table__)).mappings().all()
        return {r["participant_id"]: dict(r) for r in rows}

    def set_status(self, participant_id: str, status: str) -> None:
        with self.db.transaction() as s:
            s.execute(update(Participant).where(Participant.participant_id == participant_id).values(status=status))

    def set_study(self, **fields: Any) -> None:
        self.api.ok(
            self.client.patch(f"{P}/admin/studies/{quote(STUDY, safe='')}", json=fields, headers=self.api.admin)
        )

    def set_site(self, site: str, **fields: Any) -> None:
        self.api.ok(
            self.client.patch(
                f"{P}/admin/studies/{quote(STUDY, safe='')}/sites/{quote(site, safe='')}",
                json=fields,
                headers=self.api.admin,
            )
        )

    def stored(self) -> tuple[int, int, int]:
        """(jobs, upload chunks, log entries) in the database."""
        with self.db.read_sessions() as s:
            return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Job, UploadChunk, LogEntry))


@pytest.fixture
def bulk(api: Api, db: Database, settings: Settings) -> Bulk:
    api.setup_study(STUDY, (SITE_A, SITE_B), participateActive=True)
    b = Bulk(api, db, settings)
    b.user("dm", "data_manager")
    return b


def outcomes(log: list[dict[str, Any]]) -> list[str]:
    return [e["outcome"] for e in log]


def error_codes(entry: dict[str, Any]) -> list[str]:
    return [e["code"] for e in entry["errors"]]
