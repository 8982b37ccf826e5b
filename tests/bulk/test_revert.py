"""SPEC §11.2: reverting a bulk job through the HTTP API, run by the worker (drain)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, select, update

from roster import codes
from roster.bulk import queue
from roster.bulk.models import Job, LogEntry
from roster.bulk.revert import Reverter
from roster.bulk.worker import drain
from roster.participants.models import AuditEvent
from tests.bulk.conftest import SITE_A, csv_of, outcomes
from tests.support import P


def revert(bulk, job_uuid: str, user: str = "dm"):
    return bulk.client.post(f"{P}/jobs/{job_uuid}/revert", headers=bulk.users[user])


def run_revert(bulk, job_uuid: str) -> tuple[dict, list[dict]]:
    r = revert(bulk, job_uuid)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"{P}/jobs/{body['uuid']}"
    assert (body["type"], body["revertOf"], body["dryRun"], body["status"]) == (
        "REVERT_BULK_ADD_PARTICIPANTS",
        job_uuid,
        False,
        "IN_QUEUE",
    )
    drain(bulk.db, bulk.settings)
    return bulk.job(body["uuid"]), bulk.log(body["uuid"])


def trail(bulk, participant_pk: int) -> list[tuple[str, str]]:
    with bulk.db.read_sessions() as s:
        return [
            tuple(r)
            for r in s.execute(
                select(AuditEvent.action, AuditEvent.source)
                .where(AuditEvent.participant_id == participant_pk)
                .order_by(AuditEvent.id)
            )
        ]


def test_reverting_creations_deletes_the_participants_and_frees_ids_and_cap_places(bulk):
    bulk.set_study(enrollmentCap=2)
    job, _ = bulk.run(csv_of("R-1,Ann,,,,", "R-2,Bob,,,,"), register="y")
    assert (
        job["counts"]["created"] == 2
        and job["counts"]["deleted"] == 0
        and job["revertOf"] is None
        and job["dryRun"] is False
    )
    pk = bulk.participants()["R-1"]["id"]
    done, log = run_revert(bulk, job["uuid"])
    assert done["status"] == "COMPLETED"
    assert (
        done["counts"]["deleted"],
        done["counts"]["restored"],
        done["counts"]["failed"],
        done["counts"]["processed"],
    ) == (2, 0, 0, 2)
    assert [(e["row"], e["participantId"], e["outcome"]) for e in log] == [(1, "R-1", "deleted"), (2, "R-2", "deleted")]
    assert bulk.participants() == {}
    events = trail(bulk, pk)
    assert events[0] == ("create", job["uuid"]) and events[-1] == ("delete", done["uuid"])
    # The IDs and the cap's places are free again.
    again, again_log = bulk.run(csv_of("R-1,Ann,,,,", "R-3,Cy,,,,"))
    assert outcomes(again_log) == ["created", "created"]
    csv_text = bulk.client.get(f"{P}/jobs/{done['uuid']}/downloadFile", headers=bulk.users["dm"]).content.decode()
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0][4] == "Status" and [r[4] for r in rows[1:]] == ["Deleted", "Deleted"]
    # A revert has no upload: no rows to fix.
    r = bulk.client.get(f"{P}/jobs/{done['uuid']}/failedRows", headers=bulk.users["dm"])
    assert r.status_code == 409 and r.json()["message"] == codes.JOB_HAS_NO_UPLOAD


def test_reverting_updates_and_a_registration_restores_the_values(bulk):
    first, _ = bulk.run(csv_of("U-1,Ann,Lee,ann@example.org,,", "U-2,Bob,,,,"))
    before = bulk.participants()
    job, log = bulk.run(csv_of("U-1,Anna,Lee,anna@example.org,,", "U-2,Bob,,,,", "U-3,New,,,,"), register="y")
    assert outcomes(log) == ["updated", "updated", "created"]
    assert bulk.participants()["U-2"]["access_code"] is not None
    done, rlog = run_revert(bulk, job["uuid"])
    assert [(e["row"], e["outcome"]) for e in rlog] == [(1, "restored"), (2, "restored"), (3, "deleted")]
    assert (done["counts"]["restored"], done["counts"]["deleted"]) == (2, 1)
    after = bulk.participants()
    assert set(after) == {"U-1", "U-2"}
    for pid in ("U-1", "U-2"):
        for column in ("first_name", "last_name", "email_address", "participate_status", "access_code"):
            assert after[pid][column] == before[pid][column], (pid, column)
    with bulk.db.read_sessions() as s:
        last = (
            s.execute(
                select(AuditEvent).where(AuditEvent.participant_id == after["U-1"]["id"]).order_by(AuditEvent.id.desc())
            )
            .scalars()
            .first()
        )
        assert (last.action, last.source) == ("revert", done["uuid"])
        assert {c["field"]: (c["old"], c["new"]) for c in last.changes} == {
            "firstName": ("Anna", "Ann"),
            "emailAddress": ("anna@example.org", "ann@example.org"),
            "participateStatus": ("Created", None),
        }


def test_a_participant_changed_since_the_job_is_left_as_it_is(bulk):
    job, _ = bulk.run(csv_of("C-1,Ann,,,,", "C-2,Bob,,,,"))
    later, _ = bulk.run(csv_of("C-2,Bobby,,,,"))
    done, log = run_revert(bulk, job["uuid"])
    assert [(e["participantId"], e["outcome"]) for e in log] == [("C-1", "deleted"), ("C-2", "failed")]
    assert log[1]["errors"][0]["code"] == codes.CHANGED_SINCE_JOB
    assert done["counts"]["failed"] == 1
    assert bulk.participants()["C-2"]["first_name"] == "Bobby"


def test_a_second_revert_a_revert_and_a_running_job_are_refused(bulk):
    job, _ = bulk.run(csv_of("D-1,Ann,,,,"))
    done, _ = run_revert(bulk, job["uuid"])
    for target in (job["uuid"], done["uuid"]):
        r = revert(bulk, target)
        assert r.status_code == 409 and r.json()["message"] == codes.JOB_NOT_REVERTIBLE, r.text
    queued = bulk.upload(csv_of("D-2,Bob,,,,"))
    r = revert(bulk, queued)
    assert r.status_code == 409 and r.json()["message"] == codes.JOB_NOT_FINISHED
    assert queue.claim(bulk.db, 30).uuid == queued  # now IN_PROGRESS
    r = revert(bulk, queued)
    assert r.status_code == 409 and r.json()["message"] == codes.JOB_NOT_FINISHED


def test_a_dry_run_is_not_revertible(bulk):
    job, _ = bulk.run(csv_of("Y-1,Ann,,,,"))
    with bulk.db.transaction() as s:
        s.execute(update(Job).where(Job.uuid == job["uuid"]).values(dry_run=True))
    r = revert(bulk, job["uuid"])
    assert r.status_code == 409 and r.json()["message"] == codes.JOB_NOT_REVERTIBLE


def test_only_a_writer_at_the_job_s_site_may_revert(bulk):
    job, _ = bulk.run(csv_of("M-1,Ann,,,,"))
    bulk.user("mon", "monitor")
    bulk.user("nobody")
    r = revert(bulk, job["uuid"], "mon")
    assert r.status_code == 403, r.text
    assert revert(bulk, job["uuid"], "nobody").status_code == 404
    assert bulk.participants()["M-1"]["first_name"] == "Ann"
    bulk.user("crc", "clinical_research_coordinator", site=SITE_A)
    assert revert(bulk, job["uuid"], "crc").status_code == 201


class Crash(BaseException):
    """The worker dying inside a batch's transaction."""


