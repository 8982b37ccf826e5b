"""POST P/jobs/{uuid}/cancel and DELETE P/jobs/{uuid}."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, update

from roster import codes
from roster.bulk.models import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, IN_QUEUE, Job, LogEntry, UploadChunk
from tests.jobs.conftest import entry_defaults, log_entries
from tests.support import P


def cancel(world, job: str, user: str = "crc_a"):
    return world.api.client.post(f"{P}/jobs/{job}/cancel", headers=world.h(user))


def remove(world, job: str, user: str):
    return world.api.client.delete(f"{P}/jobs/{job}", headers=world.h(user))


def stored(world, job: str) -> dict:
    with world.db.transaction() as s:
        row = s.scalar(select(Job).where(Job.uuid == job))
        return {"status": row.status, "cancel_requested": row.cancel_requested, "date_completed": row.date_completed}


def test_cancelling_a_queued_job_cancels_it_at_once(world):
    job = world.add_job("crc_a", status=IN_QUEUE)
    r = cancel(world, job)
    assert r.status_code == 200
    assert r.json()["status"] == CANCELLED and r.json()["dateCompleted"] is not None
    assert stored(world, job)["status"] == CANCELLED


def test_cancelling_a_running_job_asks_the_worker_to_stop_after_its_batch(world):
    job = world.add_job("crc_a", status=IN_PROGRESS, lease_owner="worker-1")
    r = cancel(world, job, "dm")
    assert r.status_code == 202
    assert r.json()["status"] == IN_PROGRESS and r.json()["cancelRequested"] is True
    assert stored(world, job) == {"status": IN_PROGRESS, "cancel_requested": True, "date_completed": None}
    assert cancel(world, job).status_code == 202  # asking twice is harmless


@pytest.mark.parametrize("status", [COMPLETED, FAILED, CANCELLED])
def test_a_finished_job_cannot_be_cancelled(world, status):
    job = world.add_job("crc_a", status=status)
    r = cancel(world, job)
    assert (r.status_code, r.json()["message"]) == (409, codes.JOB_NOT_CANCELLABLE)
    assert r.json()["params"]["status"] == status
    assert stored(world, job)["status"] == status


def test_cancel_of_an_invisible_job_is_not_found_and_changes_nothing(world):
    job = world.add_job("crc_a", status=IN_QUEUE)
    r = cancel(world, job, "crc_b")
    assert (r.status_code, r.json()["message"]) == (404, codes.JOB_NOT_FOUND)
    assert stored(world, job)["status"] == IN_QUEUE


def counts(world) -> tuple[int, int, int]:
    with world.db.transaction() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Job, LogEntry, UploadChunk))


@pytest.mark.parametrize("user", ["crc_a", "admin"])
def test_creator_or_admin_deletes_the_job_its_log_and_its_upload(world, user):
    keep = world.add_job("crc_b", entries=log_entries(2), upload=b"x" * 10, chunk_size=4)
    assert counts(world) == (1, 2, 3)
    job = world.add_job(
        "crc_a", status=COMPLETED, entries=log_entries(30, failed_every=4), upload=b"y" * 100, chunk_size=8
    )
    r = remove(world, job, user)
    assert r.status_code == 204 and r.content == b""
    assert counts(world) == (1, 2, 3)
    assert world.get(f"/jobs/{job}", "crc_a").status_code == 404
    assert world.get(f"/jobs/{keep}", "crc_b").status_code == 200


def test_a_running_job_can_be_deleted(world):
    job = world.add_job("crc_a", status=IN_PROGRESS, entries=log_entries(3))
    assert remove(world, job, "crc_a").status_code == 204
    assert counts(world) == (0, 0, 0)


@pytest.mark.parametrize("user", ["crc_a2", "dm"])
def test_another_writer_who_sees_the_job_may_not_delete_it(world, user):
    job = world.add_job("crc_a", entries=log_entries(1))
    r = remove(world, job, user)
    assert (r.status_code, r.json()["message"]) == (403, codes.NO_SUFFICIENT_PRIVILEGES)
    assert counts(world)[0] == 1


@pytest.mark.parametrize("user", ["crc_b", "monitor", "viewer_a", "outsider"])
def test_a_user_who_cannot_see_the_job_gets_404_on_delete(world, user):
    job = world.add_job("crc_a", entries=log_entries(1))
    r = remove(world, job, user)
    assert (r.status_code, r.json()["message"]) == (404, codes.JOB_NOT_FOUND)
    assert counts(world)[0] == 1


def test_deleting_an_unknown_job_is_not_found_even_for_an_admin(world):
    r = remove(world, "3f1c7c4e-0000-4000-8000-000000000000", "admin")
    assert (r.status_code, r.json()["message"]) == (404, codes.JOB_NOT_FOUND)


def test_deleting_a_job_while_its_worker_commits_a_batch_leaves_none_of_the_batch_behind(world):
    """The log has no foreign key to cascade through (migration 0003): the delete must wait for a batch
    being committed and then remove its entries too, or see the batch fail its fenced checkpoint."""
    job = world.add_job("crc_a", status=IN_PROGRESS, entries=log_entries(3), lease_owner="worker-1")
    answers = []
    deleting = threading.Thread(target=lambda: answers.append(remove(world, job, "crc_a")))
    with world.db.transaction() as s:
        # The worker's batch, as the importer writes it: the log entries, then the checkpoint on the job row.
        job_id = s.scalar(select(Job.id).where(Job.uuid == job))
        s.add_all(LogEntry(job_id=job_id, **entry_defaults({"row": row})) for row in (4, 5))
        s.flush()
        s.execute(update(Job).where(Job.id == job_id).values(processed=5))
        deleting.start()
        deleting.join(0.5)
        assert deleting.is_alive()  # waits for the batch's transaction
    deleting.join(30)
    assert answers[0].status_code == 204
    assert counts(world) == (0, 0, 0)
