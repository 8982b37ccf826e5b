"""Extract participants (SPEC §11.3): the endpoint's checks and answer, the file's columns per role and
per includeParticipateInfo, its order and content, formula safety, counts, creator-only visibility, and a
site large enough to need many pages and chunks. Through the HTTP API, with the worker run by `drain`."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, update

from roster import codes
from roster.bulk import extract
from roster.bulk.models import Job, UploadChunk
from roster.bulk.queue import claim
from roster.bulk.retention import purge
from roster.bulk.worker import drain
from roster.participants.models import Participant
from tests.bulk.conftest import SITE_A, SITE_B, STUDY, Bulk, csv_of
from tests.support import P

BASE = ["ParticipantID", "Participant OID", "Status", "Participate Status"]
PII = ["First Name", "Last Name", "Email", "Mobile", "Identifier"]


def extract_url(study: str = STUDY, site: str = SITE_A) -> str:
    site_path = f"{P}/clinicaldata/studies/{quote(study, safe='')}/sites/{quote(site, safe='')}"
    return f"{site_path}/participants/extractParticipantsInfo"


def request(
    bulk: Bulk,
    user: str = "dm",
    *,
    site: str = SITE_A,
    study: str = STUDY,
    include: str | None = None,
    accept: str | None = None,
):
    params = {"includeParticipateInfo": include} if include is not None else {}
    headers = bulk.users[user] | ({"Accept": accept} if accept else {})
    return bulk.client.post(extract_url(study, site), params=params, headers=headers)


def extract_job(bulk: Bulk, user: str = "dm", **kwargs: str) -> str:
    r = request(bulk, user, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("job uuid: ")
    job_uuid = r.text.removeprefix("job uuid: ")
    assert r.headers["location"] == f"{P}/jobs/{job_uuid}"
    return job_uuid


def download(bulk: Bulk, job_uuid: str, user: str = "dm") -> list[list[str]]:
    r = bulk.client.get(f"{P}/jobs/{job_uuid}/downloadFile", headers=bulk.users[user])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    return list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))


def run_extract(bulk: Bulk, user: str = "dm", **kwargs: Any) -> tuple[dict[str, Any], list[list[str]]]:
    job_uuid = extract_job(bulk, user, **kwargs)
    drain(bulk.db, bulk.settings)
    job = bulk.job(job_uuid, user)
    assert job["status"] == "COMPLETED", job
    return job, download(bulk, job_uuid, user)


def stored_chunks(bulk: Bulk, job_uuid: str) -> int:
    with bulk.db.read_sessions() as s:
        return s.scalar(
            select(func.count())
            .select_from(UploadChunk)
            .join(Job, Job.id == UploadChunk.job_id)
            .where(Job.uuid == job_uuid)
        )


@pytest.fixture
def people(bulk: Bulk) -> Bulk:
    """Site A: three registered participants (one with a formula-like name), one removed; site B: one."""
    rows = (
        "P-3,Cat,Cole,cat@example.org,+1 6175550003,ID-3",
        "p-1,=HYPERLINK(1),Able,ann@example.org,+44 2075550001,@ID",
        "P-2,Bob,-Brown,bob@example.org,,",
        "P-9,Gone,Away,,,",
    )
    job, _log = bulk.run(csv_of(*rows), register="y")
    assert job["counts"]["created"] == 4
    bulk.set_status("P-9", "removed")
    job, _log = bulk.run(csv_of("B-1,Bea,Beta,,,"), site=SITE_B)
    assert job["counts"]["created"] == 1
    return bulk


def test_a_data_manager_gets_every_available_participant_in_id_order_with_pii(people: Bulk):
    job, rows = run_extract(people)
    assert job["type"] == "EXTRACT_PARTICIPANTS"
    assert job["counts"]["rows"] == 3 and job["progress"] == 1
    assert job["includeParticipateInfo"] is False
    assert rows[0] == BASE + PII
    # Ordered by ID (case-insensitively); the removed participant and site B's are not in it.
    assert [r[0] for r in rows[1:]] == ["p-1", "P-2", "P-3"]
    stored = people.participants()
    assert rows[3] == [
        "P-3",
        stored["P-3"]["oid"],
        "available",
        "Created",
        "Cat",
        "Cole",
        "cat@example.org",
        "'+1 6175550003",
        "ID-3",
    ]


def test_cells_that_a_spreadsheet_would_run_are_neutralised(people: Bulk):
    _job, rows = run_extract(people)
    first, second = rows[1], rows[2]
    assert first[4] == "'=HYPERLINK(1)" and first[7] == "'+44 2075550001" and first[8] == "'@ID"
    assert second[5] == "'-Brown" and second[7] == "" and second[8] == ""


def test_access_codes_only_with_include_participate_info(people: Bulk):
    job, rows = run_extract(people, include="Y")
    assert job["includeParticipateInfo"] is True
    assert rows[0] == BASE + PII + ["Access Code"]
    codes_by_id = {r[0]: r[-1] for r in rows[1:]}
    stored = people.participants()
    assert codes_by_id == {pid: stored[pid]["access_code"] for pid in ("p-1", "P-2", "P-3")}
    assert all(len(code) == 9 for code in codes_by_id.values())


@pytest.mark.parametrize("role", ["monitor", "viewer"])
def test_a_role_without_pii_gets_no_pii_columns_and_no_access_codes(people: Bulk, role: str):
    people.user("watcher", role, site=SITE_A)
    job, rows = run_extract(people, "watcher", include="y")
    assert rows[0] == BASE
    assert job["counts"]["rows"] == 3
    assert all(len(r) == 4 for r in rows)
    assert not any("Cat" in cell or "@example.org" in cell for r in rows for cell in r)


def test_pii_is_decided_when_the_job_runs(people: Bulk):
    """A coordinator demoted to monitor between the request and the run gets no PII."""
    people.user("crc", "clinical_research_coordinator", site=SITE_A)
    job_uuid = extract_job(people, "crc", include="y")
    roles = people.api.ok(people.client.get(f"{P}/admin/users/crc/roles", headers=people.api.admin))
    for role in roles:
        people.api.ok(people.client.delete(f"{P}/admin/users/crc/roles/{role['id']}", headers=people.api.admin), 204)
    people.api.grant("crc", "monitor", STUDY, SITE_A)
    drain(people.db, people.settings)
    assert download(people, job_uuid, "crc")[0] == BASE


def test_a_file_with_pii_is_not_downloaded_by_its_creator_once_demoted(people: Bulk):
    people.user("crc", "clinical_research_coordinator", site=SITE_A)
    job_uuid = extract_job(people, "crc")
    drain(people.db, people.settings)
    assert download(people, job_uuid, "crc")[0] == BASE + PII
    role = people.api.ok(people.client.get(f"{P}/admin/users/crc/roles", headers=people.api.admin))[0]
    people.api.ok(people.client.delete(f"{P}/admin/users/crc/roles/{role['id']}", headers=people.api.admin), 204)
    r = people.client.get(f"{P}/jobs/{job_uuid}/downloadFile", headers=people.users["crc"])
    assert r.status_code == 403 and r.json()["message"] == codes.NO_ROLE_SET_UP
    people.api.grant("crc", "viewer", STUDY, SITE_A)
    r = people.client.get(f"{P}/jobs/{job_uuid}/downloadFile", headers=people.users["crc"])
    assert r.status_code == 403 and r.json()["message"] == codes.NO_SUFFICIENT_PRIVILEGES


def test_a_creator_who_may_no_longer_read_at_the_site_gets_a_failed_job_and_no_file(people: Bulk):
    people.user("crc", "clinical_research_coordinator", site=SITE_A)
    job_uuid = extract_job(people, "crc")
    role = people.api.ok(people.client.get(f"{P}/admin/users/crc/roles", headers=people.api.admin))[0]
    people.api.ok(people.client.delete(f"{P}/admin/users/crc/roles/{role['id']}", headers=people.api.admin), 204)
    people.api.grant("crc", "clinical_research_coordinator", STUDY, SITE_B)
    drain(people.db, people.settings)
    job = people.job(job_uuid, "crc")
    assert job["status"] == "FAILED" and job["error"] == codes.NO_SUFFICIENT_PRIVILEGES
    r = people.client.get(f"{P}/jobs/{job_uuid}/downloadFile", headers=people.users["crc"])
    assert r.status_code == 409 and r.json()["message"] == codes.EXTRACT_NOT_COMPLETED
    assert stored_chunks(people, job_uuid) == 0


def test_the_job_is_seen_by_its_creator_only(people: Bulk):
    people.user("dm2", "data_manager")
    people.user("crc", "clinical_research_coordinator", site=SITE_A)
    people.user("mon", "monitor")
    job_uuid = extract_job(people, "mon")
    drain(people.db, people.settings)
    assert download(people, job_uuid, "mon")[0] == BASE
    for other in ("dm", "dm2", "crc"):
        headers = people.users[other]
        for path in ("", "/log", "/downloadFile", "/failedRows"):
            r = people.client.get(f"{P}/jobs/{job_uuid}{path}", headers=headers)
            assert r.status_code == 404 and r.json()["message"] == codes.JOB_NOT_FOUND, (other, path)
        assert people.client.post(f"{P}/jobs/{job_uuid}/cancel", headers=headers).status_code == 404
        assert people.client.delete(f"{P}/jobs/{job_uuid}", headers=headers).status_code == 404
        for url in (
            f"{P}/studies/{quote(STUDY, safe='')}/jobs",
            f"{P}/studies/{quote(STUDY, safe='')}/sites/{quote(SITE_A, safe='')}/jobs",
        ):
            listed = people.api.ok(people.client.get(url, headers=headers))
            assert job_uuid not in {j["uuid"] for j in listed["items"]}, (other, url)
    mine = people.api.ok(people.client.get(f"{P}/studies/{quote(STUDY, safe='')}/jobs", headers=people.users["mon"]))
    assert [j["uuid"] for j in mine["items"]] == [job_uuid]
    # The creator's log is empty (an extract logs no rows) and it has no failed rows to fix.
    assert people.api.ok(people.client.get(f"{P}/jobs/{job_uuid}/log", headers=people.users["mon"]))["total"] == 0
    r = people.client.get(f"{P}/jobs/{job_uuid}/failedRows", headers=people.users["mon"])
    assert r.status_code == 409 and r.json()["message"] == codes.JOB_HAS_NO_UPLOAD
    # The creator (or an admin) deletes it, with its file.
    assert people.client.delete(f"{P}/jobs/{job_uuid}", headers=people.users["mon"]).status_code == 204
    with people.db.read_sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.uuid == job_uuid)) == 0


def test_the_request_runs_checks_1_to_6_with_read_permission(people: Bulk):
    people.user("viewer_b", "viewer", site=SITE_B)
    people.user("nobody")
    cases = [
        (dict(user="viewer_b"), 403, codes.NO_SUFFICIENT_PRIVILEGES),
        (dict(user="nobody"), 403, codes.NO_ROLE_SET_UP),
        (dict(study="S_NOPE"), 404, codes.STUDY_NOT_EXIST),
        (dict(site="S_NOPE"), 404, codes.INVALID_SITE_IDENTIFIER),
        (dict(include="maybe"), 400, codes.INVALID_INCLUDE_PARTICIPATE_INFO),
    ]
    for kwargs, status, code in cases:
        r = request(people, **kwargs)
        assert (r.status_code, r.json()["message"]) == (status, code), kwargs
    r = people.client.post(extract_url(), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["message"] == codes.UNAUTHORIZED
    people.set_site(SITE_A, status="locked")
    r = request(people)
    assert r.status_code == 400 and r.json()["message"] == codes.SITE_NOT_AVAILABLE
    # A viewer of site B may extract site B; nothing was queued by the refused requests.
    with people.db.read_sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.type == "EXTRACT_PARTICIPANTS")) == 0
    assert run_extract(people, "viewer_b", site=SITE_B)[1] == [
        BASE,
        ["B-1", people.participants()["B-1"]["oid"], "available", ""],
    ]


def test_json_answer_and_a_file_not_ready_yet(people: Bulk):
    r = request(people, accept="application/json")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "IN_QUEUE"
    r = people.client.get(f"{P}/jobs/{body['jobUuid']}/downloadFile", headers=people.users["dm"])
    assert r.status_code == 409 and r.json()["message"] == codes.JOB_NOT_FINISHED


def test_an_empty_site_gives_the_header_alone(bulk: Bulk):
    job, rows = run_extract(bulk)
    assert rows == [BASE + PII]
    assert job["counts"]["rows"] == 0


def test_a_cancelled_extract_keeps_no_file(people: Bulk):
    job_uuid = extract_job(people)
    assert people.client.post(f"{P}/jobs/{job_uuid}/cancel", headers=people.users["dm"]).status_code == 200
    drain(people.db, people.settings)
    assert people.job(job_uuid)["status"] == "CANCELLED"
    assert stored_chunks(people, job_uuid) == 0
    r = people.client.get(f"{P}/jobs/{job_uuid}/downloadFile", headers=people.users["dm"])
    assert r.status_code == 409 and r.json()["message"] == codes.EXTRACT_NOT_COMPLETED


def test_a_large_site_is_extracted_whole_in_many_pages_and_chunks(bulk: Bulk):
    n = 5000
    ids = [f"L-{i:05d}" for i in range(n)]
    # Written in an order unlike the ID order.
    rows = [
        f"{pid},{'N' * 30},{'=X' + 'y' * 28},{pid.lower()}@example.org,+1 6175550000,{'I' * 30}"
        for pid in reversed(ids)
    ]
    job, _log = bulk.run(csv_of(*rows))
    assert job["counts"]["created"] == n
    job_uuid = extract_job(bulk)
    claimed = claim(bulk.db, bulk.settings.job_lease_seconds)
    # Small pages and chunks: the keyset paging and the chunking are both crossed many times.
    assert extract.Extractor(bulk.db, bulk.settings, claimed, page_rows=97, chunk_bytes=64 * 1024).run() == "COMPLETED"
    job = bulk.job(job_uuid)
    assert job["counts"]["rows"] == n
    assert stored_chunks(bulk, job_uuid) > 1
    out = download(bulk, job_uuid)
    assert len(out) == n + 1
    assert [r[0] for r in out[1:]] == ids
    assert all(r[5] == "'=X" + "y" * 28 for r in out[1:])


def test_a_job_taken_over_starts_again_and_writes_the_file_once(people: Bulk):
    """A worker died half-way (its lease ran out): the next one replaces what it had stored."""
    job_uuid = extract_job(people)
    first = claim(people.db, people.settings.job_lease_seconds)
    with people.db.transaction() as s:  # what the dead worker left: a stale chunk and a checkpoint
        s.execute(UploadChunk.__table__.insert().values(job_id=first.job_id, seq=0, data=b"stale"))
        s.execute(update(Job).where(Job.id == first.job_id).values(processed=2, lease_expires_at=Job.date_created))
    drain(people.db, people.settings)
    job = people.job(job_uuid)
    assert job["status"] == "COMPLETED" and job["counts"]["rows"] == 3
    out = download(people, job_uuid)
    assert [r[0] for r in out] == ["ParticipantID", "p-1", "P-2", "P-3"]


def test_bulk_jobs_are_not_affected(people: Bulk):
    """The other jobs keep their log download, and the site-A coordinator still sees the dm's uploads."""
    people.user("crc", "clinical_research_coordinator", site=SITE_A)
    listed = people.api.ok(
        people.client.get(
            f"{P}/studies/{quote(STUDY, safe='')}/sites/{quote(SITE_A, safe='')}/jobs", headers=people.users["crc"]
        )
    )
    assert listed["total"] == 1 and listed["items"][0]["type"] == "BULK_ADD_PARTICIPANTS"
    assert listed["items"][0]["includeParticipateInfo"] is False
    r = people.client.get(f"{P}/jobs/{listed['items'][0]['uuid']}/downloadFile", headers=people.users["crc"])
    assert r.status_code == 200 and r.text.startswith("Row,ParticipantID")


