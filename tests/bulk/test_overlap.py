"""Batches decided ahead of their transaction (roster.bulk.importer, writer.plan_batch): each batch sees
the batches before it exactly as if they ran one at a time, and a write by anyone else in between makes
the batch be decided again under the lock, so nothing is overwritten with a stale value.

The worker overlaps deciding and writing on PostgreSQL; on SQLite, and with ROSTER_BULK_OVERLAP off, the
same plan-then-write path runs one batch at a time. Both are run here on both backends."""

from __future__ import annotations

import threading
from urllib.parse import quote

import pytest
from sqlalchemy import select, update

from roster import codes
from roster.bulk.worker import drain
from roster.participants import writer
from roster.participants.identifiers import ACCESS_CODE_LENGTH
from roster.participants.models import Participant
from roster.studies.models import Site, Study
from tests.bulk.conftest import SITE_A, STUDY, csv_of, outcomes
from tests.sinks import hooked
from tests.support import P

SINGLE = f"{P}/clinicaldata/studies/{quote(STUDY, safe='')}/sites/{quote(SITE_A, safe='')}/participants"


@pytest.fixture(params=[True, False], ids=["overlap", "one-at-a-time"])
def overlap(request, bulk):
    bulk.settings = bulk.settings.model_copy(update={"bulk_overlap": request.param, "batch_size": 2})
    return request.param


def test_a_batch_sees_the_ids_oids_and_codes_of_the_batch_before_it(bulk, overlap):
    # Batch size 2: each batch depends on the one before it, which may still be being written.
    data = csv_of(
        "P-1,Ann,,,,",
        "X-1,Bea,,,,",
        "P1,Cy,,,,",  # same OID base as P-1, created one batch earlier -> SS_P1_2
        "p-1,,Smith,,,",  # P-1 again (case-insensitive): refused as a duplicate in the file
        "P-2,Di,,,,",
        "X-1,Bo,,,,",  # a duplicate two batches later
    )
    job, log = bulk.run(data, register="y")
    assert job["status"] == "COMPLETED", job
    assert outcomes(log) == ["created", "created", "created", "failed", "created", "failed"]
    assert {e["row"]: [x["code"] for x in e["errors"]] for e in log if e["errors"]} == {
        4: [codes.PARTICIPANT_ID_DUPLICATED_IN_FILE],
        6: [codes.PARTICIPANT_ID_DUPLICATED_IN_FILE],
    }
    stored = bulk.participants()
    assert (stored["P-1"]["oid"], stored["P1"]["oid"]) == ("SS_P1", "SS_P1_2")
    access_codes = [p["access_code"] for p in stored.values()]
    assert len(set(access_codes)) == 4 and all(len(c) == ACCESS_CODE_LENGTH for c in access_codes)


def test_a_second_file_updates_what_the_first_created_batch_after_batch(bulk, overlap):
    first = csv_of(*(f"Q-{i},First{i},,,," for i in range(1, 8)))
    job, _ = bulk.run(first, register="y")
    before = bulk.participants()
    second = csv_of(*(f"Q-{i},Second{i},,,," for i in range(1, 8)), "Q-8,New,,,,", "Q-1,,Last,,,")
    job, log = bulk.run(second, register="y")
    assert outcomes(log) == ["updated"] * 7 + ["created", "failed"]
    after = bulk.participants()
    assert all(after[f"Q-{i}"]["first_name"] == f"Second{i}" for i in range(1, 8))
    # Codes are kept across files and batches; the new participant gets one of its own.
    assert all(after[k]["access_code"] == before[k]["access_code"] for k in before)
    assert after["Q-8"]["access_code"] not in {p["access_code"] for p in before.values()}


def test_system_ids_continue_from_batch_to_batch(bulk, overlap):
    bulk.set_study(participantIdMethod="system", participantIdTemplate="SYS-###")
    job, log = bulk.run(csv_of(*([",Gen,,,,"] * 5), "SYS-007,Taken,,,,", ",Gen,,,,", ",Gen,,,,"))
    assert outcomes(log) == ["created"] * 8
    assert [e["participantId"] for e in log] == [
        "SYS-001",
        "SYS-002",
        "SYS-003",
        "SYS-004",
        "SYS-005",
        "SYS-007",
        "SYS-006",
        "SYS-008",
    ]


def test_caps_hold_across_batches(bulk, overlap):
    bulk.set_study(enrollmentCap=5)
    job, log = bulk.run(csv_of(*(f"C-{i},N,,,," for i in range(1, 9))))
    assert outcomes(log) == ["created"] * 5 + ["failed"] * 3
    assert len(bulk.participants()) == 5


def _study_and_site(bulk, study_oid=STUDY, site_oid=SITE_A):
    with bulk.db.read_sessions() as s:
        study = s.scalar(select(Study).where(Study.oid == study_oid))
        site = s.scalar(select(Site).where(Site.oid == site_oid))
        s.expunge_all()
    return study, site


