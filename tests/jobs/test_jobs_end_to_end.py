"""The jobs endpoints on real jobs: upload through the bulk endpoint, run the worker, read back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading

import pytest
from sqlalchemy import func, select, update

from roster import codes
from roster.bulk import queue
from roster.bulk.importer import Importer, Stopped
from roster.bulk.models import CANCELLED, COMPLETED, IN_PROGRESS, IN_QUEUE, Job, LogEntry, UploadChunk
from roster.bulk.worker import drain
from roster.participants.models import Participant
from tests.jobs.conftest import SITE_A, SITE_B, STUDY
from tests.sinks import hooked
from tests.support import P

FILE = (
    b"ParticipantID,firstName,emailAddress,Notes\r\n"
    b"JUNO-1,Ann,ann@example.org,first\r\n"
    b"JUNO-2,Bob,not-an-address,second\r\n"
    b"=cmd(),Eve,,third\r\n"
    b"@x,,,fourth\r\n"
)


def upload(world, content: bytes, user: str = "crc_a", name: str = "juno.csv", site: str = SITE_A) -> str:
    r = world.api.client.post(
        f"{P}/clinicaldata/studies/{STUDY}/sites/{site}/participants/bulk",
        files={"file": (name, content, "text/csv")},
        headers=world.h(user),
    )
    assert r.status_code == 200, r.text
    return r.text.removeprefix("job uuid: ")


def table(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


def test_a_processed_upload_reads_back_through_every_jobs_endpoint(world, settings):
    job = upload(world, FILE)
    queued = world.get(f"/jobs/{job}", "crc_a").json()
    assert (queued["status"], queued["progress"], queued["counts"]["rows"], queued["dateStarted"]) == (
        IN_QUEUE,
        0.0,
        None,
        None,
    )
    assert drain(world.db, settings) == 1

    body = world.get(f"/jobs/{job}", "crc_a").json()
    assert body["status"] == COMPLETED and body["progress"] == 1.0 and body["error"] is None
    assert body["counts"] == {
        "rows": 4,
        "processed": 4,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "failed": 1,
        "deleted": 0,
        "restored": 0,
    }
    assert (body["studyOid"], body["siteOid"], body["createdBy"], body["sourceFileName"], body["register"]) == (
        STUDY,
        SITE_A,
        "crc_a",
        "juno.csv",
        False,
    )
    assert any("Notes" in w for w in body["warnings"])
    started, completed = (dt.datetime.fromisoformat(body[k]) for k in ("dateStarted", "dateCompleted"))
    assert (
        started.utcoffset() == dt.timedelta(0)
        and dt.datetime.fromisoformat(body["dateCreated"]) <= started <= completed
    )

    log = world.get(f"/jobs/{job}/log", "dm").json()
    assert [(e["row"], e["line"], e["participantId"], e["outcome"]) for e in log["items"]] == [
        (1, 2, "JUNO-1", "created"),
        (2, 3, "JUNO-2", "failed"),
        (3, 4, "=cmd()", "created"),
        (4, 5, "@x", "created"),
    ]
    assert log["items"][0]["participantOid"] == "SS_JUNO1"
    assert [(e["code"], e["column"]) for e in log["items"][1]["errors"]] == [(codes.INVALID_EMAIL, "emailAddress")]

    assert table(world.get(f"/jobs/{job}/downloadFile", "crc_a2")) == [
        ["Row", "ParticipantID", "Participant OID", "Participate Status", "Status", "Message"],
        ["1", "JUNO-1", "SS_JUNO1", "", "Created", "Success"],
        ["2", "JUNO-2", "", "", "Failed", codes.INVALID_EMAIL],
        ["3", "'=cmd()", "SS_CMD", "", "Created", "Success"],
        ["4", "'@x", "SS_X", "", "Created", "Success"],
    ]
    assert [j["uuid"] for j in world.get(f"/studies/{STUDY}/sites/{SITE_A}/jobs", "dm").json()["items"]] == [job]
    assert world.get(f"/jobs/{job}", "crc_b").status_code == 404


def test_uploading_the_same_file_again_logs_every_good_row_unchanged(world, settings):
    upload(world, FILE)
    again = upload(world, FILE)
    drain(world.db, settings)
    log = world.get(f"/jobs/{again}/log", "crc_a", outcome="unchanged", pageSize=2).json()
    assert log["total"] == 3 and [e["row"] for e in log["items"]] == [1, 3]
    assert (
        world.get(f"/jobs/{again}/log", "crc_a", outcome="unchanged", page=2, pageSize=2).json()["items"][0]["row"] == 4
    )
    assert world.get(f"/jobs/{again}/log", "crc_a", outcome="created").json()["total"] == 0
    latest = world.get(f"/studies/{STUDY}/jobs", "crc_a", status="completed").json()
    assert latest["total"] == 2 and latest["items"][0]["uuid"] == again


def test_failed_rows_of_a_semicolon_upload_can_be_fixed_and_uploaded_again(world, settings):
    content = (
        b"Notes;ParticipantID;emailAddress;Favourite colour\r\n"
        b"ok;SEMI-1;a@example.org;red\r\n"
        b'"bad; mail";SEMI-2;nope;blue\r\n'
        b"long id;SEMI-333333333333333333333333333333;c@example.org;green\r\n"
    )
    job = upload(world, content, name="semi.csv")
    drain(world.db, settings)
    r = world.get(f"/jobs/{job}/failedRows", "crc_a")
    assert r.headers["content-disposition"] == 'attachment; filename="semi-failed-rows.csv"'
    assert r.content == (
        b"Notes;ParticipantID;emailAddress;Favourite colour\r\n"
        b'"bad; mail";SEMI-2;nope;blue\r\n'
        b"long id;SEMI-333333333333333333333333333333;c@example.org;green\r\n"
    )
    fixed = r.content.replace(b"nope", b"b@example.org").replace(b"SEMI-333333333333333333333333333333", b"SEMI-3")
    again = upload(world, fixed, name="semi-failed-rows.csv")
    drain(world.db, settings)
    assert world.get(f"/jobs/{again}", "crc_a").json()["counts"]["created"] == 2
    assert (
        world.get(f"/jobs/{again}/failedRows", "crc_a").content
        == b"Notes;ParticipantID;emailAddress;Favourite colour\r\n"
    )


def test_failed_rows_whose_cells_roster_escaped_as_formulas_import_after_the_fix(world, settings):
    # failedRows writes `+1 6175551234` as `'+1 6175551234` (formula-safe); reading it back must undo that,
    # or the fixed file would fail again with invalidMobileNumber.
    content = b"ParticipantID,mobileNumber,emailAddress\r\n-DASH-1,+1 6175551234,nope\r\n"
    job = upload(world, content)
    drain(world.db, settings)
    failed_rows = world.get(f"/jobs/{job}/failedRows", "crc_a").content
    assert failed_rows == b"ParticipantID,mobileNumber,emailAddress\r\n'-DASH-1,'+1 6175551234,nope\r\n"
    again = upload(world, failed_rows.replace(b"nope", b"dash@example.org"), name="fixed.csv")
    drain(world.db, settings)
    log = world.get(f"/jobs/{again}/log", "crc_a").json()["items"]
    assert [(e["participantId"], e["outcome"], e["errors"]) for e in log] == [("-DASH-1", "created", [])]


def test_a_job_cancelled_while_queued_is_never_run(world, settings):
    job = upload(world, FILE)
    r = world.api.client.post(f"{P}/jobs/{job}/cancel", headers=world.h("crc_a"))
    assert (r.status_code, r.json()["status"]) == (200, CANCELLED)
    assert drain(world.db, settings) == 0
    assert world.get(f"/jobs/{job}/log", "crc_a").json()["total"] == 0
    with world.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0


def test_a_running_job_cancelled_stops_after_its_batch_keeping_what_it_applied(world, settings):
    rows = "".join(f"RUN-{i},Name{i}\r\n" for i in range(1, 8))
    job = upload(world, f"ParticipantID,firstName\r\n{rows}".encode())
    claim = queue.claim(world.db, settings.job_lease_seconds)

    def cancel_while_the_first_batch_runs(_job, plan):
        if plan.rows[0].entry.row == 1:
            r = world.api.client.post(f"{P}/jobs/{job}/cancel", headers=world.h("dm"))
            assert r.status_code == 202 and r.json()["status"] == IN_PROGRESS and r.json()["cancelRequested"] is True

    sinks = hooked(before=cancel_while_the_first_batch_runs)
    assert Importer(world.db, settings.model_copy(update={"batch_size": 3}), claim, sinks=sinks).run() == CANCELLED
    body = world.get(f"/jobs/{job}", "crc_a").json()
    assert body["status"] == CANCELLED and body["dateCompleted"] is not None
    assert body["counts"] | {"rows": 7} == {
        "rows": 7,
        "processed": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "deleted": 0,
        "restored": 0,
    }
    assert 0 < body["progress"] < 1
    assert [row[0] for row in table(world.get(f"/jobs/{job}/downloadFile", "crc_a"))[1:]] == ["1", "2", "3"]
    r = world.api.client.post(f"{P}/jobs/{job}/cancel", headers=world.h("dm"))
    assert (r.status_code, r.json()["message"]) == (409, codes.JOB_NOT_CANCELLABLE)


def test_download_file_while_the_job_runs_has_the_rows_so_far_then_all_rows_once(world, settings):
    rows = "".join(f"LIVE-{i}\r\n" for i in range(1, 11))
    job = upload(world, f"ParticipantID\r\n{rows}".encode())
    claim = queue.claim(world.db, settings.job_lease_seconds)
    stop = threading.Event()
    stop.set()  # the importer stops after its first batch, leaving the job IN_PROGRESS
    with pytest.raises(Stopped):
        Importer(world.db, settings.model_copy(update={"batch_size": 4}), claim, stop=stop).run()

    running = world.get(f"/jobs/{job}", "crc_a").json()
    assert running["status"] == IN_PROGRESS and running["counts"]["processed"] == 4 and running["progress"] == 0.4
    so_far = table(world.get(f"/jobs/{job}/downloadFile", "crc_a", open="true"))
    assert [r[1] for r in so_far[1:]] == ["LIVE-1", "LIVE-2", "LIVE-3", "LIVE-4"]

    with world.db.transaction() as s:  # the worker "died": its lease runs out and another worker resumes
        s.execute(update(Job).where(Job.uuid == job).values(lease_expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    drain(world.db, settings)
    done = table(world.get(f"/jobs/{job}/downloadFile", "crc_a"))
    assert [r[0] for r in done[1:]] == [str(i) for i in range(1, 11)]


def test_deleting_a_processed_job_removes_its_log_and_upload_but_not_the_participants(world, settings):
    job = upload(world, FILE, user="crc_b", site=SITE_B)
    other = upload(world, FILE.replace(b"JUNO-", b"OTHER-").replace(b"=cmd()", b"O3").replace(b"@x", b"O4"))
    drain(world.db, settings)
    r = world.api.client.delete(f"{P}/jobs/{job}", headers=world.h("crc_b"))
    assert r.status_code == 204
    assert world.get(f"/jobs/{job}", "crc_b").status_code == 404
    with world.db.transaction() as s:
        job_ids = list(s.scalars(select(Job.id)))
        assert len(job_ids) == 1
        assert set(s.scalars(select(LogEntry.job_id))) == set(job_ids)
        assert set(s.scalars(select(UploadChunk.job_id))) == set(job_ids)
        assert s.scalar(select(func.count()).select_from(Participant)) == 6
    assert world.get(f"/jobs/{other}/log", "crc_a").json()["total"] == 4
