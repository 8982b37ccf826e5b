"""SPEC §13 metrics: `GET /metrics` in Prometheus' text format, route templates only, nothing personal."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from roster.app import create_app
from roster.bulk.models import CANCELLED, COMPLETED, FAILED, IN_PROGRESS
from roster.bulk.worker import drain
from tests.bulk.conftest import csv_of
from tests.ops.conftest import settings_with
from tests.support import P, wait_until_listening

NAME_AND_ID = "Ada-Lovelace-PX9"


def scrape(client) -> dict[str, list]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family.samples for family in text_string_to_metric_families(r.text)}


def value(samples, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_http_metrics_carry_route_templates_never_paths_or_query_strings(client, api):
    api.setup_study("S_M(TEST)", ("S_MA(TEST)",))
    dm = api.user("dm", "data_manager", "S_M(TEST)")
    path = f"{P}/clinicaldata/studies/{quote('S_M(TEST)', safe='')}/participants/{NAME_AND_ID}"
    before = scrape(client)
    for _ in range(3):
        assert client.get(path, params={"q": "Lovelace"}, headers=dm).status_code == 404
    client.get(f"/no-such/{NAME_AND_ID}")
    client.request("BREW", "/healthz")
    after = scrape(client)
    text = client.get("/metrics").text
    assert NAME_AND_ID not in text and "Lovelace" not in text and "S_M(TEST)" not in text and "BREW" not in text
    requests = after["roster_http_requests"]
    template = next(s.labels["route"] for s in requests if s.labels["route"].endswith("/participants/{participantID}"))
    assert template == f"{P}/clinicaldata/studies/{{studyOID}}/participants/{{participantID}}"
    delta = value(requests, "roster_http_requests_total", method="GET", route=template, status="404") - value(
        before.get("roster_http_requests", []), "roster_http_requests_total", method="GET", route=template, status="404"
    )
    assert delta == 3
    assert value(requests, "roster_http_requests_total", route="<unmatched>", status="404") >= 1
    assert value(requests, "roster_http_requests_total", method="OTHER") >= 1
    durations = after["roster_http_request_duration_seconds"]
    assert value(durations, "roster_http_request_duration_seconds_count", method="GET", route=template) >= 3
    assert all("status" not in s.labels for s in durations)


def test_jobs_by_status_are_read_from_the_database_when_scraped(client, world):
    for status in (COMPLETED, COMPLETED, FAILED, CANCELLED, IN_PROGRESS):
        world.add_job("crc_a", status=status)
    jobs = {s.labels["status"]: s.value for s in scrape(client)["roster_jobs"]}
    assert jobs == {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2, "FAILED": 1, "CANCELLED": 1}
    world.add_job("crc_a")
    assert {s.labels["status"]: s.value for s in scrape(client)["roster_jobs"]}["IN_QUEUE"] == 1


def test_bulk_rows_and_job_durations_are_counted_by_the_worker(client, bulk):
    before = scrape(client)
    bulk.run(csv_of("PM-1,Ann,Lee,,,", "PM-2,Bob,Ray,bad-email,,", "PM-3,Cy,Dee,,,"))
    bulk.run(csv_of("PM-1,Ann,Lee,,,", "PM-3,Cy,Day,,,"))
    after = scrape(client)

    def rows(samples, outcome):
        return value(samples, "roster_bulk_rows_total", outcome=outcome)

    delta = {
        o: rows(after["roster_bulk_rows"], o) - rows(before.get("roster_bulk_rows", []), o)
        for o in ("created", "updated", "unchanged", "failed")
    }
    assert delta == {"created": 2, "updated": 1, "unchanged": 1, "failed": 1}
    count = "roster_job_duration_seconds_count"
    finished = value(after["roster_job_duration_seconds"], count, type="BULK_ADD_PARTICIPANTS") - value(
        before.get("roster_job_duration_seconds", []), count, type="BULK_ADD_PARTICIPANTS"
    )
    assert finished == 2


def test_a_revert_counts_its_deleted_rows(client, bulk):
    job, _ = bulk.run(csv_of("PR-1,Ann,Lee,,,", "PR-2,Bob,Ray,,,"))
    before = scrape(client)
    r = bulk.client.post(f"{P}/jobs/{job['uuid']}/revert", headers=bulk.users["dm"])
    assert r.status_code == 201, r.text
    drain(bulk.db, bulk.settings)
    after = scrape(client)
    deleted = value(after["roster_bulk_rows"], "roster_bulk_rows_total", outcome="deleted") - value(
        before.get("roster_bulk_rows", []), "roster_bulk_rows_total", outcome="deleted"
    )
    assert deleted == 2
    count = "roster_job_duration_seconds_count"
    reverts = value(after["roster_job_duration_seconds"], count, type="REVERT_BULK_ADD_PARTICIPANTS") - value(
        before.get("roster_job_duration_seconds", []), count, type="REVERT_BULK_ADD_PARTICIPANTS"
    )
    assert reverts == 1


def test_metrics_can_be_turned_off(settings, db):
    with TestClient(create_app(settings_with(settings, metrics=False), db=db)) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/healthz").status_code == 200


def test_metrics_are_not_in_the_openapi_document(client):
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_several_api_processes_report_their_sum(tmp_path):
    """`roster serve --workers 2`: prometheus-client's multiprocess mode, whichever process answers the scrape."""
    import subprocess

    import httpx

    from tests.foundation.test_cli import _command, free_port

    port = free_port()
    env = {"ROSTER_DATA_DIR": str(tmp_path / "data"), "ROSTER_EMBEDDED_WORKERS": "0"}
    process = subprocess.Popen(
        **_command(["serve", "--port", str(port), "--workers", "2"], env, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_listening(process, base, "/readyz")
        answered = sum(httpx.get(f"{base}/healthz", timeout=5).status_code == 200 for _ in range(20))
        families = {
            f.name: f.samples for f in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=5).text)
        }
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert answered == 20
    assert value(families["roster_http_requests"], "roster_http_requests_total", route="/healthz", status="200") == 20
    assert "roster_jobs" in families