def _plan(bulk, session, records, after=None, register=False):
    study, site = _study_and_site(bulk)
    bulk.db.snapshot(session)
    plan = writer.plan_batch(
        session,
        study,
        site,
        records,
        after=after,
        register=register,
        username="dm",
        source="job",
        id_column="ParticipantID",
    )
    return plan, study, site


def _other_study(bulk):
    bulk.api.setup_study("S_OTHER(TEST)", ("S_OTHER_SITE(TEST)",))
    return _study_and_site(bulk, "S_OTHER(TEST)", "S_OTHER_SITE(TEST)")


def test_a_participant_changed_by_someone_else_after_the_plan_is_decided_again_not_overwritten(bulk):
    bulk.run(csv_of("R-1,Ann,Old,,,"))
    with bulk.db.read_sessions() as reads:
        plan, study, site = _plan(bulk, reads, [writer.Record("R-1", {"firstName": "Anna"})])
    assert plan.results[0].outcome == "updated"
    # Between the plan's snapshot and its transaction, the single endpoint changes the last name.
    assert (
        bulk.client.post(SINGLE, json={"subjectKey": "R-1", "lastName": "New"}, headers=bulk.users["dm"]).status_code
        == 200
    )
    with bulk.db.transaction() as session:
        results, redone = writer.write_planned(session, plan, study, site)
    assert redone and results[0].outcome == "updated"
    stored = bulk.participants()["R-1"]
    assert (stored["first_name"], stored["last_name"]) == ("Anna", "New")


def test_a_plan_from_an_unchanged_study_is_written_as_decided(bulk):
    bulk.run(csv_of("R-1,Ann,Old,,,"))
    with bulk.db.read_sessions() as reads:
        plan, study, site = _plan(bulk, reads, [writer.Record("R-1", {"firstName": "Anna"}), writer.Record("R-2", {})])
    with bulk.db.transaction() as session:
        results, redone = writer.write_planned(session, plan, study, site)
    assert not redone and [r.outcome for r in results] == ["updated", "created"]
    assert bulk.participants()["R-1"]["first_name"] == "Anna"


def test_a_job_running_while_the_api_changes_its_participants_keeps_both_changes(bulk, overlap):
    bulk.run(csv_of(*(f"A-{i},Ann{i},,,," for i in range(1, 9))))
    # Row 5 repeats A-3 from the batch that gets decided again: the batch after it, decided again too when
    # the two overlap, must still refuse it (the duplicate filter has seen every key by then; the log answers).
    rows = [f"A-{i},Bea{i},,,," for i in range(1, 9)]
    job_uuid = bulk.upload(csv_of(*rows[:4], "a-3,Dup,,,,", *rows[4:]))
    redone = []

    def write_then_change(_job, outcome):
        redone.append(outcome.redone)
        if outcome.processed == 2:
            # Lands while the next batch is decided (or before it, one at a time): A-4 is in that batch.
            r = bulk.client.post(SINGLE, json={"subjectKey": "A-4", "lastName": "FromApi"}, headers=bulk.users["dm"])
            assert r.status_code == 200, r.text

    drain(bulk.db, bulk.settings, hooked(after=write_then_change))
    assert bulk.job(job_uuid)["status"] == "COMPLETED"
    stored = bulk.participants()
    assert all(stored[f"A-{i}"]["first_name"] == f"Bea{i}" for i in range(1, 9))
    assert stored["A-4"]["last_name"] == "FromApi"
    log = bulk.log(job_uuid)
    assert outcomes(log) == ["updated"] * 4 + ["failed"] + ["updated"] * 4
    assert [e["code"] for e in log[4]["errors"]] == [codes.PARTICIPANT_ID_DUPLICATED_IN_FILE]
    # The batch decided from before the change was decided again; the ones after it were not.
    assert redone == [False, True, False, False, False]


def test_a_participant_created_in_another_study_between_plan_and_write_takes_no_planned_id(bulk, backend):
    with bulk.db.read_sessions() as reads:
        plan, study, site = _plan(bulk, reads, [writer.Record("N-1", {"firstName": "Ann"}), writer.Record("N-2", {})])
    other_study, other_site = _other_study(bulk)
    with bulk.db.transaction() as session:
        writer.apply_batch(
            session, other_study, other_site, [writer.Record("O-1", {})], register=False, username="dm", source="api"
        )
    with bulk.db.transaction() as session:
        results, redone = writer.write_planned(session, plan, study, site)
    # SQLite's planned ids follow the snapshot's largest id, which the other study's participant took;
    # PostgreSQL's come from its sequence and stay free.
    assert redone is (backend == "sqlite")
    assert [r.outcome for r in results] == ["created", "created"]
    stored = bulk.participants()
    assert {stored[p]["study_id"] for p in ("N-1", "N-2")} == {study.id} and stored["O-1"]["study_id"] == other_study.id
    assert len({p["id"] for p in stored.values()}) == 3


