"""The SQLite writer process (roster.bulk.writer_process): a batch's statements run there in one
transaction, its checks send the batch back to be decided again, and a job survives the process dying."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest
from sqlalchemy import select

from roster.bulk import writer_process
from roster.bulk.models import Job
from roster.bulk.worker import drain
from roster.bulk.writer_process import CONFLICT, MISSING, ROW, STALE, WRITTEN, WriterProcess, run
from roster.participants import writer
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
    answer = run(table, [
        ("SELECT n FROM t WHERE id = ?", (1,), (10,)),
        ("INSERT INTO t VALUES (?, ?, ?), (?, ?, ?)", (2, "two", 20, 3, "three", 30), None),
        ("UPDATE t SET n = n + 1 WHERE id = ? RETURNING n, name", (3,), ROW),
    ])
    assert answer == (WRITTEN, [(31, "three")])
    assert names(table) == ["one", "two", "three"] and not table.in_transaction


@pytest.mark.parametrize(("step", "expected"), [
    (("SELECT n FROM t WHERE id = ?", (1,), (11,)), (STALE, 1)),  # a value other than the one decided with
    (("SELECT n FROM t WHERE id = ?", (9,), (10,)), (STALE, 1)),  # no row where one was expected
    (("UPDATE t SET n = 0 WHERE id = ? RETURNING n", (9,), ROW), (MISSING, 1)),  # a fence that found nothing
])
def test_a_failed_check_rolls_back_what_ran_before_it_and_names_the_step(table, step, expected):
    answer = run(table, [("INSERT INTO t VALUES (2, 'two', 20)", (), None), step, ("INSERT INTO t VALUES (3, 'three', 30)", (), None)])
    assert answer == expected
    assert names(table) == ["one"] and not table.in_transaction


def test_a_unique_violation_rolls_back_and_is_a_conflict(table):
    outcome, message = run(table, [("INSERT INTO t VALUES (2, 'two', 20)", (), None), ("INSERT INTO t VALUES (3, 'one', 30)", (), None)])
    assert outcome == CONFLICT and "UNIQUE" in message
    assert names(table) == ["one"]


def test_the_process_writes_what_it_is_sent_and_ends_when_its_pipe_closes(table, tmp_path):
    table.execute("PRAGMA journal_mode=WAL")
    process = WriterProcess()
    try:
        path = str(tmp_path / "t.db")
        assert process.call(process.encode(path, [("INSERT INTO t VALUES (?, ?, ?)", (2, "two", None), None)])) == (WRITTEN, [])
        with pytest.raises(RuntimeError, match="OperationalError"):
            process.call(process.encode(path, [("INSERT INTO nowhere VALUES (1)", (), None)]))
        # Still serving after an error.
        assert process.call(process.encode(path, [("SELECT count(*) FROM t", (), ROW)])) == (WRITTEN, [(2,)])
    finally:
        process.close()
    assert process.process.returncode == 0
    assert names(table) == ["one", "two"]


@sqlite_only
def test_sqlite_jobs_write_their_batches_through_the_writer_process(bulk, monkeypatch):
    calls = []
    real = WriterProcess.call
    monkeypatch.setattr(WriterProcess, "call", lambda self, request: calls.append(self.pid) or real(self, request))
    bulk.settings = bulk.settings.model_copy(update={"batch_size": 2})
    job, log = bulk.run(csv_of("W-1,Ann,,,,", "W-2,Bea,,,,", "W-1,Dup,,,,", "W-3,,,bad-email,,", "W-4,Cy,,,,"), register="y")
    assert job["status"] == "COMPLETED" and outcomes(log) == ["created", "created", "failed", "failed", "created"]
    assert len(calls) == 3 and len(set(calls)) == 1
    stored = bulk.participants()
    assert sorted(stored) == ["W-1", "W-2", "W-4"] and all(p["access_code"] for p in stored.values())


@sqlite_only
def test_a_writer_process_that_dies_mid_job_costs_an_attempt_and_the_job_resumes_after_its_checkpoint(bulk, monkeypatch):
    bulk.settings = bulk.settings.model_copy(update={"batch_size": 2})
    job_uuid = bulk.upload(csv_of(*(f"D-{i},N{i},,,," for i in range(1, 8))))
    real = WriterProcess.call
    calls, killed = [], []

    def die_before_the_second_batch(self, request):
        calls.append(self.pid)
        if len(calls) == 2:
            killed.append(self.pid)
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait()
        return real(self, request)

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


def _send(bulk, plan, study, site) -> tuple:
    with bulk.db.read_sessions() as session:
        steps = writer.planned_steps(session, plan, study, site)
    with writer_process.leased() as process:
        return process.call(process.encode(bulk.db.sqlite_file, steps))


@sqlite_only
def test_a_plan_the_writer_process_runs_is_written_as_decided_while_nothing_changed(bulk):
    bulk.run(csv_of("R-1,Ann,Old,,,"))
    with bulk.db.read_sessions() as reads:
        plan, study, site = _plan(bulk, reads, [writer.Record("R-1", {"firstName": "Anna"}), writer.Record("R-2", {})])
    assert _send(bulk, plan, study, site) == (WRITTEN, [])
    stored = bulk.participants()
    assert stored["R-1"]["first_name"] == "Anna" and stored["R-2"]["oid"] == plan.states[1].oid


@sqlite_only
@pytest.mark.parametrize("meanwhile", ["participant changed", "study locked", "site cap changed", "id taken by another study"])
def test_a_plan_whose_study_changed_meanwhile_comes_back_stale_and_writes_nothing(bulk, meanwhile):
    bulk.run(csv_of("R-1,Ann,Old,,,"))
    with bulk.db.read_sessions() as reads:
        plan, study, site = _plan(bulk, reads, [writer.Record("R-1", {"firstName": "Anna"}), writer.Record("R-2", {})])
    if meanwhile == "participant changed":
        with bulk.db.transaction() as session:
            writer.apply_batch(session, study, site, [writer.Record("R-1", {"lastName": "New"})], register=False, username="dm", source="api")
    elif meanwhile == "study locked":
        bulk.set_study(status="locked")
    elif meanwhile == "site cap changed":
        bulk.set_site(site.oid, enrollmentCap=50)
    else:
        other_study, other_site = _other_study(bulk)
        with bulk.db.transaction() as session:
            writer.apply_batch(session, other_study, other_site, [writer.Record("O-1", {})], register=False, username="dm", source="api")
    before = bulk.participants()
    outcome, _step = _send(bulk, plan, study, site)
    assert outcome == STALE
    assert bulk.participants() == before


@sqlite_only
def test_an_access_code_taken_meanwhile_comes_back_as_a_conflict(bulk):
    plan, study, site, _code = a_plan_whose_access_code_another_study_took(bulk)
    outcome, message = _send(bulk, plan, study, site)
    assert outcome == CONFLICT and "access_code" in message
    assert "N-1" not in bulk.participants()
