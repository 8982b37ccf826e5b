"""Excel workbooks through the bulk endpoint (SPEC §4 check 11, §11.4): cell values, row and line numbers,
the §5 rules, failedRows, and the refusals (other formats, macros, zip bombs). Workbooks are built with
openpyxl (a test dependency) or by hand with zipfile."""

from __future__ import annotations

import csv
import datetime
import io
import os
import zipfile

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from roster import codes
from roster.app import create_app
from roster.bulk.worker import drain
from tests.bulk.conftest import HEADER, bulk_url, error_codes, outcomes
from tests.support import P

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(rows: dict[int, list], *, text: set[tuple[int, int]] = frozenset()) -> bytes:
    """A workbook whose first sheet has `rows` at the given worksheet row numbers; cells in `text`
    ((row, column), 1-based) are kept as text even when they start with `=`."""
    wb = Workbook()
    ws = wb.active
    for r, values in rows.items():
        for c, value in enumerate(values, start=1):
            if value is not None:
                cell = ws.cell(row=r, column=c, value=value)
                if (r, c) in text:
                    cell.data_type = "s"
    wb.create_sheet("Second")["A1"] = "not read"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def post(bulk, data: bytes, name: str = "Participants.xlsx", **kwargs):
    return bulk.client.post(bulk_url(), files={"file": (name, data, XLSX)}, headers=bulk.users["dm"], **kwargs)


def run(bulk, data: bytes, name: str = "Participants.xlsx"):
    r = post(bulk, data, name)
    assert r.status_code == 200, r.text
    job = r.text.removeprefix("job uuid: ")
    drain(bulk.db, bulk.settings)
    return job, bulk.job(job), bulk.log(job)


