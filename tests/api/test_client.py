"""The `roster` client commands (SPEC §12) against a live server: output, and exit statuses
(upload --wait: 0 all rows applied, 1 some failed, 3 job FAILED/CANCELLED; 2 refused)."""

from __future__ import annotations

import argparse
import io
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from roster import __version__
from roster.cli import build_parser, main
from tests.live import LiveServer
from tests.support import PASSWORD, Api

STUDY, SITE, OTHER_SITE = "S_JU0(TEST)", "S_BOSTON_7642(TEST)", "S_LONDON(TEST)"
GOOD = "ParticipantID,firstName,emailAddress\r\nJUNO-001,Ada,ada@example.org\r\nJUNO-002,Alan,alan@example.org\r\n"
ONE_BAD = GOOD + "JUNO-003,Grace,not-an-email\r\n"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def roster(capsys, monkeypatch, tmp_path: Path):
    """Runs `roster …` in this process, as a user would from a shell, with its own config directory."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("ROSTER_TOKEN", raising=False)
    monkeypatch.delenv("ROSTER_URL", raising=False)

    def run(*args: str, stdin: str = "") -> Result:
        capsys.readouterr()
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def world(api: Api, server: LiveServer, roster, monkeypatch, tmp_path: Path):
    """A study with two sites and a data manager signed in with `roster login` against the live server."""
    api.setup_study(STUDY, sites=(SITE, OTHER_SITE), participateActive=True)
    api.user("dm", "data_manager", STUDY)
    monkeypatch.setenv("ROSTER_URL", server.url)
    login = roster("login", "--username", "dm", "--password-stdin", stdin=PASSWORD + "\n")
    assert login.code == 0, login.err
    return server


def csv_file(tmp_path: Path, text: str, name: str = "participants.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def upload(roster, tmp_path: Path, text: str, *extra: str) -> Result:
    return roster("upload", csv_file(tmp_path, text), "--study", STUDY, "--site", SITE, *extra)


def job_uuid(result: Result) -> str:
    line = next(line for line in result.out.splitlines() if line.startswith("job uuid: "))
    return line.removeprefix("job uuid: ")


def test_login_keeps_the_token_for_the_url_readable_by_the_user_only(world, roster, tmp_path):
    store = tmp_path / "config" / "roster" / "tokens.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert world.url in store.read_text()
    # Later commands use the stored token.
    assert roster("jobs").code == 0


def test_login_with_a_wrong_password_is_refused_with_the_code(world, roster):
    result = roster("login", "--username", "dm", "--password-stdin", stdin="wrong-password\n")
    assert result.code == 2
    assert "errorCode.invalidCredentials" in result.err


def test_upload_wait_exits_0_when_every_row_is_applied(world, roster, tmp_path):
    result = upload(roster, tmp_path, GOOD, "--wait")
    assert result.code == 0, result.err
    assert result.out.startswith("job uuid: ")
    assert "COMPLETED: 2 of 2 rows processed (2 created, 0 updated, 0 unchanged, 0 failed)" in result.out
    # The progress bar (stderr): rows done and the rate.
    assert "2/2 rows" in result.err and "rows/s" in result.err


def test_upload_wait_exits_1_when_some_rows_failed(world, roster, tmp_path):
    result = upload(roster, tmp_path, ONE_BAD, "--wait", "--register")
    assert result.code == 1, result.err
    assert "COMPLETED: 3 of 3 rows processed (2 created, 0 updated, 0 unchanged, 1 failed)" in result.out


def test_upload_without_wait_prints_the_job_and_exits_0(world, roster, tmp_path):
    result = upload(roster, tmp_path, GOOD)
    assert result.code == 0
    assert len(job_uuid(result)) == 36


def test_upload_refused_exits_2_with_the_code_and_sentence(world, roster, tmp_path):
    result = roster("upload", csv_file(tmp_path, GOOD), "--study", "S_NONE", "--site", SITE)
    assert result.code == 2
    assert "roster: errorCode.studyNotExist:" in result.err and "(HTTP 404)" in result.err
    blank = upload(roster, tmp_path, "ParticipantID\r\n")
    assert (blank.code, "errorCode.blankFile" in blank.err) == (2, True)
    missing = roster("upload", str(tmp_path / "nope.csv"), "--study", STUDY, "--site", SITE)
    assert missing.code == 2 and "no such file" in missing.err


def test_upload_dry_run_sends_dry_run_and_the_server_decides(world, roster, tmp_path):
    """`--dry-run` sends dryRun=y; a server without it ignores the parameter, one with it validates only."""
    result = upload(roster, tmp_path, GOOD, "--dry-run", "--wait")
    # Either way every row of this file is (or would be) applied.
    assert result.code == 0, result.err
    assert "COMPLETED: 2 of 2 rows processed" in result.out


def test_upload_wait_exits_3_when_the_job_is_cancelled(start_server, api: Api, roster, monkeypatch, tmp_path):
    server = start_server(embedded_workers=0)  # no worker: the job stays queued until cancelled
    api.setup_study(STUDY, sites=(SITE,))
    dm = api.user("dm", "data_manager", STUDY)
    monkeypatch.setenv("ROSTER_URL", server.url)
    monkeypatch.setenv("ROSTER_TOKEN", dm["Authorization"].removeprefix("Bearer "))
    results: list[Result] = []
    waiting = threading.Thread(target=lambda: results.append(upload(roster, tmp_path, GOOD, "--wait")))
    waiting.start()
    deadline = time.monotonic() + 20
    while not (jobs := api.client.get(f"/pages/auth/api/studies/{STUDY}/jobs", headers=dm).json()["items"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    api.ok(api.client.post(f"/pages/auth/api/jobs/{jobs[0]['uuid']}/cancel", headers=dm))
    waiting.join(timeout=30)
    assert results[0].code == 3, results[0]
    assert "CANCELLED: 0 of" in results[0].out


def test_jobs_lists_what_the_caller_sees_tab_separated_when_piped(world, roster, tmp_path):
    uuid = job_uuid(upload(roster, tmp_path, GOOD, "--wait"))
    for args in (
        ("jobs",),
        ("jobs", "--study", STUDY),
        ("jobs", "--study", STUDY, "--site", SITE, "--status", "completed"),
    ):
        lines = roster(*args).out.splitlines()
        assert lines[0].split("\t")[:3] == ["uuid", "status", "study"]
        assert lines[1].split("\t")[:4] == [uuid, "COMPLETED", STUDY, SITE]
    assert roster("jobs", "--study", STUDY, "--site", OTHER_SITE).out.splitlines()[1:] == []
    assert roster("jobs", "--site", SITE).code == 2


def test_job_show_log_failed_rows_and_download(world, roster, tmp_path):
    uuid = job_uuid(upload(roster, tmp_path, ONE_BAD, "--wait"))
    show = roster("job", "show", uuid)
    assert f"uuid: {uuid}" in show.out and "status: COMPLETED" in show.out
    assert "counts: rows 3, processed 3, created 2, updated 0, unchanged 0, failed 1" in show.out
    assert '"status": "COMPLETED"' in roster("job", "show", uuid, "--json").out

    log = roster("job", "log", uuid).out.splitlines()
    assert log[0] == "row 1\tline 2\tJUNO-001\tSS_JUNO001\tcreated"
    assert log[2] == "row 3\tline 4\tJUNO-003\t-\tfailed\temailAddress: errorCode.invalidEmailAddress"
    assert roster("job", "log", uuid, "--outcome", "failed").out.splitlines() == [log[2]]

    failed = roster("job", "failed-rows", uuid)
    assert failed.out.splitlines() == ["ParticipantID,firstName,emailAddress", "JUNO-003,Grace,not-an-email"]
    target = tmp_path / "log.csv"
    assert roster("job", "download", uuid, "-o", str(target)).code == 0
    assert target.read_text().splitlines()[0] == "Row,ParticipantID,Participant OID,Participate Status,Status,Message"
    assert target.read_text().splitlines()[3].endswith("Failed,errorCode.invalidEmailAddress")


def test_job_cancel_delete_and_refusals(world, roster, tmp_path):
    uuid = job_uuid(upload(roster, tmp_path, GOOD, "--wait"))
    cancel = roster("job", "cancel", uuid)
    assert cancel.code == 2 and "errorCode.jobNotCancellable" in cancel.err and "(HTTP 409)" in cancel.err
    assert roster("job", "delete", uuid).out.strip() == f"{uuid}: deleted"
    gone = roster("job", "show", uuid)
    assert gone.code == 2 and "errorCode.jobNotFound" in gone.err


def test_job_cancel_of_a_queued_job_prints_cancelled(start_server, api: Api, roster, monkeypatch, tmp_path):
    server = start_server(embedded_workers=0)
    api.setup_study(STUDY, sites=(SITE,))
    dm = api.user("dm", "data_manager", STUDY)
    monkeypatch.setenv("ROSTER_URL", server.url)
    monkeypatch.setenv("ROSTER_TOKEN", dm["Authorization"].removeprefix("Bearer "))
    uuid = job_uuid(upload(roster, tmp_path, GOOD))
    assert roster("job", "cancel", uuid).out.strip() == f"{uuid}: CANCELLED"


def test_revert_reports_the_servers_answer(world, roster, tmp_path):
    """The revert endpoint (SPEC §11.2) is called at its path; until the server has it, its 404 is reported
    like any refusal, with exit 2."""
    uuid = job_uuid(upload(roster, tmp_path, GOOD, "--wait"))
    revert = roster("job", "revert", uuid)
    assert revert.code in (0, 2)
    assert ("job uuid: " in revert.out) if revert.code == 0 else ("errorCode." in revert.err)


def test_extract_waits_for_the_job_and_writes_its_csv(world, roster, tmp_path):
    """SPEC §11.3: the participants uploaded, in ID order, to stdout or to -o FILE."""
    job_uuid(upload(roster, tmp_path, GOOD, "--wait"))
    extract = roster("extract", "--study", STUDY, "--site", SITE)
    assert extract.code == 0, extract.err
    lines = extract.out.splitlines()
    assert lines[0].startswith("ParticipantID,Participant OID,Status,Participate Status")
    assert [line.split(",")[0] for line in lines[1:]] == ["JUNO-001", "JUNO-002"]
    target = tmp_path / "extract.csv"
    again = roster("extract", "--study", STUDY, "--site", SITE, "--include-participate-info", "-o", str(target))
    assert again.code == 0, again.err
    assert target.read_text(encoding="utf-8").splitlines()[0].endswith(",Access Code")


def test_setup_commands_create_study_site_user_and_role(api: Api, server: LiveServer, roster, monkeypatch):
    monkeypatch.setenv("ROSTER_URL", server.url)
    monkeypatch.setenv("ROSTER_TOKEN", api.admin["Authorization"].removeprefix("Bearer "))
    study = roster(
        "study", "create", "S_NEW(TEST)", "--name", "New Study", "--participate-active", "--enrollment-cap", "500"
    )
    assert study.out.strip() == "created study S_NEW(TEST) (New Study; enrollment cap 500)"
    assert roster("study", "create", "S_SYS", "--name", "System", "--id-template", "SYS-###").code == 0
    site = roster("site", "create", "S_NEW(TEST)", "S_SITE(TEST)", "--name", "New Site")
    assert site.out.strip() == "created site S_SITE(TEST) (New Site) in study S_NEW(TEST)"
    user = roster("user", "create", "newbie", stdin="a-long-password-1\n")
    assert user.out.strip() == "created user newbie"
    grant = roster(
        "role", "grant", "newbie", "clinical_research_coordinator", "--study", "S_NEW(TEST)", "--site", "S_SITE(TEST)"
    )
    assert grant.out.startswith(
        "granted clinical_research_coordinator at site S_SITE(TEST) of study S_NEW(TEST) to newbie"
    )
    # What the server now holds, through the API.
    roles = api.ok(api.client.get("/pages/auth/api/admin/users/newbie/roles", headers=api.admin))
    assert [(r["studyOid"], r["siteOid"], r["role"]) for r in roles] == [
        ("S_NEW(TEST)", "S_SITE(TEST)", "clinical_research_coordinator")
    ]
    again = roster("study", "create", "S_NEW(TEST)", "--name", "Again")
    assert again.code == 2 and "errorCode.studyAlreadyExists" in again.err
    assert roster("user", "create", "nopassword").code == 2
    invalid = roster("study", "create", "S BAD", "--name", "x")
    assert invalid.code == 2 and "errorCode.validationFailed" in invalid.err and "oid:" in invalid.err


def test_roster_token_overrides_and_no_token_is_a_refusal_with_a_hint(
    api: Api, server: LiveServer, roster, monkeypatch
):
    monkeypatch.setenv("ROSTER_URL", server.url)
    anonymous = roster("jobs")
    assert anonymous.code == 2 and "errorCode.unauthorized" in anonymous.err and "roster login" in anonymous.err
    monkeypatch.setenv("ROSTER_TOKEN", "not-a-token")
    assert "errorCode.unauthorized" in roster("jobs").err


def test_an_unreachable_server_exits_2(roster):
    result = roster("jobs", "--url", "http://127.0.0.1:9")
    assert result.code == 2 and "cannot reach http://127.0.0.1:9" in result.err


def test_version_and_a_help_text_on_every_option(roster):
    assert roster("--version").out.strip() == f"roster {__version__}"
    missing = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:  # argparse keeps no public list of a parser's arguments
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}")
            elif not action.help:
                missing.append(f"{name}: {action.dest}")

    walk(build_parser(), "roster")
    assert missing == []
    # Errors name what the user typed, not internal destinations.
    assert "db_command" not in roster("db").err
