"""GET P/jobs/{uuid}, its log and the log as CSV (downloadFile), on jobs written straight into the tables."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import select, update

from roster import codes
from roster.bulk.models import COMPLETED, FAILED, IN_PROGRESS, IN_QUEUE, Job, LogEntry
from tests.jobs.conftest import SITE_A, STUDY, log_entries

T0 = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def parse_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


def test_a_job_answers_every_field_with_utc_timestamps(world):
    job = world.add_job(
        "crc_a",
        status=COMPLETED,
        register=True,
        source_file_name="juno.csv",
        rows_total=3,
        processed=3,
        created=1,
        updated=1,
        unchanged=0,
        failed=1,
        warnings=["unknown column: Notes"],
        date_created=T0,
        date_started=T0 + dt.timedelta(seconds=1),
        date_completed=T0 + dt.timedelta(seconds=5),
    )
    body = world.get(f"/jobs/{job}", "crc_a").json()
    assert body == {
        "uuid": job,
        "type": "BULK_ADD_PARTICIPANTS",
        "dryRun": False,
        "revertOf": None,
        "status": COMPLETED,
        "studyOid": STUDY,
        "siteOid": SITE_A,
        "register": True,
        "sourceFileName": "juno.csv",
        "createdBy": "crc_a",
        "dateCreated": "2025-03-01T12:00:00Z",
        "dateStarted": "2025-03-01T12:00:01Z",
        "dateCompleted": "2025-03-01T12:00:05Z",
        "counts": {
            "rows": 3,
            "processed": 3,
            "created": 1,
            "updated": 1,
            "unchanged": 0,
            "failed": 1,
            "deleted": 0,
            "restored": 0,
        },
        "progress": 1.0,
        "rowsPerSecond": None,
        "etaSeconds": None,
        "cancelRequested": False,
        "includeParticipateInfo": False,
        "warnings": ["unknown column: Notes"],
        "error": None,
        "errorMessage": None,
    }


def test_a_running_job_tells_its_rate_and_time_left(world):
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)
    job = world.add_job("crc_a", status=IN_PROGRESS, rows_total=3000, processed=1000, date_started=started)
    body = world.get(f"/jobs/{job}", "crc_a").json()
    # 1000 rows in about 10 s (the request itself takes a moment): about 100 rows/s, 2000 rows left.
    assert 90 <= body["rowsPerSecond"] <= 100
    assert 20 <= body["etaSeconds"] <= 23


@pytest.mark.parametrize(
    ("status", "rows", "processed", "started"),
    [
        (IN_QUEUE, None, 0, False),
        (IN_PROGRESS, 100, 0, True),
        (COMPLETED, 100, 100, True),
        (IN_PROGRESS, None, 50, True),
    ],
)
def test_rate_and_eta_are_null_when_unknown(world, status, rows, processed, started):
    """Not running, nothing processed yet: no rate. Rows not counted yet: a rate but no ETA."""
    date_started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5) if started else None
    job = world.add_job("crc_a", status=status, rows_total=rows, processed=processed, date_started=date_started)
    body = world.get(f"/jobs/{job}", "crc_a").json()
    assert body["etaSeconds"] is None
    assert (body["rowsPerSecond"] is not None) == (status == IN_PROGRESS and processed > 0)


@pytest.mark.parametrize(
    ("status", "rows", "processed", "progress"),
    [
        (IN_QUEUE, None, 0, 0.0),
        (IN_PROGRESS, None, 0, 0.0),
        (IN_PROGRESS, 400, 100, 0.25),
        (FAILED, 3, 1, 0.3333),
        (COMPLETED, None, 0, 1.0),
    ],
)
def test_progress_is_processed_over_rows_once_counted_and_one_when_completed(world, status, rows, processed, progress):
    job = world.add_job("crc_a", status=status, rows_total=rows, processed=processed)
    assert world.get(f"/jobs/{job}", "crc_a").json()["progress"] == progress


def test_a_failed_job_carries_its_job_level_code(world):
    job = world.add_job("crc_a", status=FAILED, error=codes.JOB_ATTEMPTS_EXHAUSTED)
    body = world.get(f"/jobs/{job}", "crc_a").json()
    assert body["error"] == codes.JOB_ATTEMPTS_EXHAUSTED
    assert body["errorMessage"] == codes.message_for(codes.JOB_ATTEMPTS_EXHAUSTED)


def test_uuid_is_matched_in_any_case(world):
    job = world.add_job("crc_a")
    assert world.get(f"/jobs/{job.upper()}", "crc_a").json()["uuid"] == job


@pytest.mark.parametrize("user", ["crc_a", "crc_a2", "dm"])
def test_creator_and_writers_covering_the_site_see_the_job_and_its_log(world, user):
    job = world.add_job("crc_a", entries=log_entries(2))
    for path in ("", "/log", "/downloadFile"):
        assert world.get(f"/jobs/{job}{path}", user).status_code == 200, (user, path)


@pytest.mark.parametrize("user", ["crc_b", "monitor", "viewer_a", "outsider", "admin"])
def test_everybody_else_gets_404_job_not_found(world, user):
    job = world.add_job("crc_a", entries=log_entries(2))
    for path in ("", "/log", "/downloadFile", "/failedRows"):
        r = world.get(f"/jobs/{job}{path}", user)
        assert (r.status_code, r.json()["message"]) == (404, codes.JOB_NOT_FOUND), (user, path)
    r = world.api.client.post(f"/pages/auth/api/jobs/{job}/cancel", headers=world.h(user))
    assert (r.status_code, r.json()["message"]) == (404, codes.JOB_NOT_FOUND)


@pytest.mark.parametrize("value", ["5b0d9a52-2f7e-4c39-9a43-0c1f6f1f2b11", "not-a-uuid", "1"])
def test_an_unknown_or_malformed_uuid_is_just_not_found(world, value):
    r = world.get(f"/jobs/{value}", "dm")
    assert (r.status_code, r.json()["message"]) == (404, codes.JOB_NOT_FOUND)


def test_log_entries_come_in_row_order_with_their_errors(world):
    entries = log_entries(5, failed_every=2)
    entries[0] |= {"outcome": "updated", "participate_status": "Created"}
    job = world.add_job("crc_a", status=COMPLETED, entries=list(reversed(entries)))
    body = world.get(f"/jobs/{job}/log", "crc_a").json()
    assert [e["row"] for e in body["items"]] == [1, 2, 3, 4, 5] and body["total"] == 5
    assert body["items"][0] == {
        "row": 1,
        "line": 2,
        "participantId": "P-1",
        "participantOid": "SS_P1",
        "outcome": "updated",
        "participateStatus": "Created",
        "errors": [],
    }
    assert body["items"][1] == {
        "row": 2,
        "line": 3,
        "participantId": "P-2",
        "participantOid": None,
        "outcome": "failed",
        "participateStatus": None,
        "errors": [{"code": "errorCode.invalidEmailAddress", "column": "emailAddress", "message": "bad"}],
    }


def test_log_outcome_filter_and_pagination(world):
    job = world.add_job("crc_a", status=COMPLETED, entries=log_entries(25, failed_every=3))
    body = world.get(f"/jobs/{job}/log", "crc_a", outcome="FAILED", page=2, pageSize=5).json()
    assert body["total"] == 8 and body["page"] == 2 and body["pageSize"] == 5
    assert [e["row"] for e in body["items"]] == [18, 21, 24]
    assert [
        e["row"] for e in world.get(f"/jobs/{job}/log", "crc_a", outcome="created", pageSize=3).json()["items"]
    ] == [1, 2, 4]
    assert world.get(f"/jobs/{job}/log", "crc_a", outcome="updated").json() == {
        "items": [],
        "page": 1,
        "pageSize": 50,
        "total": 0,
    }
    assert world.get(f"/jobs/{job}/log", "crc_a", page=3, pageSize=10).json()["items"][-1]["row"] == 25


@pytest.mark.parametrize("params", [{"outcome": "success"}, {"pageSize": 1001}, {"page": 0}])
def test_log_rejects_bad_parameters_with_422(world, params):
    job = world.add_job("crc_a", entries=log_entries(1))
    r = world.get(f"/jobs/{job}/log", "crc_a", **params)
    assert r.status_code == 422 and r.json()["message"] == codes.VALIDATION_FAILED


def test_download_file_is_the_log_as_openclinica_csv(world):
    entries = [
        {
            "row": 1,
            "participant_id": "JUNO-1",
            "participant_oid": "SS_JUNO1",
            "outcome": "created",
            "participate_status": "Created",
        },
        {"row": 2, "participant_id": "JUNO-2", "participant_oid": "SS_JUNO2", "outcome": "updated"},
        {"row": 3, "participant_id": "JUNO-3", "participant_oid": "SS_JUNO3", "outcome": "unchanged"},
        {
            "row": 4,
            "participant_id": "JUNO<4>",
            "participant_oid": None,
            "outcome": "failed",
            "errors": [
                {"code": codes.PARTICIPANT_ID_HTML, "column": "ParticipantID", "message": "m"},
                {"code": codes.INVALID_EMAIL, "column": "emailAddress", "message": "m"},
            ],
        },
    ]
    job = world.add_job("crc_a", status=COMPLETED, source_file_name="juno list.csv", entries=entries)
    r = world.get(f"/jobs/{job}/downloadFile", "crc_a")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="juno list-log.csv"'
    assert r.content.startswith(b"Row,ParticipantID,Participant OID,Participate Status,Status,Message\r\n")
    assert parse_csv(r) == [
        ["Row", "ParticipantID", "Participant OID", "Participate Status", "Status", "Message"],
        ["1", "JUNO-1", "SS_JUNO1", "Created", "Created", "Success"],
        ["2", "JUNO-2", "SS_JUNO2", "", "Updated", "Success"],
        ["3", "JUNO-3", "SS_JUNO3", "", "Unchanged", "Success"],
        ["4", "JUNO<4>", "", "", "Failed", f"{codes.PARTICIPANT_ID_HTML}; {codes.INVALID_EMAIL}"],
    ]


def test_download_file_opens_inline_when_asked(world):
    job = world.add_job("crc_a", entries=log_entries(1))
    r = world.get(f"/jobs/{job}/downloadFile", "crc_a", open="true")
    assert r.headers["content-disposition"] == 'inline; filename="participants-log.csv"'


def test_download_file_escapes_cells_a_spreadsheet_would_run(world):
    entries = [
        {"row": 1, "participant_id": "=cmd()", "outcome": "created"},
        {"row": 2, "participant_id": "@x", "outcome": "created"},
        {
            "row": 3,
            "participant_id": "+1 6175551234",
            "outcome": "failed",
            "errors": [{"code": codes.INVALID_MOBILE, "column": "x", "message": "m"}],
        },
        {"row": 4, "participant_id": "-2", "outcome": "created"},
    ]
    job = world.add_job("crc_a", entries=entries)
    ids = [line[1] for line in parse_csv(world.get(f"/jobs/{job}/downloadFile", "crc_a"))[1:]]
    assert ids == ["'=cmd()", "'@x", "'+1 6175551234", "'-2"]


def test_download_file_of_a_running_job_has_the_rows_so_far_and_more_later(world):
    job = world.add_job("crc_a", status=IN_PROGRESS, rows_total=10, processed=4, entries=log_entries(4))
    assert [row[0] for row in parse_csv(world.get(f"/jobs/{job}/downloadFile", "crc_a"))] == ["Row", "1", "2", "3", "4"]
    with world.db.transaction() as s:
        job_id = s.scalar(select(Job.id).where(Job.uuid == job))
        s.execute(update(Job).where(Job.id == job_id).values(processed=6))
        s.add_all([LogEntry(job_id=job_id, row=r, line=r + 1, outcome="created", errors=[]) for r in (5, 6)])
    assert len(parse_csv(world.get(f"/jobs/{job}/downloadFile", "crc_a"))) == 7


def test_download_file_of_a_queued_job_is_just_the_header(world):
    job = world.add_job("crc_a")
    assert (
        world.get(f"/jobs/{job}/downloadFile", "crc_a").content
        == b"Row,ParticipantID,Participant OID,Participate Status,Status,Message\r\n"
    )


def test_download_file_streams_a_log_longer_than_one_query_batch(world, monkeypatch):
    from roster.bulk import jobs_service

    monkeypatch.setattr(jobs_service, "STREAM_BATCH", 7)
    job = world.add_job("crc_a", status=COMPLETED, entries=log_entries(50, failed_every=5))
    rows = parse_csv(world.get(f"/jobs/{job}/downloadFile", "crc_a"))
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 51))
    assert sum(r[4] == "Failed" for r in rows[1:]) == 10