def test_a_revert_resumed_after_its_worker_died_restores_each_row_once(bulk):
    rows = [f"K-{i},Name{i},,,," for i in range(1, 8)]
    bulk.run(csv_of(*rows))
    job, _ = bulk.run(csv_of(*(r.replace("Name", "New") for r in rows)))
    r = revert(bulk, job["uuid"])
    assert r.status_code == 201
    revert_uuid = r.json()["uuid"]
    settings = bulk.settings.model_copy(update={"batch_size": 3})

    def die_in_second_batch(processed: int) -> None:
        if processed > 3:
            raise Crash

    claim = queue.claim(bulk.db, 30)
    with pytest.raises(Crash):
        Reverter(bulk.db, settings, claim, on_batch=die_in_second_batch).run()
    state = bulk.job(revert_uuid)
    assert (state["status"], state["counts"]["processed"], state["counts"]["restored"]) == ("IN_PROGRESS", 3, 3)
    with bulk.db.transaction() as s:
        s.execute(
            update(Job)
            .where(Job.uuid == revert_uuid)
            .values(lease_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert drain(bulk.db, settings) == 1
    done = bulk.job(revert_uuid)
    assert (done["status"], done["counts"]["processed"], done["counts"]["restored"], done["counts"]["failed"]) == (
        "COMPLETED",
        7,
        7,
        0,
    )
    assert [e["row"] for e in bulk.log(revert_uuid)] == list(range(1, 8))
    stored = bulk.participants()
    assert {stored[f"K-{i}"]["first_name"] for i in range(1, 8)} == {f"Name{i}" for i in range(1, 8)}
    with bulk.db.read_sessions() as s:
        per = s.execute(
            select(AuditEvent.participant_id, func.count())
            .where(AuditEvent.source == revert_uuid)
            .group_by(AuditEvent.participant_id)
        ).all()
        assert len(per) == 7 and all(n == 1 for _, n in per)
        assert (
            s.scalar(
                select(func.count())
                .select_from(LogEntry)
                .where(LogEntry.job_id == select(Job.id).where(Job.uuid == revert_uuid).scalar_subquery())
            )
            == 7
        )


def test_a_revert_cancelled_while_it_runs_stops_at_its_next_checkpoint(bulk):
    job, _ = bulk.run(csv_of(*(f"Z-{i},N{i},,,," for i in range(1, 6))))
    revert_uuid = revert(bulk, job["uuid"]).json()["uuid"]
    claim = queue.claim(bulk.db, 30)
    assert bulk.client.post(f"{P}/jobs/{revert_uuid}/cancel", headers=bulk.users["dm"]).status_code == 202
    settings = bulk.settings.model_copy(update={"batch_size": 2})
    assert Reverter(bulk.db, settings, claim).run() == "CANCELLED"
    done = bulk.job(revert_uuid)
    assert (done["status"], done["counts"]["deleted"], done["counts"]["rows"]) == ("CANCELLED", 0, 5)
    assert len(bulk.participants()) == 5
    assert revert(bulk, job["uuid"]).status_code == 409  # a job is reverted once, even by a cancelled revert
