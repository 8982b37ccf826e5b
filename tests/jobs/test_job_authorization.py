"""The authorization matrix of every job endpoint (SPEC §1, §6, §10), table-driven: callers of every kind
against a job that `creator` uploaded at site A, including a creator that has since been demoted to
monitor and one that has lost every role (finding 1: failedRows still answered their names and emails).

A creator always sees its job, its log and the log CSV (IDs, statuses, codes: no PII), may cancel and
delete it; its failed rows (the upload's own cells) only while it may read PII at the job's site now.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from roster import codes
from roster.auth.models import RoleAssignment, User
from roster.bulk.models import COMPLETED, IN_QUEUE
from roster.studies.models import Site, Study, oid_key
from tests.jobs.conftest import SITE_A, STUDY
from tests.support import P

SECRET_NAME = "Zelda-Secretname"
UPLOAD = f"ParticipantID,firstName\r\nP-1,Ann\r\nP-2,{SECRET_NAME}\r\n".encode()
ENTRIES = [
    {"row": 1},
    {
        "row": 2,
        "participant_id": "P-2",
        "outcome": "failed",
        "participant_oid": None,
        "cells": ["P-2", SECRET_NAME],
        "errors": [{"code": "errorCode.invalidEmailAddress", "column": "emailAddress", "message": "bad"}],
    },
]
NRS, NSP, NF = codes.NO_ROLE_SET_UP, codes.NO_SUFFICIENT_PRIVILEGES, codes.JOB_NOT_FOUND

# caller: the creator as it is now, or another user (tests/jobs/conftest.py `world`).
# Answers: a status, or a status and code.
MATRIX = """
caller            job  log  download  failedRows  cancel  delete  listed
creator           200  200  200       200         200     204     yes
creator_demoted   200  200  200       403:NSP     200     204     yes
creator_roleless  200  200  200       403:NRS     200     204     yes
dm                200  200  200       200         200     403:NSP yes
crc_a2            200  200  200       200         200     403:NSP yes
crc_b             404  404  404       404         404     404     no
monitor           404  404  404       404         404     404     no
viewer_a          404  404  404       404         404     404     no
outsider          404  404  404       404         404     404     no
admin             404  404  404       404         404     204     no
"""
ROWS = [line.split() for line in MATRIX.strip().splitlines()[1:]]
ENDPOINTS = ("job", "log", "download", "failedRows", "cancel", "delete")
CODES = {"NSP": NSP, "NRS": NRS}


def _creator(world, username: str) -> None:
    """A user that uploads as a site-A coordinator (demoted later by `_demote`)."""
    with world.db.transaction() as s:
        study = s.scalar(select(Study).where(Study.oid_key == oid_key(STUDY)))
        site = s.scalar(select(Site).where(Site.oid_key == oid_key(SITE_A)))
        user = User(username=username, username_key=username, enabled=True, admin=False)
        s.add(user)
        s.flush()
        s.add(RoleAssignment(user_id=user.id, study_id=study.id, site_id=site.id, role="clinical_research_coordinator"))
    world.headers[username] = world.api.headers(username)


def _demote(world, username: str, now: str | None) -> None:
    """Through the setup API, as an admin would: the coordinator role goes, `now` (if any) comes."""
    client, admin = world.api.client, world.api.admin
    roles = world.api.ok(client.get(f"{P}/admin/users/{username}/roles", headers=admin))
    for role in roles:
        world.api.ok(client.delete(f"{P}/admin/users/{username}/roles/{role['id']}", headers=admin), 204)
    if now:
        world.api.grant(username, now, STUDY, SITE_A)


def _call(world, endpoint: str, job: str, user: str):
    client, headers = world.api.client, world.h(user)
    path = f"{P}/jobs/{job}"
    return {
        "job": lambda: client.get(path, headers=headers),
        "log": lambda: client.get(f"{path}/log", headers=headers),
        "download": lambda: client.get(f"{path}/downloadFile", headers=headers),
        "failedRows": lambda: client.get(f"{path}/failedRows", headers=headers),
        "cancel": lambda: client.post(f"{path}/cancel", headers=headers),
        "delete": lambda: client.delete(path, headers=headers),
    }[endpoint]()


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_job_endpoint_matrix(world, row):
    caller, *answers, listed = row
    creator = {"creator_demoted": "creator_demoted", "creator_roleless": "creator_roleless"}.get(caller, "creator")
    _creator(world, creator)
    jobs = {
        endpoint: world.add_job(
            creator,
            status=IN_QUEUE if endpoint == "cancel" else COMPLETED,
            entries=ENTRIES,
            upload=UPLOAD,
            rows_total=2,
            processed=2,
            created=1,
            failed=1,
        )
        for endpoint in ENDPOINTS
    }
    if caller == "creator_demoted":
        _demote(world, creator, "monitor")
    elif caller == "creator_roleless":
        _demote(world, creator, None)
    user = creator if caller.startswith("creator") else caller
    wrong = []
    for endpoint, expected in zip(ENDPOINTS, answers, strict=True):
        status, _, code = expected.partition(":")
        r = _call(world, endpoint, jobs[endpoint], user)
        got_code = (
            r.json().get("message")
            if r.headers.get("content-type", "").startswith("application/json") and r.content
            else None
        )
        want_code = CODES.get(code) or (NF if status == "404" else None)
        if r.status_code != int(status) or (want_code and got_code != want_code):
            wrong.append(f"{endpoint}: {r.status_code} {got_code}, expected {expected}")
        # PII only to a role that may read it now: the upload's cells appear in failedRows alone.
        if r.status_code == 200 and endpoint != "failedRows":
            assert SECRET_NAME not in r.text, endpoint
        if endpoint == "failedRows" and r.status_code == 200:
            assert SECRET_NAME in r.text
    assert not wrong, "\n".join(wrong)
    listing = world.api.client.get(f"{P}/studies/{STUDY}/jobs", headers=world.h(user))
    seen = {j["uuid"] for j in listing.json()["items"]} if listing.status_code == 200 else set()
    assert (jobs["job"] in seen) is (listed == "yes"), (listing.status_code, listing.text[:200])
