"""SPEC §11.1: a dry run (`dryRun=y`) logs what every row would do, and writes nothing else; the real
upload of the same file right after logs the same outcome and codes for every row."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from roster import codes
from roster.bulk.models import DryRunCreation
from roster.bulk.worker import drain
from roster.participants.models import AuditEvent, Participant
from roster.studies.models import Study
from tests.bulk.conftest import SITE_A, SITE_B, STUDY, csv_of, error_codes, outcomes
from tests.bulk.test_queue import Crash, expire_lease
from tests.sinks import failing_after, hooked
from tests.support import P

SMALL = 2  # rows per batch: every file below spans several batches


def small(bulk) -> None:
    bulk.settings = bulk.settings.model_copy(update={"batch_size": SMALL})


def decided(log: list[dict[str, Any]]) -> list[tuple[int, str, list[str]]]:
    return [(e["row"], e["outcome"], error_codes(e)) for e in log]


def written(bulk) -> dict[str, Any]:
    """Everything a dry run must leave as it is: the participants (access codes included), the audit
    trail, the study's ID counter, and (once it has ended) no would-be participants of its own."""
    with bulk.db.read_sessions() as s:
        return {
            "participants": sorted(tuple(r) for r in s.execute(select(Participant.__table__))),
            "audit events": s.scalar(select(func.count()).select_from(AuditEvent)),
            "id counter": s.scalar(select(Study.id_counter).where(Study.oid == STUDY)),
            "would-be participants": s.scalar(select(func.count()).select_from(DryRunCreation)),
        }


def revision(bulk) -> int:
    with bulk.db.read_sessions() as s:
        return s.scalar(select(Study.revision).where(Study.oid == STUDY))


