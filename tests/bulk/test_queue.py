"""The job queue (SPEC §9): claiming, leases and fencing, resume from the checkpoint, the attempts cap,
cancel and delete observed between batches, concurrent jobs under one cap, the embedded worker."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from roster import codes
from roster.app import create_app
from roster.bulk import importer, queue
from roster.bulk.importer import Importer
from roster.bulk.models import Job, LogEntry, UploadChunk
from roster.bulk.queue import LeaseLost
from roster.bulk.worker import drain, run_one
from roster.participants.models import Participant
from tests.bulk.conftest import SITE_A, SITE_B, csv_of, outcomes
from tests.sinks import failing_after, hooked
from tests.support import P

TEN = csv_of(*(f"P-{i},Name{i},,,," for i in range(1, 11)))


class Crash(BaseException):
    """Stands in for the process dying: no handler in the worker catches it."""


def small_batches(bulk, size: int = 3, **more):
    return bulk.settings.model_copy(update={"batch_size": size, **more})


def expire_lease(bulk, job_uuid: str) -> None:
    with bulk.db.transaction() as s:
        s.execute(
            update(Job)
            .where(Job.uuid == job_uuid)
            .values(lease_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )


def job_row(bulk, job_uuid: str) -> Job:
    with bulk.db.read_sessions() as s:
        return s.scalar(select(Job).where(Job.uuid == job_uuid))


def count(bulk, model, *where) -> int:
    with bulk.db.read_sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_claim_takes_the_oldest_job_and_leases_it(bulk):
    first, second = bulk.upload(TEN), bulk.upload(TEN)
    claim = queue.claim(bulk.db, 30)
    assert claim.uuid == first and claim.attempts == 1 and claim.processed == 0
    row = job_row(bulk, first)
    assert row.status == "IN_PROGRESS" and row.lease_owner == claim.owner and row.date_started is not None
    assert row.lease_expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=25)
    assert queue.claim(bulk.db, 30).uuid == second
    assert queue.claim(bulk.db, 30) is None


def test_concurrent_claims_never_take_the_same_job(bulk):
    uuids = {bulk.upload(TEN) for _ in range(6)}
    claimed, barrier = [], threading.Barrier(3)

    def grab():
        barrier.wait()
        while (c := queue.claim(bulk.db, 30)) is not None:
            claimed.append(c.uuid)

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(uuids)


def test_a_renewed_lease_is_extended_and_a_lost_one_is_not(bulk):
    job_uuid = bulk.upload(TEN)
    mine = queue.claim(bulk.db, 5)
    assert queue.renew(bulk.db, mine, 60)
    assert job_row(bulk, job_uuid).lease_expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=50)
    expire_lease(bulk, job_uuid)
    theirs = queue.claim(bulk.db, 30)
    assert theirs.uuid == job_uuid and theirs.owner != mine.owner and theirs.attempts == 2
    assert not queue.renew(bulk.db, mine, 60)


def test_a_worker_whose_lease_was_taken_writes_nothing(bulk):
    job_uuid = bulk.upload(TEN)
    stale = queue.claim(bulk.db, 30)
    expire_lease(bulk, job_uuid)
    fresh = queue.claim(bulk.db, 30)
    with pytest.raises(LeaseLost):
        Importer(bulk.db, small_batches(bulk), stale).run()
    assert count(bulk, LogEntry) == 0 and count(bulk, Participant) == 0
    assert Importer(bulk.db, small_batches(bulk), fresh).run() == "COMPLETED"
    assert count(bulk, LogEntry) == 10 and count(bulk, Participant) == 10


def test_a_job_taken_over_mid_run_keeps_the_first_workers_committed_batches_only(bulk):
    job_uuid = bulk.upload(TEN)
    settings = small_batches(bulk)
    stale = queue.claim(bulk.db, 30)
    taken = []

    def write_then_lose(job, outcome):
        if job.claim is stale and outcome.processed == 3:
            # Another worker takes the job over between this worker's first and second batch.
            expire_lease(bulk, job_uuid)
            taken.append(queue.claim(bulk.db, 30))

    first = Importer(bulk.db, settings, stale, sinks=hooked(after=write_then_lose))
    with pytest.raises(LeaseLost):
        first.run()
    assert count(bulk, LogEntry) == 3
    assert Importer(bulk.db, settings, taken[0]).run() == "COMPLETED"
    log = bulk.log(job_uuid)
    assert [e["row"] for e in log] == list(range(1, 11)) and set(outcomes(log)) == {"created"}
    assert job_row(bulk, job_uuid).created == 10


@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "one-at-a-time"])
def test_a_job_whose_worker_died_resumes_after_its_last_committed_batch(bulk, overlap):
    job_uuid = bulk.upload(TEN)
    settings = small_batches(bulk, bulk_overlap=overlap)
    with pytest.raises(Crash):
        drain(bulk.db, settings, failing_after(2, Crash)[0])
    row = job_row(bulk, job_uuid)
    assert (row.status, row.processed, row.rows_total, row.created) == ("IN_PROGRESS", 6, 10, 6)
    assert drain(bulk.db, settings) == 0  # the lease still runs
    expire_lease(bulk, job_uuid)
    assert drain(bulk.db, settings) == 1
    row = job_row(bulk, job_uuid)
    assert (row.status, row.attempts, row.processed, row.created) == ("COMPLETED", 2, 10, 10)
    assert [e["row"] for e in bulk.log(job_uuid)] == list(range(1, 11))
    assert count(bulk, Participant) == 10


def test_an_in_file_duplicate_is_caught_across_a_resume(bulk):
    job_uuid = bulk.upload(csv_of("P-1,a,,,,", "P-2,b,,,,", "P-3,c,,,,", "p-1,d,,,,", "P-4,e,,,,"))
    settings = small_batches(bulk, 2)
    with pytest.raises(Crash):
        drain(bulk.db, settings, failing_after(1, Crash)[0])
    expire_lease(bulk, job_uuid)
    drain(bulk.db, settings)
    log = bulk.log(job_uuid)
    assert outcomes(log) == ["created", "created", "created", "failed", "created"]
    assert log[3]["errors"][0]["code"] == codes.PARTICIPANT_ID_DUPLICATED_IN_FILE


def test_a_failing_job_is_retried_and_failed_after_the_attempts_cap(bulk):
    job_uuid = bulk.upload(TEN)
    failing, calls = failing_after(0, RuntimeError)
    assert drain(bulk.db, small_batches(bulk, job_max_attempts=3), failing) == 3
    row = job_row(bulk, job_uuid)
    assert (row.status, row.attempts, row.error, row.lease_owner) == ("FAILED", 3, codes.JOB_ATTEMPTS_EXHAUSTED, None)
    assert calls["n"] == 3 and row.date_completed is not None
    assert bulk.job(job_uuid)["error"] == codes.JOB_ATTEMPTS_EXHAUSTED


def kill_the_last_allowed_worker(bulk):
    """A job whose only allowed attempt died after its first batch (3 rows). Returns (job, settings)."""
    job_uuid = bulk.upload(TEN)
    settings = small_batches(bulk, job_max_attempts=1)
    with pytest.raises(Crash):
        drain(bulk.db, settings, failing_after(1, Crash)[0])
    return job_uuid, settings


def test_a_job_whose_last_allowed_worker_died_is_failed_without_running(bulk):
    job_uuid, settings = kill_the_last_allowed_worker(bulk)
    expire_lease(bulk, job_uuid)
    drain(bulk.db, settings)
    row = job_row(bulk, job_uuid)
    assert (row.status, row.error, row.processed) == ("FAILED", codes.JOB_ATTEMPTS_EXHAUSTED, 3)
    assert count(bulk, LogEntry) == 3


def test_a_job_cancelled_after_its_last_allowed_worker_died_ends_cancelled_not_failed(bulk):
    job_uuid, settings = kill_the_last_allowed_worker(bulk)
    assert bulk.client.post(f"{P}/jobs/{job_uuid}/cancel", headers=bulk.users["dm"]).status_code == 202
    expire_lease(bulk, job_uuid)
    drain(bulk.db, settings)
    row = job_row(bulk, job_uuid)
    assert (row.status, row.error, row.processed, row.lease_owner) == ("CANCELLED", None, 3, None)


def test_a_job_records_an_upload_size_past_two_gibibytes(bulk):
    job_uuid = bulk.upload(TEN)
    with bulk.db.transaction() as s:
        s.execute(update(Job).where(Job.uuid == job_uuid).values(upload_size=5 * 2**30))
    assert job_row(bulk, job_uuid).upload_size == 5 * 2**30


def test_a_corrupted_upload_fails_the_job_without_applying_a_row(bulk):
    job_uuid = bulk.upload(TEN)
    with bulk.db.transaction() as s:
        s.execute(update(UploadChunk).values(data=TEN.replace(b"Name1", b"Nome1")))
    drain(bulk.db, bulk.settings)
    row = job_row(bulk, job_uuid)
    assert (row.status, row.error, row.attempts) == ("FAILED", codes.JOB_UPLOAD_UNREADABLE, 1)
    assert count(bulk, Participant) == 0 and count(bulk, LogEntry) == 0


def test_a_cancel_is_observed_after_the_current_batch(bulk):
    job_uuid = bulk.upload(TEN)

    def write_then_cancel(_job, outcome):
        if outcome.processed == 3:
            r = bulk.client.post(f"{P}/jobs/{job_uuid}/cancel", headers=bulk.users["dm"])
            assert r.status_code == 202, r.text

    drain(bulk.db, small_batches(bulk), hooked(after=write_then_cancel))
    row = job_row(bulk, job_uuid)
    # The batch running when the cancel arrived finished; no batch started after it.
    assert (row.status, row.processed, row.lease_owner) == ("CANCELLED", 6, None)
    assert [e["row"] for e in bulk.log(job_uuid)] == list(range(1, 7)) and count(bulk, Participant) == 6


def test_a_queued_job_cancelled_before_it_starts_is_never_run(bulk):
    job_uuid = bulk.upload(TEN)
    assert bulk.client.post(f"{P}/jobs/{job_uuid}/cancel", headers=bulk.users["dm"]).status_code == 200
    assert drain(bulk.db, bulk.settings) == 0
    assert count(bulk, Participant) == 0


def test_a_job_deleted_while_running_writes_nothing_more(bulk):
    job_uuid = bulk.upload(TEN)

    def write_then_delete(_job, outcome):
        if outcome.processed == 3:
            assert bulk.client.delete(f"{P}/jobs/{job_uuid}", headers=bulk.users["dm"]).status_code == 204

    drain(bulk.db, small_batches(bulk), hooked(after=write_then_delete))
    assert bulk.stored() == (0, 0, 0)
    assert count(bulk, Participant) == 3


def test_a_stopping_worker_gives_its_job_back_without_using_an_attempt(bulk):
    job_uuid = bulk.upload(TEN)
    stop = threading.Event()
    assert run_one(bulk.db, small_batches(bulk), stop, hooked(after=lambda _job, _outcome: stop.set()))
    row = job_row(bulk, job_uuid)
    assert (row.status, row.processed, row.attempts, row.lease_owner) == ("IN_QUEUE", 3, 0, None)
    drain(bulk.db, small_batches(bulk))
    assert job_row(bulk, job_uuid).status == "COMPLETED" and count(bulk, LogEntry) == 10


def test_two_jobs_running_at_once_do_not_exceed_the_study_cap_together(bulk):
    bulk.set_study(enrollmentCap=30)
    bulk.upload(csv_of(*(f"A-{i},,,,," for i in range(25))), site=SITE_A)
    bulk.upload(csv_of(*(f"B-{i},,,,," for i in range(25))), site=SITE_B)
    settings = small_batches(bulk, 2)
    barrier = threading.Barrier(2)
    errors = []

    def work():
        try:
            barrier.wait()
            run_one(bulk.db, settings)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with bulk.db.read_sessions() as s:
        jobs = s.scalars(select(Job)).all()
        failed = s.scalar(select(func.count()).select_from(LogEntry).where(LogEntry.outcome == "failed"))
    assert {j.status for j in jobs} == {"COMPLETED"}
    assert count(bulk, Participant) == 30 and failed == 20


def test_the_embedded_worker_runs_an_upload_without_being_asked(bulk, settings, db):
    app = create_app(settings.model_copy(update={"embedded_workers": 1, "worker_poll_seconds": 30}), db=db)
    with TestClient(app) as client:
        r = client.post(
            f"{P}/clinicaldata/studies/S_BULK%28TEST%29/sites/S_SITE_A%28TEST%29/participants/bulk",
            files={"file": ("p.csv", TEN, "text/csv")},
            headers=bulk.users["dm"],
        )
        job_uuid = r.text.removeprefix("job uuid: ")
        deadline = time.monotonic() + 20
        # The poll interval is 30 s: only the upload's wake-up can finish the job in time.
        while job_row(bulk, job_uuid).status != "COMPLETED":
            assert time.monotonic() < deadline, "the embedded worker did not run the job"
            time.sleep(0.05)
    assert count(bulk, Participant) == 10


def test_stored_chunks_stream_the_upload_in_order(bulk):
    data = csv_of(*(f"P-{i},Name,,,," for i in range(150_000)))
    job_uuid = bulk.upload(data)
    job = job_row(bulk, job_uuid)
    assert b"".join(importer.stored_chunks(bulk.db, job.id)) == data


def test_a_cancel_during_the_first_pass_applies_no_row(bulk):
    job_uuid = bulk.upload(TEN)
    claim = queue.claim(bulk.db, 30)
    # Pressed after the claim, before the first pass's checkpoint (the claim itself saw no cancel): the job
    # is IN_PROGRESS, so 202, and the first pass is what finds it.
    r = bulk.client.post(f"{P}/jobs/{job_uuid}/cancel", headers=bulk.users["dm"])
    assert r.status_code == 202, r.text
    assert not claim.cancel_requested
    assert Importer(bulk.db, small_batches(bulk), claim).run() == "CANCELLED"
    assert count(bulk, LogEntry) == 0 and count(bulk, Participant) == 0
    assert job_row(bulk, job_uuid).status == "CANCELLED"


def test_lease_times_come_from_the_database_clock(bulk, monkeypatch):
    bulk.upload(TEN)
    first = queue.claim(bulk.db, 30)
    # A worker whose clock runs an hour ahead.
    monkeypatch.setattr(queue, "utcnow", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    # Workers agree through the database's clock: the healthy job stays with its worker.
    assert queue.claim(bulk.db, 30) is None
    assert queue.renew(bulk.db, first, 30)
    expires = job_row(bulk, first.uuid).lease_expires_at
    assert (
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=28)
        < expires
        < dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31)
    )
