"""Fixtures for the jobs endpoints: a study with two sites, one user per kind of access, and jobs
written straight into the tables (so the read side is tested apart from the worker)."""

from __future__ import annotations

import itertools
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from roster.auth.models import RoleAssignment, User
from roster.bulk.models import IN_QUEUE, Job, LogEntry, UploadChunk
from roster.db import Database
from roster.studies.models import Site, Study, oid_key
from tests.support import Api, P

STUDY = "S_JOBS(TEST)"
SITE_A = "S_SITE_A(TEST)"
SITE_B = "S_SITE_B(TEST)"
DEFAULT_UPLOAD = b"ParticipantID,firstName\r\nP-1,Ann\r\n"


@dataclass
class World:
    api: Api
    db: Database
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    def h(self, username: str) -> dict[str, str]:
        return self.headers[username]

    def add_job(
        self,
        creator: str,
        site_oid: str = SITE_A,
        *,
        status: str = IN_QUEUE,
        entries: list[dict[str, Any]] = (),
        upload: bytes = DEFAULT_UPLOAD,
        chunk_size: int = 1 << 20,
        **fields: Any,
    ) -> str:
        """A job row as the upload endpoint and the worker would leave it; returns its UUID."""
        job_uuid = str(uuidlib.uuid4())
        with self.db.transaction() as s:
            site = s.scalar(select(Site).where(Site.oid_key == oid_key(site_oid)))
            user = s.scalar(select(User).where(User.username_key == creator.lower()))
            values = dict(source_file_name="participants.csv", upload_size=len(upload), warnings=[]) | fields
            job = Job(
                uuid=job_uuid,
                status=status,
                study_id=site.study_id,
                site_id=site.id,
                created_by=user.username,
                created_by_id=user.id,
                **values,
            )
            s.add(job)
            s.flush()
            s.add_all(
                UploadChunk(job_id=job.id, seq=i, data=upload[off : off + chunk_size])
                for i, off in enumerate(range(0, len(upload), chunk_size))
            )
            s.add_all(LogEntry(job_id=job.id, **entry_defaults(e)) for e in entries)
        return job_uuid

    def get(self, path: str, user: str, **params: Any):
        return self.api.client.get(f"{P}{path}", headers=self.h(user), params=params)


def entry_defaults(e: dict[str, Any]) -> dict[str, Any]:
    row = e["row"]
    out = {
        "line": row + 1,
        "participant_id": f"P-{row}",
        "participant_oid": f"SS_P{row}",
        "outcome": "created",
        "participate_status": None,
        "errors": [],
        "cells": None,
    }
    return out | e


def log_entries(n: int, failed_every: int = 0) -> list[dict[str, Any]]:
    """n entries; every `failed_every`-th row failed (with its cells), the rest created."""
    out = []
    for row in range(1, n + 1):
        if failed_every and row % failed_every == 0:
            out.append(
                {
                    "row": row,
                    "outcome": "failed",
                    "participant_oid": None,
                    "errors": [{"code": "errorCode.invalidEmailAddress", "column": "emailAddress", "message": "bad"}],
                    "cells": [f"P-{row}", "x"],
                }
            )
        else:
            out.append({"row": row})
    return out


@pytest.fixture
def world(api: Api, db: Database) -> World:
    api.setup_study(STUDY, (SITE_A, SITE_B))
    w = World(api, db)
    people = {
        "dm": ("data_manager", None),
        "crc_a": ("clinical_research_coordinator", SITE_A),
        "crc_a2": ("investigator", SITE_A),
        "crc_b": ("clinical_research_coordinator", SITE_B),
        "monitor": ("monitor", None),
        "viewer_a": ("viewer", SITE_A),
        "outsider": (None, None),
    }
    # Users are written directly too (they only use tokens); the setup API itself is tested elsewhere.
    with db.transaction() as s:
        study = s.scalar(select(Study).where(Study.oid_key == oid_key(STUDY)))
        sites = {site.oid: site.id for site in study.sites}
        for username, (role, site_oid) in people.items():
            user = User(username=username, username_key=username, enabled=True, admin=False)
            s.add(user)
            s.flush()
            if role:
                s.add(RoleAssignment(user_id=user.id, study_id=study.id, site_id=sites.get(site_oid), role=role))
    w.headers = {username: api.headers(username) for username in people} | {"admin": api.admin}
    return w
