"""`roster demo`: an idempotent demo study, two sites, a user per role, a sample CSV, a token and a curl line."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.orm import Session

from roster.auth import schemas as auth_schemas
from roster.auth import service as users
from roster.auth.models import Role
from roster.auth.tokens import TokenService
from roster.config import Settings
from roster.db import Database
from roster.private import private_dir
from roster.studies import schemas as study_schemas
from roster.studies import service as studies

STUDY_OID = "S_DEMO(TEST)"
SITES = (("S_BOSTON(TEST)", "Boston Medical Center"), ("S_LONDON(TEST)", "London Royal Infirmary"))
DEMO_PASSWORD = "roster-demo-password"
# (username, role, site index or None for study level, admin)
DEMO_USERS = (
    ("admin", None, None, True),
    ("datamanager", Role.DATA_MANAGER, None, False),
    ("investigator", Role.INVESTIGATOR, None, False),
    ("crc.boston", Role.CLINICAL_RESEARCH_COORDINATOR, 0, False),
    ("crc.london", Role.CLINICAL_RESEARCH_COORDINATOR, 1, False),
    ("monitor", Role.MONITOR, None, False),
    ("viewer", Role.VIEWER, 0, False),
)
SAMPLE_CSV = (
    "ParticipantID,firstName,lastName,emailAddress,mobileNumber,identifier\r\n"
    "JUNO-005,Ada,Lovelace,ada@example.org,+44 2071234567,ID-5\r\n"
    "JUNO-006,Alan,Turing,alan@example.org,+44 2079876543,ID-6\r\n"
    "JUNO-007,Grace,Hopper,not-an-email,+1 617555,ID-7\r\n"
)


@dataclass
class DemoResult:
    token: str | None
    csv_path: Path
    curl: str
    client_commands: tuple[str, ...] = ()


ENROLLMENT_CAP = 1000


def cap_sentence() -> str:
    return f"the study caps enrollment at {ENROLLMENT_CAP:,} participants (its sites have no cap of their own)."


def seed(session: Session) -> None:
    study = studies.find_study(session, STUDY_OID) or studies.create_study(
        session,
        study_schemas.StudyCreate(
            oid=STUDY_OID, name="Demo Study (JUNO)", participate_active=True, enrollment_cap=ENROLLMENT_CAP
        ),
    )
    sites = []
    for oid, name in SITES:
        site = next((s for s in study.sites if s.oid == oid), None)
        sites.append(site or studies.create_site(session, study, study_schemas.SiteCreate(oid=oid, name=name)))
    session.refresh(study)
    for username, role, site_index, is_admin in DEMO_USERS:
        user = users.find_user(session, username) or users.create_user(
            session, auth_schemas.UserCreate(username=username, password=DEMO_PASSWORD, admin=is_admin)
        )
        if role is None or user.roles:
            continue
        site_oid = sites[site_index].oid if site_index is not None else None
        users.assign_role(session, user, auth_schemas.RoleCreate(study_oid=STUDY_OID, site_oid=site_oid, role=role))


def run(settings: Settings, db: Database, base_url: str) -> DemoResult:
    with db.transaction() as session:
        seed(session)
    tokens = TokenService(settings)
    csv_path = settings.data_dir / "demo-participants.csv"
    private_dir(csv_path.parent)
    csv_path.write_text(SAMPLE_CSV, encoding="utf-8")
    if not tokens.can_issue:
        # An external identity provider issues the tokens; Roster holds no signing key.
        return DemoResult(token=None, csv_path=csv_path, curl="")
    token, _ = tokens.issue("datamanager")
    site_path = f"{base_url}/pages/auth/api/clinicaldata/studies/{quote(STUDY_OID)}/sites/{quote(SITES[0][0])}"
    url = f"{site_path}/participants/bulk?register=y"
    # The answer is exactly `job uuid: <uuid>` (SPEC §4), no line break: `-w '\n'` keeps the prompt off its line.
    curl = " ".join(
        [
            "curl",
            "-X",
            "POST",
            shlex.quote(url),
            "-H",
            shlex.quote(f"Authorization: Bearer {token}"),
            "-F",
            shlex.quote(f"file=@{csv_path.resolve()}"),
            "-w",
            shlex.quote("\\n"),
        ]
    )
    url_option = "" if base_url == "http://127.0.0.1:8000" else f" --url {shlex.quote(base_url)}"
    client = (
        f"roster login{url_option} --username datamanager   # password: {DEMO_PASSWORD}",
        f"roster upload {shlex.quote(str(csv_path.resolve()))}{url_option} --study {shlex.quote(STUDY_OID)} --site "
        f"{shlex.quote(SITES[0][0])} --register --wait",
    )
    return DemoResult(token=token, csv_path=csv_path, curl=curl, client_commands=client)