def dry_then_real(bulk, data: bytes, **kwargs: Any) -> tuple[dict, list[dict], list[dict]]:
    """The dry run (checking that it wrote nothing but moved the study's revision by its lock, once per
    batch), then the real upload of the same file; returns the dry job and both logs."""
    before, rev = written(bulk), revision(bulk)
    dry, dry_log = bulk.run(data, dry_run="y", **kwargs)
    assert dry["status"] == "COMPLETED" and dry["dryRun"] is True
    assert written(bulk) == before
    batches = -(-dry["counts"]["rows"] // bulk.settings.batch_size)
    assert revision(bulk) == rev + batches
    real, real_log = bulk.run(data, **kwargs)
    assert real["dryRun"] is False
    assert decided(dry_log) == decided(real_log)
    for name in ("rows", "processed", "created", "updated", "unchanged", "failed"):
        assert dry["counts"][name] == real["counts"][name], name
    return dry, dry_log, real_log


def test_a_mixed_file_decides_as_the_real_upload_right_after(bulk):
    small(bulk)
    bulk.run(csv_of("E-1,Ann,,,,", "E-2,Bob,,,,", "R-1,Rem,,,,"))
    bulk.run(csv_of("E-3,Cy,,,,"), register="y")
    bulk.run(csv_of("B-1,Bee,,,,"), site=SITE_B)
    bulk.set_status("R-1", "removed")
    bulk.set_study(enrollmentCap=6)  # 4 not removed: two creations fit, the third is refused
    data = csv_of(
        "N-1,Neo,,,,",  # created (with register=y: registered too)
        "E-1,Ann2,,,,",  # updated: a field changed
        "E-3,Cy,,,,",  # unchanged: same fields, already registered
        "E-2,Bob,,,,",  # updated: registered
        "B-1,Bee,,,,",  # at the other site
        "R-1,,,,,",  # removed
        "n-1,Again,,,,",  # an in-file duplicate, whatever the case
        "N-2,,,not-an-email,,",  # a field rule
        "N-3,Tess,,,,",  # created: the cap's last place, counting N-1, three batches earlier
        "N-4,,,,,",  # the cap is reached
        "N-5,a,b,c,d,e,f",  # malformed
        "E-1,Ann3,,,,",  # duplicate of row 2
    )
    dry, dry_log, real_log = dry_then_real(bulk, data, register="y")
    assert outcomes(dry_log) == [
        "created",
        "updated",
        "unchanged",
        "updated",
        "failed",
        "failed",
        "failed",
        "failed",
        "created",
        "failed",
        "failed",
        "failed",
    ]
    assert [error_codes(e) for e in dry_log if e["outcome"] == "failed"] == [
        [codes.PARTICIPANT_ID_AT_ANOTHER_SITE],
        [codes.PARTICIPANT_ID_NOT_AVAILABLE],
        [codes.PARTICIPANT_ID_DUPLICATED_IN_FILE],
        [error_codes(dry_log[7])[0]],
        [codes.ENROLLMENT_CAP_REACHED],
        [codes.MALFORMED_ROW],
        [codes.PARTICIPANT_ID_DUPLICATED_IN_FILE],
    ]
    assert error_codes(dry_log[7]) == error_codes(real_log[7]) != []
    # A participant the dry run would create has no OID yet; the ones it would update have theirs.
    assert [(e["participantId"], e["participantOid"]) for e in dry_log[:2]] == [("N-1", None), ("E-1", "SS_E1")]
    assert [e["participantOid"] for e in real_log[:2]] == ["SS_N1", "SS_E1"]
    assert dry_log[0]["participateStatus"] == real_log[0]["participateStatus"] == "Created"


def test_a_system_id_study_generates_nothing_and_decides_as_the_real_upload(bulk):
    small(bulk)
    bulk.set_study(participantIdMethod="system", participantIdTemplate="JU-#")
    bulk.run(csv_of("ju-2,Given,,,,"))
    bulk.set_site(SITE_A, enrollmentCap=9)  # ju-2 and eight more
    data = csv_of(
        ",A,,,,",  # created: JU-1
        "JU-5,B,,,,",  # created with its given ID
        "X-1,,,,,",
        "X-2,,,,,",
        "JU-1,A,,,,",  # unchanged: the participant row 1 would create, two batches before
        ",C,,,,",  # created: JU-3 (ju-2 exists)
        "X-3,,,,,",
        ",E,,,,",  # created: JU-4
        ",F,,,,",  # created: JU-6 (JU-5 given four batches before)
        "JU-3,G,,,,",  # updated: row 6's participant
        ",H,,,,",  # the cap is reached
        "ju-2,Given,,,,",  # unchanged
    )
    dry, dry_log, real_log = dry_then_real(bulk, data)
    assert decided(dry_log) == [
        *((row, "created", []) for row in (1, 2, 3, 4)),
        (5, "unchanged", []),
        *((row, "created", []) for row in (6, 7, 8, 9)),
        (10, "updated", []),
        (11, "failed", [codes.ENROLLMENT_CAP_REACHED]),
        (12, "unchanged", []),
    ]
    # No generated ID is taken, so none is shown; the real upload takes them.
    generated = (1, 6, 8, 9)
    assert [e["participantId"] for e in dry_log if e["row"] in generated] == [None] * 4
    assert [e["participantId"] for e in real_log if e["row"] in generated] == ["JU-1", "JU-3", "JU-4", "JU-6"]


def test_a_dry_run_sees_what_another_writer_does_between_its_batches(bulk):
    small(bulk)
    bulk.set_site(SITE_A, enrollmentCap=3)
    calls = {"n": 0}

    def another_writer(_job, _plan) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # between the dry run's first and second batch
            r = bulk.client.post(
                f"{P}/clinicaldata/studies/{quote(STUDY, safe='')}/sites/{quote(SITE_A, safe='')}/participants",
                json={"subjectKey": "W-1"},
                headers=bulk.users["dm"],
            )
            assert r.status_code == 200, r.text

    job = bulk.upload(csv_of("N-1,,,,,", "N-2,,,,,", "N-3,,,,,", "N-4,,,,,"), dry_run="y")
    drain(bulk.db, bulk.settings, hooked(before=another_writer))
    # N-1, N-2 would be made, W-1 was made meanwhile: the cap's three places are taken.
    assert decided(bulk.log(job)) == [
        (1, "created", []),
        (2, "created", []),
        (3, "failed", [codes.ENROLLMENT_CAP_REACHED]),
        (4, "failed", [codes.ENROLLMENT_CAP_REACHED]),
    ]
    assert set(bulk.participants()) == {"W-1"}


def test_a_dry_run_resumed_after_its_worker_died_still_counts_its_creations(bulk):
    small(bulk)
    bulk.set_study(enrollmentCap=3)
    data = csv_of("N-1,,,,,", "N-2,,,,,", "N-3,,,,,", "N-4,,,,,", "N-5,,,,,")
    job = bulk.upload(data, dry_run="y")
    with pytest.raises(Crash):
        drain(bulk.db, bulk.settings, failing_after(1, Crash)[0])
    assert bulk.job(job)["counts"]["processed"] == SMALL
    expire_lease(bulk, job)
    assert drain(bulk.db, bulk.settings) == 1
    resumed = bulk.log(job)
    assert bulk.participants() == {}
    _real, real_log = bulk.run(data)
    assert decided(resumed) == decided(real_log)
    assert outcomes(resumed) == ["created", "created", "created", "failed", "failed"]


def test_a_resumed_dry_run_of_a_system_id_study_still_meets_the_ids_it_would_have_generated(bulk):
    small(bulk)
    bulk.set_study(participantIdMethod="system", participantIdTemplate="JU-#")
    data = csv_of(
        ",A,,,,",  # JU-1
        "JU-3,B,,,,",  # given
        ",C,,,,",  # JU-2
        ",D,,,,",  # JU-4 (JU-3 given)
        "JU-2,C,,,,",  # unchanged: row 3's, decided by the second worker
        "JU-4,D2,,,,",  # updated: row 4's
        ",E,,,,",  # JU-5
    )
    before = written(bulk)
    job = bulk.upload(data, dry_run="y")
    with pytest.raises(Crash):
        drain(bulk.db, bulk.settings, failing_after(2, Crash)[0])
    assert bulk.job(job)["counts"]["processed"] == 2 * SMALL
    expire_lease(bulk, job)
    assert drain(bulk.db, bulk.settings) == 1
    resumed = bulk.log(job)
    assert written(bulk) == before
    _real, real_log = bulk.run(data)
    assert decided(resumed) == decided(real_log)
    assert outcomes(resumed) == ["created", "created", "created", "created", "unchanged", "updated", "created"]
    assert [e["participantId"] for e in real_log] == ["JU-1", "JU-3", "JU-2", "JU-4", "JU-2", "JU-4", "JU-5"]


def test_a_dry_run_job_shows_dry_run_and_cannot_be_reverted(bulk):
    job, _log = bulk.run(csv_of("N-1,,,,,"), dry_run="y")
    assert (job["type"], job["dryRun"], job["counts"]["created"]) == ("BULK_ADD_PARTICIPANTS", True, 1)
    listed = bulk.client.get(f"{P}/studies/{quote(STUDY, safe='')}/jobs", headers=bulk.users["dm"]).json()
    assert [j["dryRun"] for j in listed["items"]] == [True]
    r = bulk.client.post(f"{P}/jobs/{job['uuid']}/revert", headers=bulk.users["dm"])
    assert (r.status_code, r.json()["message"]) == (409, codes.JOB_NOT_REVERTIBLE)
    download = bulk.client.get(f"{P}/jobs/{job['uuid']}/downloadFile", headers=bulk.users["dm"])
    assert download.status_code == 200 and "N-1" in download.text
