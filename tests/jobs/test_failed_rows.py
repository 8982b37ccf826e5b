"""GET P/jobs/{uuid}/failedRows: the failed rows with the upload's own header, ready to fix and upload again."""

from __future__ import annotations

import csv
import io

from roster import codes
from roster.bulk.models import COMPLETED
from tests.jobs.conftest import log_entries

ERR = [{"code": codes.INVALID_EMAIL, "column": "E-Mail", "message": "m"}]


def failed(row: int, cells: list[str], pid: str | None = None) -> dict:
    return {
        "row": row,
        "outcome": "failed",
        "participant_id": pid,
        "participant_oid": None,
        "errors": ERR,
        "cells": cells,
    }


def test_failed_rows_keep_the_uploads_header_delimiter_and_unknown_columns(world):
    upload = "\ufeff participantid ;Notes;EmailAddress\r\nP-1;ok;a@b.org\r\nP-2;has, comma;bad\r\nP-3;x;y\r\n".encode()
    entries = [
        {"row": 1},
        failed(2, ["P-2", "has, comma", "bad"]),
        failed(3, ["P-3", "x", "y"]),
    ]
    job = world.add_job("crc_a", status=COMPLETED, source_file_name="Site A.CSV", upload=upload, entries=entries)
    r = world.get(f"/jobs/{job}/failedRows", "crc_a")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="Site A-failed-rows.csv"'
    assert r.content == b"participantid;Notes;EmailAddress\r\nP-2;has, comma;bad\r\nP-3;x;y\r\n"


def test_failed_rows_keep_cells_as_parsed_and_escape_formulas(world):
    upload = b'ParticipantID,firstName,mobileNumber\r\n=cmd(),"Ann ""A""",+1 617\r\n'
    job = world.add_job("crc_a", upload=upload, entries=[failed(1, ["=cmd()", ' Ann "A"', "+1 617"])])
    rows = list(csv.reader(io.StringIO(world.get(f"/jobs/{job}/failedRows", "crc_a").text, newline="")))
    assert rows == [["ParticipantID", "firstName", "mobileNumber"], ["'=cmd()", ' Ann "A"', "'+1 617"]]


def test_a_malformed_row_comes_back_as_it_was_to_be_fixed(world):
    upload = b"ParticipantID,firstName\r\nP-1,Ann,extra\r\n"
    job = world.add_job("crc_a", upload=upload, entries=[failed(1, ["P-1", "Ann", "extra"])])
    assert world.get(f"/jobs/{job}/failedRows", "crc_a").content == b"ParticipantID,firstName\r\nP-1,Ann,extra\r\n"


def test_a_failed_row_logged_without_cells_still_names_its_participant_id(world):
    upload = b"firstName,ParticipantID\r\nAnn,P-1\r\n"
    job = world.add_job("crc_a", upload=upload, entries=[failed(1, None, pid="P-1")])
    assert world.get(f"/jobs/{job}/failedRows", "crc_a").content == b"firstName,ParticipantID\r\n,P-1\r\n"


def test_no_failed_rows_is_just_the_header_and_open_true_is_inline(world):
    job = world.add_job("crc_a", entries=log_entries(3))
    r = world.get(f"/jobs/{job}/failedRows", "crc_a", open="true")
    assert r.content == b"ParticipantID,firstName\r\n"
    assert r.headers["content-disposition"] == 'inline; filename="participants-failed-rows.csv"'


def test_failed_rows_stream_across_query_batches_and_upload_chunks(world, monkeypatch):
    from roster.bulk import jobs_service

    monkeypatch.setattr(jobs_service, "STREAM_BATCH", 4)
    upload = b"ParticipantID,Note\r\n" + b"".join(b"P-%d,n%d\r\n" % (i, i) for i in range(1, 41))
    entries = [failed(i, [f"P-{i}", f"n{i}"]) if i % 3 == 0 else {"row": i} for i in range(1, 41)]
    job = world.add_job("crc_a", upload=upload, entries=entries, chunk_size=5)
    text = world.get(f"/jobs/{job}/failedRows", "crc_a").text
    assert text.splitlines() == ["ParticipantID,Note"] + [f"P-{i},n{i}" for i in range(3, 41, 3)]


def test_a_job_whose_stored_upload_is_gone_answers_with_a_code_not_a_crash(world):
    job = world.add_job("crc_a", upload=b"", entries=[failed(1, ["P-1"])])
    r = world.get(f"/jobs/{job}/failedRows", "crc_a")
    assert (r.status_code, r.json()["message"]) == (409, codes.JOB_UPLOAD_UNREADABLE)