def a_plan_whose_access_code_another_study_took(bulk):
    """A plan creating N-1 with register=y, after which another study's participant got the very access
    code the plan drew (no insert, no revision of this study). Returns (plan, study, site, the code)."""
    other_study, other_site = _other_study(bulk)
    with bulk.db.transaction() as session:
        writer.apply_batch(
            session, other_study, other_site, [writer.Record("O-1", {})], register=False, username="dm", source="api"
        )
    with bulk.db.read_sessions() as reads:
        plan, study, site = _plan(bulk, reads, [writer.Record("N-1", {})], register=True)
    [planned] = plan.decision.issued
    with bulk.db.transaction() as session:
        session.execute(update(Participant).where(Participant.participant_id == "O-1").values(access_code=planned))
    return plan, study, site, planned


def test_an_access_code_taken_in_another_study_between_plan_and_write_is_drawn_again(bulk):
    plan, study, site, planned = a_plan_whose_access_code_another_study_took(bulk)
    with bulk.db.transaction() as session:
        results, redone = writer.write_planned(session, plan, study, site)
    assert redone and results[0].outcome == "created"
    code = bulk.participants()["N-1"]["access_code"]
    assert code and code != planned


def test_a_cancel_seen_by_the_batch_being_written_wins_over_a_failure_to_read_the_next(bulk, overlap):
    job_uuid = bulk.upload(csv_of(*(f"K-{i},N,,,," for i in range(1, 7))))
    plans = []

    def write_after_a_cancel(_job, plan):
        if plan.rows[0].entry.row == 1:  # the job's first batch
            assert bulk.client.post(f"{P}/jobs/{job_uuid}/cancel", headers=bulk.users["dm"]).status_code == 202

    def plan_then_fail(_job, plan):
        plans.append(plan.rows[0].entry.row)
        if len(plans) == 2:
            raise RuntimeError("the next batch cannot be read")

    drain(bulk.db, bulk.settings, hooked(before=write_after_a_cancel, planned=plan_then_fail))
    job = bulk.job(job_uuid)
    assert job["status"] == "CANCELLED" and job["error"] is None
    assert [e["row"] for e in bulk.log(job_uuid)] == [1, 2]


@pytest.mark.parametrize("locked", ["study", "site"])
def test_a_job_whose_study_or_site_was_locked_after_the_upload_fails_and_writes_nothing(bulk, overlap, locked):
    job_uuid = bulk.upload(csv_of("L-1,Ann,,,,", "L-2,Bea,,,,"))
    bulk.set_study(status="locked") if locked == "study" else bulk.set_site(SITE_A, status="locked")
    drain(bulk.db, bulk.settings)
    job = bulk.job(job_uuid)
    code = codes.STUDY_NOT_AVAILABLE if locked == "study" else codes.SITE_NOT_AVAILABLE
    assert (job["status"], job["error"]) == ("FAILED", code)
    assert bulk.log(job_uuid) == [] and bulk.participants() == {}


@pytest.mark.parametrize("locked", ["study", "site"])
def test_a_study_or_site_locked_while_its_job_runs_stops_the_job_at_its_next_batch(bulk, overlap, locked):
    # Rows 3-6 are invalid: a batch with nothing to write stops too.
    job_uuid = bulk.upload(csv_of("M-1,N,,,,", "M-2,N,,,,", *(f"M-{i},N,,bad-email,," for i in range(3, 7))))

    def write_then_lock(_job, outcome):
        if outcome.processed == 2:
            bulk.set_study(status="locked") if locked == "study" else bulk.set_site(SITE_A, status="locked")

    drain(bulk.db, bulk.settings, hooked(after=write_then_lock))
    job = bulk.job(job_uuid)
    code = codes.STUDY_NOT_AVAILABLE if locked == "study" else codes.SITE_NOT_AVAILABLE
    assert (job["status"], job["error"]) == ("FAILED", code)
    # The batch written before the lock stays, with its log; nothing after it is applied.
    assert [e["row"] for e in bulk.log(job_uuid)] == [1, 2]
    assert sorted(bulk.participants()) == ["M-1", "M-2"]


def test_changing_a_site_waits_for_the_batch_being_written(bulk):
    """A batch reads its site's status and cap under the study's row lock; an admin's change to the site
    takes that lock too, so it lands before or after the batch, never while the batch is being written."""
    answered = []
    changing = threading.Thread(target=lambda: answered.append(bulk.set_site(SITE_A, status="locked")))
    with bulk.db.transaction() as session:
        study_id = session.scalar(select(Study.id).where(Study.oid == STUDY))
        writer.lock_study(session, study_id)  # as a batch holds it until its commit
        changing.start()
        changing.join(0.5)
        assert changing.is_alive()
    changing.join(30)
    assert answered and not changing.is_alive()
