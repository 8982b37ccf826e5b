"""Issue 13: a job's warnings stay small whatever the header: a few names, each cut short, and how many
were left out; rows stored before the bound are bounded when read. Through the HTTP API."""

from __future__ import annotations

import json
from urllib.parse import quote

from sqlalchemy import update

from roster.bulk.job_warnings import MAX_NAME_CHARS, MAX_WARNING_CHARS, MAX_WARNINGS
from roster.bulk.models import Job
from roster.bulk.worker import drain
from tests.bulk.conftest import STUDY
from tests.support import P

COLUMNS = 1000
# A header line of about 1 MiB: a thousand unknown columns of about a thousand characters each.
WIDE = (
    "ParticipantID,firstName,"
    + ",".join(f"Col{i:04d}" + "x" * 1040 for i in range(COLUMNS))
    + "\nP-1,Ann"
    + "," * COLUMNS
    + "\n"
).encode()


def jobs_list(bulk) -> tuple[dict, int]:
    r = bulk.client.get(f"{P}/studies/{quote(STUDY, safe='')}/jobs", headers=bulk.users["dm"])
    assert r.status_code == 200, r.text
    return r.json(), len(r.content)


def test_a_one_mib_header_gives_one_short_warning_saying_how_many_were_left_out(bulk):
    assert len(WIDE) > 1_000_000
    uuids = [bulk.upload(WIDE) for _ in range(3)]
    drain(bulk.db, bulk.settings)
    job = bulk.job(uuids[0])
    assert job["status"] == "COMPLETED" and job["counts"]["created"] == 1 and not job["counts"]["failed"]
    (warning,) = job["warnings"]
    assert warning.startswith("Unknown columns ignored: Col0000" + "x" * (MAX_NAME_CHARS - 7) + "…, Col0001")
    assert warning.endswith(f"…, Col0009{'x' * (MAX_NAME_CHARS - 7)}… and {COLUMNS - 10} more")
    assert len(warning) < MAX_WARNING_CHARS
    body, size = jobs_list(bulk)
    assert [j["uuid"] for j in body["items"]] == uuids[::-1]
    assert all(j["warnings"] == [warning] for j in body["items"])
    assert size < 12_000  # three jobs; unbounded, this answer was over 3 MB


def test_thousands_of_short_unknown_columns_are_counted_not_listed(bulk):
    header = "ParticipantID," + ",".join(f"c{i}" for i in range(1020))
    uuid = bulk.upload(f"{header}\nP-1{',' * 1020}\n".encode())
    assert bulk.job(uuid)["warnings"] == [
        "Unknown columns ignored: " + ", ".join(f"c{i}" for i in range(10)) + " and 1,010 more"
    ]


def test_warnings_stored_before_the_bound_are_bounded_when_read(bulk):
    uuid = bulk.upload(b"ParticipantID,Notes\nP-1,x\n")
    stored = [f"Unknown column ignored: {i}" + "y" * (1 << 20) for i in range(50)]
    stored[1] = "Unknown column ignored: Notes\nP-9,Jane Doe,jane@example.org"  # a quoted cell that ran on
    with bulk.db.transaction() as s:  # an old row, written before warnings were bounded
        s.execute(update(Job).where(Job.uuid == uuid).values(warnings=stored))
    warnings = bulk.job(uuid)["warnings"]
    assert len(warnings) == MAX_WARNINGS
    assert warnings[1] == "Unknown column ignored: Notes…"
    assert warnings[:1] + warnings[2:-1] == [
        w[:MAX_WARNING_CHARS] + "…" for w in stored[: MAX_WARNINGS - 1] if "Jane" not in w
    ]
    assert warnings[-1] == f"and {50 - MAX_WARNINGS + 1} more warnings"
    body, size = jobs_list(bulk)
    assert body["items"][0]["warnings"] == warnings
    assert size < len(json.dumps(warnings)) + 2_000
