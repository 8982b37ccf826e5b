"""The SQLite writer process (roster.bulk.writer_process): a batch's statements run there in one
transaction, its checks send the batch back to be decided again, and a job survives the process dying."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import threading

import pytest
from sqlalchemy import func, select

from roster.bulk import writer_process
from roster.bulk.models import Job
from roster.bulk.process_sink import planned_steps
from roster.bulk.worker import drain
from roster.bulk.writer_process import CONFLICT, MISSING, ROW, STALE, WRITTEN, WriterProcess, run
from roster.fastsql import bulk_for
from roster.participants import writer
from roster.participants.models import AuditEvent
from tests.bulk.conftest import csv_of, outcomes
from tests.bulk.test_overlap import _other_study, _plan, a_plan_whose_access_code_another_study_took

# The writer process serves SQLite only: these tests run on the SQLite database alone.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def table(tmp_path) -> sqlite3.Connection:
    connection = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)")
    connection.execute("INSERT INTO t VALUES (1, 'one', 10)")
    return connection


def names(connection: sqlite3.Connection) -> list[str]:
    return [r[0] for r in connection.execute("SELECT name FROM t ORDER BY id")]


def test_steps_run_in_one_transaction_and_the_rows_asked_for_come_back(table):
    answer = run(
        table,
        [
            ("SELECT n FROM t WHERE id = ?", (1,), (10,)),
            ("INSERT INTO t VALUES (?, ?, ?), (?, ?, ?)", (2, "two", 20, 3, "three", 30), None),
            ("UPDATE t SET n = n + 1 WHERE id = ? RETURNING n, name", (3,), ROW),
        ],
    )
    assert answer == (WRITTEN, [(31, "three")])
    assert names(table) == ["one", "two", "three"] and not table.in_transaction


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (("SELECT n FROM t WHERE id = ?", (1,), (11,)), (STALE, 1)),  # a value other than the one decided with
        (("SELECT n FROM t WHERE id = ?", (9,), (10,)), (STALE, 1)),  # no row where one was expected
        (("UPDATE t SET n = 0 WHERE id = ? RETURNING n", (9,), ROW), (MISSING, 1)),  # a fence that found nothing
    ],
)
def test_a_failed_check_rolls_back_what_ran_before_it_and_names_the_step(table, step, expected):
    answer = run(
        table,
        [("INSERT INTO t VALUES (2, 'two', 20)", (), None), step, ("INSERT INTO t VALUES (3, 'three', 30)", (), None)],
    )
    assert answer == expected
    assert names(table) == ["one"] and not table.in_transaction


def test_a_unique_violation_rolls_back_and_is_a_conflict(table):
    outcome, message = run(
        table, [("INSERT INTO t VALUES (2, 'two', 20)", (), None), ("INSERT INTO t VALUES (3, 'one', 30)", (), None)]
    )
    assert outcome == CONFLICT and "UNIQUE" in message
    assert names(table) == ["one"]


def test_the_process_writes_what_it_is_sent_and_ends_when_its_pipe_closes(table, tmp_path):
    table.execute("PRAGMA journal_mode=WAL")
    process = WriterProcess()
    try:
        path = str(tmp_path / "t.db")
        assert process.call(process.encode(path, [("INSERT INTO t VALUES (?, ?, ?)", (2, "two", None), None)])) == (
            WRITTEN,
            [],
        )
        with pytest.raises(RuntimeError, match="OperationalError"):
            process.call(process.encode(path, [("INSERT INTO nowhere VALUES (1)", (), None)]))
        # Still serving after an error.
        assert process.call(process.encode(path, [("SELECT count(*) FROM t", (), ROW)])) == (WRITTEN, [(2,)])
    finally:
        process.close()
    assert process.process.returncode == 0
    assert names(table) == ["one", "two"]


def spy_on_answers(monkeypatch) -> list[tuple[int, str]]:
    """(process id, answer) of every request the writer processes answer."""
    answers: list[tuple[int, str]] = []
    real = WriterProcess.call

    def call(self, request, **kw):
        answer = real(self, request, **kw)
        answers.append((self.pid, answer[0]))
        return answer

    monkeypatch.setattr(WriterProcess, "call", call)
    return answers


@sqlite_only
def test_sqlite_jobs_write_their_batches_through_the_writer_process(bulk, monkeypatch):
    answers = spy_on_answers(monkeypatch)
    bulk.settings = bulk.settings.model_copy(update={"batch_size": 2})
    job, log = bulk.run(
        csv_of("W-1,Ann,,,,", "W-2,Bea,,,,", "W-1,Dup,,,,", "W-3,,,bad-email,,", "W-4,Cy,,,,"), register="y"
    )
    assert job["status"] == "COMPLETED" and outcomes(log) == ["created", "created", "failed", "failed", "created"]
    stored = bulk.participants()
    assert sorted(stored) == ["W-1", "W-2", "W-4"] and all(p["access_code"] for p in stored.values())
    # Updates too, in a second job: every batch written as decided, by one process kept for both jobs.
    job, log = bulk.run(csv_of("W-1,Anna,,,,", "W-2,Bea,,,,", "W-4,,Lee,,,"), register="y")
    assert outcomes(log) == ["updated", "unchanged", "updated"]
    assert [outcome for _pid, outcome in answers] == [WRITTEN] * 5 and len({pid for pid, _ in answers}) == 1


@sqlite_only
def test_a_writer_process_that_dies_mid_job_costs_an_attempt_and_the_job_resumes_after_its_checkpoint(
    bulk, monkeypatch
):
    bulk.settings = bulk.settings.model_copy(update={"batch_size": 2})
    job_uuid = bulk.upload(csv_of(*(f"D-{i},N{i},,,," for i in range(1, 8))))
    real = WriterProcess.call
    calls, killed = [], []

    def die_before_the_second_batch(self, request, **kw):
        calls.append(self.pid)
        if len(calls) == 2:
            killed.append(self.pid)
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait()
        return real(self, request, **kw)

    monkeypatch.setattr(WriterProcess, "call", die_before_the_second_batch)
    drain(bulk.db, bulk.settings)
    assert killed
    job = bulk.job(job_uuid)
    assert job["status"] == "COMPLETED" and job["counts"]["created"] == 7
    assert [e["row"] for e in bulk.log(job_uuid)] == list(range(1, 8))
    assert sorted(bulk.participants()) == [f"D-{i}" for i in range(1, 8)]
    with bulk.db.read_sessions() as s:
        assert s.scalar(select(Job.attempts).where(Job.uuid == job_uuid)) == 2
    # The dead process was not given back to the pool.
    assert killed[0] not in [w.pid for w in writer_process._idle]


@sqlite_only
def test_a_batch_committed_by_a_writer_process_whose_answer_was_lost_is_not_written_again(bulk, monkeypatch):
    bulk.settings = bulk.settings.model_copy(update={"batch_size": 2})
    job_uuid = bulk.upload(csv_of(*(f"A-{i},N{i},,,," for i in range(1, 8))))
    real = WriterProcess.call
    calls = []

    def commit_then_die(self, request, **kw):
        answer = real(self, request, **kw)
        calls.append(answer[0])
        if len(calls) == 2:  # the second batch is committed; the process dies and its answer is lost
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait()
            self.busy = True
            raise ConnectionError("the bulk writer process is gone")
        return answer

    monkeypatch.setattr(WriterProcess, "call", commit_then_die)
    drain(bulk.db, bulk.settings)
    job = bulk.job(job_uuid)
    assert job["status"] == "COMPLETED" and job["counts"]["created"] == 7 and job["counts"]["processed"] == 7
    # Every row logged once, every participant written once: the resumed attempt started after row 4.
    assert [e["row"] for e in bulk.log(job_uuid)] == list(range(1, 8))
    with bulk.db.read_sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 7
        assert s.scalar(select(Job.attempts).where(Job.uuid == job_uuid)) == 2


@sqlite_only
def test_a_batch_that_waited_for_the_database_lock_renews_the_lease_from_its_commit(bulk, monkeypatch):
    """The checkpoint's lease is read from the database's clock when it runs, not when the batch was decided."""
    bulk.settings = bulk.settings.model_copy(update={"batch_size": 2, "job_lease_seconds": 30})
    job_uuid = bulk.upload(csv_of("L-1,N,,,,", "L-2,N,,,,", "L-3,N,,,,"))
    real = WriterProcess.call
    holder = sqlite3.connect(bulk.db.sqlite_file, isolation_level=None, check_same_thread=False)
    released, expiries = [], []

    def release() -> None:
        released.append(dt.datetime.now(dt.UTC))
        holder.rollback()

    timer = threading.Timer(2.0, release)

    def call_while_someone_holds_the_lock(self, request, **kw):
        if not expiries:
            holder.execute("BEGIN IMMEDIATE")
            timer.start()
        answer = real(self, request, **kw)
        with bulk.db.read_sessions() as s:
            expiries.append(s.scalar(select(Job.lease_expires_at).where(Job.uuid == job_uuid)))
        return answer

    monkeypatch.setattr(WriterProcess, "call", call_while_someone_holds_the_lock)
    try:
        drain(bulk.db, bulk.settings)
    finally:
        timer.join()
        holder.close()
    assert bulk.job(job_uuid)["status"] == "COMPLETED"
    # Committed after the lock was released: a lease from when the batch was decided (2 s before) would end sooner.
    assert expiries[0] >= released[0] + dt.timedelta(seconds=30) - dt.timedelta(milliseconds=5)


@sqlite_only
@pytest.mark.parametrize("failure", ["cannot start", "runs other code"])
def test_a_worker_whose_writer_process_cannot_start_writes_its_batches_itself(bulk, monkeypatch, caplog, failure):
    if failure == "cannot start":

        def cannot_start(self):
            raise OSError("no process slots")

        monkeypatch.setattr(WriterProcess, "__init__", cannot_start)
    else:
        # Another copy of Roster found first on the process's path: it answers with another file.
        monkeypatch.setattr(writer_process, "_this_file", lambda: "/elsewhere/roster/bulk/writer_process.py")
    monkeypatch.setattr(writer_process, "_idle", [])
    monkeypatch.setattr(writer_process, "_failed_at", None)
    job, log = bulk.run(csv_of("F-1,Ann,,,,", "F-2,Bea,,,,"))
    assert job["status"] == "COMPLETED" and outcomes(log) == ["created", "created"]
    assert caplog.text.count("could not start") == 1  # once, not at every poll
    assert writer_process._idle == []


def _send(bulk, plan, study, site) -> tuple:
    with bulk.db.read_sessions() as session:
        steps = planned_steps(bulk_for(session), plan, study.id, site.id)
    with writer_process.leased() as process:
        return process.call(process.encode(bulk.db.sqlite_file, steps))


@sqlite_only
def test_a_plan_the_writer_process_runs_is_written_as_decided_while_nothing_changed(bulk):
    bulk.run(csv_of("R-1,Ann,Old,,,"))
    with bulk.db.read_sessions() as reads:
        plan, study, site = _plan(bulk, reads, [writer.Record("R-1", {"firstName": "Anna"}), writer.Record("R-2", {})])
    assert _send(bulk, plan, study, site) == (WRITTEN, [])
    stored = bulk.participants()
    assert stored["R-1"]["first_name"] == "Anna" and stored["R-2"]["oid"] == plan.decision.states[1].oid


@sqlite_only
@pytest.mark.parametrize(
    ("meanwhile", "step"),
    [
        ("participant changed", 0),
        ("study locked", 0),
        ("study cap changed", 0),
        ("site cap changed", 1),
        ("id taken by another study", 2),
    ],
)
def test_a_plan_whose_study_changed_meanwhile_comes_back_stale_and_writes_nothing(bulk, meanwhile, step):
    bulk.run(csv_of("R-1,Ann,Old,,,"))
    with bulk.db.read_sessions() as reads:
        plan, study, site = _plan(bulk, reads, [writer.Record("R-1", {"firstName": "Anna"}), writer.Record("R-2", {})])
    if meanwhile == "participant changed":
        with bulk.db.transaction() as session:
            writer.apply_batch(
                session,
                study,
                site,
                [writer.Record("R-1", {"lastName": "New"})],
                register=False,
                username="dm",
                source="api",
            )
    elif meanwhile == "study locked":
        bulk.set_study(status="locked")
    elif meanwhile == "study cap changed":
        bulk.set_study(enrollmentCap=50)
    elif meanwhile == "site cap changed":
        bulk.set_site(site.oid, enrollmentCap=50)
    else:
        other_study, other_site = _other_study(bulk)
        with bulk.db.transaction() as session:
            writer.apply_batch(
                session,
                other_study,
                other_site,
                [writer.Record("O-1", {})],
                register=False,
                username="dm",
                source="api",
            )
    before = bulk.participants()
    assert _send(bulk, plan, study, site) == (STALE, step)
    assert bulk.participants() == before


@sqlite_only
def test_an_access_code_taken_meanwhile_comes_back_as_a_conflict(bulk):
    plan, study, site, _code = a_plan_whose_access_code_another_study_took(bulk)
    outcome, message = _send(bulk, plan, study, site)
    assert outcome == CONFLICT and "access_code" in message
    assert "N-1" not in bulk.participants()