def refused(bulk, response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.json()["message"] == code
    assert bulk.stored() == (0, 0, 0)
    return response.json()


def test_cell_values_whole_numbers_dates_and_text_and_worksheet_line_numbers(bulk):
    cols = HEADER.split(",") + ["Notes"]
    data = workbook(
        {
            3: cols,  # rows 1–2 empty: the first non-empty row is the header
            4: [12345, "Ann", "Lee", "ann@example.org", "+1 6175551234", 7.0, True],
            5: [None, None, None],  # an empty row: skipped, no row number
            6: ["  P-2  ", "Bob", None, None, None, datetime.date(2024, 1, 2)],
            7: ["P-3", "Cy", "Day", None, None, datetime.datetime(2024, 1, 2, 3, 4, 5)],
            9: ["P-4", 2.5, None, None, None, "=1+1"],  # a formula with no cached value reads as empty
        }
    )
    job_uuid, job, log = run(bulk, data)
    assert job["status"] == "COMPLETED" and job["counts"]["created"] == 4 and job["counts"]["rows"] == 4
    assert job["warnings"] == ["Unknown column ignored: Notes"]
    assert [(e["row"], e["line"], e["participantId"]) for e in log] == [
        (1, 4, "12345"),
        (2, 6, "P-2"),
        (3, 7, "P-3"),
        (4, 9, "P-4"),
    ]
    stored = bulk.participants()
    assert (stored["12345"]["first_name"], stored["12345"]["identifier"], stored["12345"]["mobile_number"]) == (
        "Ann",
        "7",
        "+1 6175551234",
    )
    assert stored["P-2"]["identifier"] == "2024-01-02"
    assert stored["P-3"]["identifier"] == "2024-01-02 03:04:05"
    assert stored["P-4"]["first_name"] == "2.5" and stored["P-4"]["identifier"] is None


def test_the_same_rows_twice_are_unchanged_the_second_time(bulk):
    data = workbook({1: ["ParticipantID", "firstName"], 2: ["P-1", "Ann"], 3: [42, "Bob"]})
    assert outcomes(run(bulk, data)[2]) == ["created", "created"]
    assert outcomes(run(bulk, data)[2]) == ["unchanged", "unchanged"]


def test_a_workbook_with_errors_logs_them_and_failed_rows_answers_a_csv_of_the_sheet(bulk):
    data = workbook(
        {
            2: ["ParticipantID", "firstName", "emailAddress", "mobileNumber", "Notes"],
            3: ["P-1", "Ann", "ann@example.org", "+1 6175551234", "ok"],
            4: ["P-2", "=cmd()", "not-an-address", None, "x"],
            5: ["P-3", "Cy", None, "+1-617", None, "stray"],  # a cell right of the header: malformed
            6: ["P-1", "Dup", None, None, None],
        },
        text={(4, 2)},
    )
    job_uuid, job, log = run(bulk, data, name="Site A.XLSX")
    assert job["counts"] == {**job["counts"], "created": 1, "failed": 3}
    assert [(e["line"], error_codes(e)) for e in log[1:]] == [
        (4, [codes.INVALID_EMAIL]),
        (5, [codes.MALFORMED_ROW]),
        (6, [codes.PARTICIPANT_ID_DUPLICATED_IN_FILE]),
    ]
    r = bulk.client.get(f"{P}/jobs/{job_uuid}/failedRows", headers=bulk.users["dm"])
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="Site A-failed-rows.csv"'
    rows = list(csv.reader(io.StringIO(r.text, newline="")))
    assert rows == [
        ["ParticipantID", "firstName", "emailAddress", "mobileNumber", "Notes"],
        ["P-2", "'=cmd()", "not-an-address", "", "x"],
        ["P-3", "Cy", "", "'+1-617", "", "stray"],
        ["P-1", "Dup", "", "", ""],
    ]


@pytest.mark.parametrize(
    "rows,code",
    [
        ({1: ["firstName"], 2: ["Ann"]}, codes.MISSING_PARTICIPANT_ID_COLUMN),
        ({1: ["ParticipantID", "participantid"], 2: ["P-1", "P-2"]}, codes.MISSING_PARTICIPANT_ID_COLUMN),
        ({1: ["ParticipantID", "firstName", "FirstName"], 2: ["P-1", "a", "b"]}, codes.DUPLICATE_COLUMN),
        ({3: ["ParticipantID", "firstName"], 5: [None, None]}, codes.BLANK_FILE),
        ({}, codes.BLANK_FILE),
    ],
)
def test_the_header_checks_apply_to_a_workbook_at_upload(bulk, rows, code):
    refused(bulk, post(bulk, workbook(rows)), 400, code)


def ole2() -> bytes:
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(2000)


def renamed(
    data: bytes, *, content_type: str | None = None, extra: dict[str, bytes] | None = None, drop: str | None = None
) -> bytes:
    """`data` (a workbook) with its main content type replaced, members added or one dropped."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename == drop:
                continue
            body = src.read(info)
            if content_type and info.filename == "[Content_Types].xml":
                body = body.replace(
                    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", content_type.encode()
                )
            dst.writestr(info.filename, body)
        for name, body in (extra or {}).items():
            dst.writestr(name, body)
    return out.getvalue()


GOOD = workbook({1: ["ParticipantID"], 2: ["P-1"]})


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("p.xls", ole2(), "name"),
        ("p.xlsx", ole2(), "content"),  # a legacy workbook renamed
        ("p.xlsm", GOOD, "name"),
        ("p.xlsx", renamed(GOOD, content_type="application/vnd.ms-excel.sheet.macroEnabled.main+xml"), "macros"),
        ("p.xlsx", renamed(GOOD, extra={"xl/vbaProject.bin": b"\x00" * 64}), "macros"),
        ("p.ods", GOOD, "name"),
        ("p.xlsx", renamed(GOOD, drop="[Content_Types].xml"), "content"),  # e.g. an .ods or a plain .zip renamed
        ("p.xlsx", renamed(GOOD, drop="xl/worksheets/sheet1.xml"), "content"),
        ("p.xlsx", b"ParticipantID\nP-1\n", "content"),  # a CSV named .xlsx
        ("p.xlsx", b"PK\x03\x04" + os.urandom(500), "content"),  # not a readable zip
        ("p.csv", GOOD, "content"),  # a workbook named .csv
    ],
)
def test_other_formats_macros_and_non_workbooks_are_not_supported(bulk, name, data, reason):
    body = refused(bulk, post(bulk, data, name), 400, codes.NOT_SUPPORTED_FILE_FORMAT)
    assert body["params"]["reason"] == reason


def bomb(member_bytes: int) -> bytes:
    """A valid-looking workbook with a worksheet of `member_bytes` zeros (deflate: ~1000:1), its compressed
    data then overwritten: expanding it would fail, so a fileTooLarge answer shows nothing was expanded."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(GOOD)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        with dst.open("xl/worksheets/sheet3.xml", "w") as member:
            zeros = bytes(1 << 20)
            for _ in range(member_bytes >> 20):
                member.write(zeros)
    data = bytearray(out.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("xl/worksheets/sheet3.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start : start + info.compress_size] = os.urandom(info.compress_size)
    return bytes(data)


def test_a_zip_bomb_is_refused_from_its_central_directory(bulk):
    data = bomb(64 << 20)
    assert len(data) < 200_000
    body = refused(bulk, post(bulk, data), 413, codes.FILE_TOO_LARGE)
    assert body["params"]["reason"] == "compressionRatio"


def test_a_workbook_expanding_past_ten_times_the_limit_is_refused(bulk, settings, db):
    # Each part compresses less than 100:1 (repetitive XML, ~15:1), but together they expand past 10 × the limit.
    data = workbook({1: ["ParticipantID", "firstName"], **{r: ["P", "Ann"] for r in range(2, 5000)}})
    members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    limit = len(data) + 1000
    assert sum(m.file_size for m in members) > 10 * limit and all(m.file_size <= 100 * m.compress_size for m in members)
    with TestClient(create_app(settings.model_copy(update={"max_upload_bytes": limit}), db=db)) as client:
        r = client.post(bulk_url(), files={"file": ("p.xlsx", data, XLSX)}, headers=bulk.users["dm"])
    assert refused(bulk, r, 413, codes.FILE_TOO_LARGE)["params"]["reason"] == "uncompressedSize"
