"""The bulk endpoint's request checks (SPEC §4): each code and status, their order, the success answers,
and that a refused upload stores nothing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from roster import codes
from roster.app import create_app
from tests.bulk.conftest import HEADER, SITE_A, SITE_B, STUDY, bulk_url, csv_of

GOOD = csv_of("P-1,Ann,Lee,ann@example.org,+1 6175551234,X1")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def refused(bulk, response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["message"] == code
    assert bulk.stored() == (0, 0, 0)


def test_success_answers_the_job_uuid_as_plain_text_with_a_location(bulk):
    r = bulk.post(GOOD)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert re.fullmatch(f"job uuid: {UUID}", r.text)
    job_uuid = r.text.removeprefix("job uuid: ")
    assert r.headers["location"] == f"/pages/auth/api/jobs/{job_uuid}"
    assert bulk.job(job_uuid)["status"] == "IN_QUEUE"
    assert bulk.stored() == (1, 1, 0)


def test_success_answers_json_when_asked(bulk):
    r = bulk.post(GOOD, headers={**bulk.users["dm"], "Accept": "application/json"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"jobUuid", "status"} and body["status"] == "IN_QUEUE"
    assert re.fullmatch(UUID, body["jobUuid"])
    assert r.headers["location"].endswith(body["jobUuid"])


def test_the_stored_upload_is_the_file_as_sent_with_its_size_and_digest(bulk):
    import hashlib

    from sqlalchemy import select

    from roster.bulk.models import Job, UploadChunk

    data = csv_of(*(f"P-{i},Ann,Lee,ann{i}@example.org,+1 6175551234,X{i}" for i in range(40_000)))
    assert len(data) > 2 << 20  # more than two stored chunks
    job_uuid = bulk.upload(data)
    with bulk.db.read_sessions() as s:
        job = s.scalar(select(Job).where(Job.uuid == job_uuid))
        chunks = s.scalars(select(UploadChunk.data).where(UploadChunk.job_id == job.id).order_by(UploadChunk.seq)).all()
    assert len(chunks) >= 3
    assert b"".join(chunks) == data
    assert job.upload_size == len(data) and job.upload_sha256 == hashlib.sha256(data).hexdigest()
    assert job.source_file_name == "p.csv" and job.created_by == "dm"


@pytest.mark.parametrize(
    "value,expected",
    [(None, False), ("y", True), ("YES", True), ("Yes", True), ("n", False), ("No", False), ("NO", False)],
)
def test_register_accepts_y_yes_n_no_in_any_case(bulk, value, expected):
    job_uuid = bulk.upload(GOOD, register=value)
    assert bulk.job(job_uuid)["register"] is expected


# -- checks 1–8: before the body --------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic ZG06eA=="}])
def test_1_a_missing_or_bad_token_is_401(bulk, headers):
    r = bulk.post(GOOD, headers=headers)
    refused(bulk, r, 401, codes.UNAUTHORIZED)
    assert r.headers["www-authenticate"] == "Bearer"


def test_1_an_unauthenticated_upload_is_refused_before_its_body_is_read(bulk, app, settings, db):
    # The limit is far below the body: had the body been read, the answer would be 413.
    small = create_app(settings.model_copy(update={"max_upload_bytes": 1000}), db=db)
    big = csv_of(*(f"P-{i},Ann,Lee,,," for i in range(200_000)))
    with TestClient(small) as client:
        r = client.post(bulk_url(), files={"file": ("p.csv", big, "text/csv")})
    refused(bulk, r, 401, codes.UNAUTHORIZED)


def test_1_the_token_is_checked_before_the_study(bulk):
    refused(bulk, bulk.post(GOOD, study="NOPE", headers={}), 401, codes.UNAUTHORIZED)


def test_2_an_unknown_study_is_404(bulk):
    r = bulk.post(GOOD, study="S_NOPE")
    refused(bulk, r, 404, codes.STUDY_NOT_EXIST)


def test_2_study_and_site_oids_match_in_any_case(bulk):
    assert bulk.post(GOOD, study=STUDY.lower(), site=SITE_A.lower()).status_code == 200


def test_3_an_unknown_site_is_404(bulk):
    refused(bulk, bulk.post(GOOD, site="S_NOPE"), 404, codes.INVALID_SITE_IDENTIFIER)


def test_3_a_site_of_another_study_is_404(bulk):
    bulk.api.setup_study("S_OTHER", ("S_OTHER_SITE",))
    refused(bulk, bulk.post(GOOD, site="S_OTHER_SITE"), 404, codes.INVALID_SITE_IDENTIFIER)


def test_4_a_locked_study_or_site_is_400(bulk):
    bulk.set_site(SITE_A, status="locked")
    refused(bulk, bulk.post(GOOD), 400, codes.SITE_NOT_AVAILABLE)
    bulk.set_study(status="locked")
    refused(bulk, bulk.post(GOOD), 400, codes.STUDY_NOT_AVAILABLE)


def test_4_availability_is_checked_before_the_role(bulk):
    bulk.user("stranger")
    bulk.set_study(status="locked")
    refused(bulk, bulk.post(GOOD, user="stranger"), 400, codes.STUDY_NOT_AVAILABLE)


def test_5_a_user_without_a_role_in_the_study_is_403(bulk):
    bulk.api.setup_study("S_OTHER", ("S_OTHER_SITE",))
    bulk.user("elsewhere", "data_manager", study="S_OTHER")
    refused(bulk, bulk.post(GOOD, user="elsewhere"), 403, codes.NO_ROLE_SET_UP)


@pytest.mark.parametrize(
    "role,site", [("monitor", None), ("viewer", None), ("clinical_research_coordinator", SITE_B), ("monitor", SITE_A)]
)
def test_6_a_role_that_may_not_write_at_the_site_is_403(bulk, role, site):
    bulk.user("someone", role, site=site)
    refused(bulk, bulk.post(GOOD, user="someone"), 403, codes.NO_SUFFICIENT_PRIVILEGES)


@pytest.mark.parametrize("role", ["data_manager", "investigator", "clinical_research_coordinator"])
def test_6_every_writing_role_at_the_site_may_upload(bulk, role):
    bulk.user("writer", role, site=SITE_A)
    assert bulk.post(GOOD, user="writer").status_code == 200


def test_6_privileges_are_checked_before_the_register_value(bulk):
    bulk.user("mon", "monitor")
    refused(bulk, bulk.post(GOOD, user="mon", register="maybe"), 403, codes.NO_SUFFICIENT_PRIVILEGES)


@pytest.mark.parametrize("value", ["maybe", "", "1", "true", "yess"])
def test_7_an_invalid_register_value_is_400(bulk, value):
    refused(bulk, bulk.post(GOOD, register=value), 400, codes.INVALID_REGISTER_PARAMETER)


def test_7_the_register_value_is_checked_before_the_file(bulk):
    refused(bulk, bulk.post(None, register="maybe"), 400, codes.INVALID_REGISTER_PARAMETER)


@pytest.mark.parametrize("value", ["maybe", "", "1", "true"])
def test_an_invalid_dry_run_value_is_400_right_after_check_7(bulk, value):
    refused(bulk, bulk.post(GOOD, dry_run=value), 400, codes.INVALID_DRY_RUN_PARAMETER)
    # After the register value, before participateActive and the file.
    refused(bulk, bulk.post(GOOD, register="maybe", dry_run=value), 400, codes.INVALID_REGISTER_PARAMETER)
    refused(bulk, bulk.post(None, dry_run=value), 400, codes.INVALID_DRY_RUN_PARAMETER)
    bulk.set_study(participateActive=False)
    refused(bulk, bulk.post(GOOD, register="y", dry_run=value), 400, codes.INVALID_DRY_RUN_PARAMETER)


@pytest.mark.parametrize(("value", "dry_run"), [(" Y ", True), ("yes", True), ("N", False), ("no", False)])
def test_dry_run_takes_y_or_n_in_any_case(bulk, value, dry_run):
    job = bulk.job(bulk.upload(GOOD, dry_run=value))
    assert (job["dryRun"], job["type"], job["status"]) == (dry_run, "BULK_ADD_PARTICIPANTS", "IN_QUEUE")


def test_8_register_needs_participate_active(bulk):
    bulk.set_study(participateActive=False)
    refused(bulk, bulk.post(GOOD, register="y"), 400, codes.PARTICIPATE_INACTIVE)
    assert bulk.post(GOOD, register="n").status_code == 200


def test_8_participate_is_checked_before_the_file(bulk):
    bulk.set_study(participateActive=False)
    refused(bulk, bulk.post(None, register="yes"), 400, codes.PARTICIPATE_INACTIVE)


# -- checks 9–15: the body ------------------------------------------------------------------------------


def test_9_a_form_without_a_file_part_is_400(bulk):
    body = b'--XyZ\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--XyZ--\r\n'
    headers = {**bulk.users["dm"], "Content-Type": "multipart/form-data; boundary=XyZ"}
    refused(bulk, bulk.client.post(bulk_url(), content=body, headers=headers), 400, codes.MISSING_FILE)


def test_9_a_url_encoded_form_is_missing_its_file(bulk):
    refused(bulk, bulk.client.post(bulk_url(), data={"file": "P-1"}, headers=bulk.users["dm"]), 400, codes.MISSING_FILE)


def test_9_a_file_part_under_another_name_is_not_the_file(bulk):
    r = bulk.client.post(bulk_url(), files={"upload": ("p.csv", GOOD, "text/csv")}, headers=bulk.users["dm"])
    refused(bulk, r, 400, codes.MISSING_FILE)


@pytest.mark.parametrize(
    "content_type,body",
    [
        (None, b""),
        ("application/json", b'{"file": "P-1"}'),
        ("text/csv", GOOD),
        ("multipart/form-data", GOOD),  # no boundary
    ],
)
def test_9_a_request_that_is_not_multipart_is_missing_its_file(bulk, content_type, body):
    headers = {**bulk.users["dm"], **({"Content-Type": content_type} if content_type else {})}
    refused(bulk, bulk.client.post(bulk_url(), content=body, headers=headers), 400, codes.MISSING_FILE)


def test_9_a_truncated_multipart_body_is_missing_its_file(bulk):
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n\r\nParticipantID\r\nP-1\r\n'
    headers = {**bulk.users["dm"], "Content-Type": "multipart/form-data; boundary=XyZ"}
    refused(bulk, bulk.client.post(bulk_url(), content=body, headers=headers), 400, codes.MISSING_FILE)


def test_9_the_first_file_part_is_the_upload(bulk):
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\nContent-Type: text/csv\r\n\r\n'
        + GOOD
        + b'\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; '
        b'filename="q.xlsx"\r\n\r\nPK\x03\x04\r\n--XyZ--\r\n'
    )
    headers = {**bulk.users["dm"], "Content-Type": "multipart/form-data; boundary=XyZ"}
    r = bulk.client.post(bulk_url(), content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert bulk.job(r.text.removeprefix("job uuid: "))["sourceFileName"] == "p.csv"


@pytest.fixture
def small_client(settings, db):
    app = create_app(settings.model_copy(update={"max_upload_bytes": 100}), db=db)
    with TestClient(app) as client:
        yield client


def test_10_a_file_over_the_limit_is_413(bulk, small_client):
    data = csv_of(*(f"P-{i},Ann,Lee,,," for i in range(20)))
    r = small_client.post(bulk_url(), files={"file": ("p.csv", data, "text/csv")}, headers=bulk.users["dm"])
    refused(bulk, r, 413, codes.FILE_TOO_LARGE)


def test_10_a_file_at_the_limit_is_accepted(bulk, small_client):
    data = csv_of("P-1,Ann,Lee,,,")
    data += b" " * (100 - len(data))
    r = small_client.post(bulk_url(), files={"file": ("p.csv", data, "text/csv")}, headers=bulk.users["dm"])
    assert r.status_code == 200, r.text


def test_10_size_is_checked_before_the_format(bulk, small_client):
    r = small_client.post(
        bulk_url(),
        files={"file": ("p.xlsx", b"PK\x03\x04" + b"\x00" * 500, "application/zip")},
        headers=bulk.users["dm"],
    )
    refused(bulk, r, 413, codes.FILE_TOO_LARGE)


@pytest.mark.parametrize(
    "name,data",
    [
        ("p.txt", GOOD),
        ("p.csv.xlsx", GOOD),
        ("p.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100),
        ("p.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100),
        ("p.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100),
        ("p.csv", b"%PDF-1.7\n"),
        ("p.csv", b"ParticipantID\nP-\x001\n"),
    ],
)
def test_11_what_is_not_a_csv_is_400(bulk, name, data):
    refused(bulk, bulk.post(data, name=name), 400, codes.NOT_SUPPORTED_FILE_FORMAT)


def test_11_the_extension_matches_in_any_case(bulk):
    assert bulk.post(GOOD, name="Participants.CSV").status_code == 200


def test_12_a_file_that_is_not_utf8_is_400(bulk):
    data = "ParticipantID,firstName\nP-1,Zoë\n".encode("latin-1")
    refused(bulk, bulk.post(data), 400, codes.INVALID_FILE_ENCODING)


def test_12_a_utf8_bom_is_accepted(bulk):
    job, log = bulk.run(b"\xef\xbb\xbf" + GOOD)
    assert job["counts"]["created"] == 1


def test_11_is_checked_before_12(bulk):
    refused(
        bulk, bulk.post("ParticipantID\nZoë\n".encode("latin-1"), name="p.txt"), 400, codes.NOT_SUPPORTED_FILE_FORMAT
    )


@pytest.mark.parametrize("data", [b"", b"\n\n", HEADER.encode() + b"\n", HEADER.encode() + b"\n\n  \n"])
def test_13_a_file_without_a_data_row_is_400(bulk, data):
    refused(bulk, bulk.post(data), 400, codes.BLANK_FILE)


@pytest.mark.parametrize("header", ["firstName,lastName", "Participant ID,firstName", "ParticipantID,participantid"])
def test_14_the_header_needs_exactly_one_participant_id_column(bulk, header):
    refused(bulk, bulk.post(f"{header}\nP-1,x\n".encode()), 400, codes.MISSING_PARTICIPANT_ID_COLUMN)


def test_15_a_column_named_twice_is_400_and_named(bulk):
    r = bulk.post(b"ParticipantID,firstName,FirstName\nP-1,a,b\n")
    refused(bulk, r, 400, codes.DUPLICATE_COLUMN)
    assert "FirstName" in r.json()["params"].values()