def test_the_participants_index_serves_the_pages(people: Bulk):
    """Each page is one range of (site, status, ID key): no sort of the whole site per page."""
    query = (
        select(Participant.participant_id)
        .where(Participant.site_id == 1, Participant.status == "available", Participant.participant_key > "a")
        .order_by(Participant.participant_key)
        .limit(10)
    )
    with people.db.read_sessions() as s:
        compiled = str(query.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
        if people.db.dialect == "sqlite":
            plan = " ".join(str(r[-1]) for r in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + compiled))
            assert "ix_participants_site_status_key" in plan and "TEMP B-TREE" not in plan, plan
        else:
            s.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(r[0] for r in s.connection().exec_driver_sql("EXPLAIN " + compiled))
            assert "ix_participants_site_status_key" in plan and "Sort" not in plan, plan


def test_retention_deletes_the_file_and_the_download_then_answers_410(people: Bulk):
    job_uuid = extract_job(people)
    drain(people.db, people.settings)
    purge(people.db, people.settings.model_copy(update={"upload_retention_days": 0}))
    assert stored_chunks(people, job_uuid) == 0
    r = people.client.get(f"{P}/jobs/{job_uuid}/downloadFile", headers=people.users["dm"])
    assert r.status_code == 410 and r.json()["message"] == codes.FILE_EXPIRED
    assert people.job(job_uuid)["counts"]["rows"] == 3
