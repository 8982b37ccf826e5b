"""SPEC §13 logs: one format for every line, request IDs in every line of a request, job start/end lines,
nothing personal (§10)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from urllib.parse import quote

import httpx
import pytest

from roster.config import Settings
from roster.logs import logging_config, text_formatter, well_formed_request_id
from tests.bulk.conftest import STUDY, bulk_url, csv_of
from tests.foundation.test_cli import _command, free_port
from tests.support import P, wait_until_listening

PERSONAL = ("Lovelace", "ada@example.org", "2079460000")
CSV = csv_of("PX-1,Ada,Lovelace,ada@example.org,+44 2079460000,", "PX-2,Bob,Builder,not-an-email,,")


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_clients_request_id_is_answered_and_names_every_line_of_that_request(client, api, json_log):
    api.user("ada.lovelace")
    json_log.seek(0)
    json_log.truncate()
    r = client.get(f"{P}/admin/users/ada.lovelace/roles", headers={**api.admin, "X-Request-ID": "req-42.a:b"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-42.a:b"
    records = lines(json_log)
    access = [x for x in records if x["logger"] == "roster.access"]
    assert len(access) == 1 and access[0]["request_id"] == "req-42.a:b"
    assert access[0]["message"].startswith(f"GET {P}/admin/users/{{username}}/roles 200")
    assert all(x.get("request_id") == "req-42.a:b" for x in records if x["logger"].startswith("roster"))


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 129, "<script>", "ada@example.org"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_generated_one(client, json_log, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}
    r = client.get("/healthz", headers=headers)
    generated = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated) and generated != sent
    access = [x for x in lines(json_log) if x["logger"] == "roster.access"]
    assert [x["request_id"] for x in access] == [generated]
    assert "ada@" not in json_log.getvalue()


def test_well_formed_request_ids():
    assert well_formed_request_id("3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert well_formed_request_id("a" * 128) and not well_formed_request_id("a" * 129)
    assert (
        not well_formed_request_id("a b")
        and not well_formed_request_id("-leading")
        and not well_formed_request_id("a\nb")
    )


def test_a_500_carries_its_request_id_in_the_answer_and_the_log(app, client, json_log):
    def fail() -> None:
        raise ValueError("row 7: Ada Lovelace")

    app.add_api_route("/test-only/fail", fail)
    r = client.get("/test-only/fail", headers={"X-Request-ID": "boom-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "boom-1"
    [line] = [x for x in lines(json_log) if x["logger"] == "roster.access"]
    assert line["level"] == "ERROR" and line["request_id"] == "boom-1" and "Lovelace" not in json_log.getvalue()


def test_a_worker_logs_each_jobs_start_and_end_with_counts_seconds_and_rate(bulk, json_log):
    job, _log = bulk.run(CSV)
    records = [x for x in lines(json_log) if x["logger"] == "roster.worker"]
    start = [x for x in records if x["message"].startswith(f"job {job['uuid']} started")]
    end = [x for x in records if x["message"].startswith(f"job {job['uuid']} ended")]
    assert len(start) == 1 and len(end) == 1
    assert start[0]["job"] == {"uuid": job["uuid"], "type": "BULK_ADD_PARTICIPANTS", "attempt": 1, "from_row": 1}
    fields = end[0]["job"]
    assert fields["status"] == "COMPLETED" and fields["type"] == "BULK_ADD_PARTICIPANTS"
    assert (fields["rows"], fields["processed"], fields["created"], fields["failed"]) == (2, 2, 1, 1)
    # `seconds` is logged rounded to the millisecond: the rate was computed from the unrounded time.
    seconds = fields["seconds"]
    assert (
        seconds > 0
        and 2 / (seconds + 0.0005) * 0.99 <= fields["rows_per_second"] <= 2 / max(seconds - 0.0005, 1e-6) * 1.01
    )
    assert "rows/s" in end[0]["message"] and "request_id" not in end[0]
    assert not any(p in json_log.getvalue() for p in PERSONAL)


def test_the_text_format_names_the_request_or_a_dash():
    record = logging.LogRecord("roster.access", logging.INFO, __file__, 1, "GET %s", ("/healthz",), None)
    assert text_formatter().format(record).endswith(" INFO roster.access [-]: GET /healthz")
    record.request_id = "r-1"
    assert text_formatter().format(record).endswith(" INFO roster.access [r-1]: GET /healthz")


def test_uvicorn_and_roster_share_one_handler(settings: Settings):
    config = logging_config(settings.model_copy(update={"log_format": "json"}))
    assert config["root"]["handlers"] == ["stderr"]
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name]["handlers"] == [] and config["loggers"][name]["propagate"] is True


def test_every_line_of_a_json_run_of_roster_serve_parses(bulk, settings, tmp_path):
    """A real `roster serve` (uvicorn's lines, start-up, requests, an embedded worker's job, shutdown)."""
    port = free_port()
    env = {
        "ROSTER_DATABASE_URL": settings.database_url,
        "ROSTER_JWT_SECRET": settings.jwt_secret,
        "ROSTER_DATA_DIR": str(tmp_path / "data"),
        "ROSTER_EMBEDDED_WORKERS": "1",
        "ROSTER_LOG_FORMAT": "json",
        "ROSTER_WORKER_POLL_SECONDS": "0.2",
    }
    process = subprocess.Popen(
        **_command(["serve", "--port", str(port)], env, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_listening(process, base)
        dm = bulk.users["dm"]
        r = httpx.post(
            base + bulk_url(),
            files={"file": ("p.csv", CSV, "text/csv")},
            headers={**dm, "X-Request-ID": "upload-1"},
            timeout=30,
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "upload-1", r.text
        job = r.text.removeprefix("job uuid: ")
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}{P}/jobs/{job}", headers=dm, timeout=10).json()["status"] != "COMPLETED":
            assert time.monotonic() < deadline, "the embedded worker did not finish the job"
            time.sleep(0.2)
        r = httpx.get(
            f"{base}{P}/clinicaldata/studies/{quote(STUDY, safe='')}/participants/PX-1?q=Lovelace",
            headers={**dm, "X-Request-ID": "read-2"},
            timeout=10,
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "read-2"
    finally:
        process.terminate()
        try:
            _out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _out, err = process.communicate()
    records = [json.loads(line) for line in err.splitlines()]  # every line parses
    assert records and all({"time", "level", "logger", "message"} <= set(x) for x in records)
    loggers = {x["logger"] for x in records}
    assert "uvicorn.error" in loggers and "roster.access" in loggers and "roster.worker" in loggers
    assert [x["message"].split()[:2] for x in records if x.get("request_id") == "upload-1"] == [
        ["POST", "/pages/auth/api/clinicaldata/studies/{studyOID}/sites/{siteOID}/participants/bulk"]
    ]
    assert [x["message"].split()[:3] for x in records if x.get("request_id") == "read-2"] == [
        ["GET", f"{P}/clinicaldata/studies/{{studyOID}}/participants/{{participantID}}", "200"]
    ]
    assert any(x["message"].startswith(f"job {job} ended COMPLETED") for x in records)
    assert not any(p in err for p in PERSONAL) and "PX-1" not in err
