"""SPEC §14: safe headers on every answer, no-store on participant data, CORS only for configured origins,
a 1 MiB cap on JSON bodies; finding 6: unreadable JSON is 422, a broken multipart body says so."""

from __future__ import annotations

import pytest

from roster import codes
from tests.support import P

STUDY, SITE = "S_HTTP(TEST)", "S_HTTP_A(TEST)"
PARTICIPANTS = f"{P}/clinicaldata/studies/{STUDY}/sites/{SITE}/participants"


@pytest.fixture
def dm(api):
    api.setup_study(STUDY, sites=(SITE,))
    return api.user("dm", "data_manager", STUDY)


def test_every_answer_carries_nosniff_and_no_referrer(client, api, dm):
    answers = [
        client.get("/healthz"),
        client.get("/"),
        client.get("/nowhere"),
        client.get(f"{P}/me"),
        client.get(f"{P}/me", headers=dm),
        client.post("/user-service/api/oauth/token", json={"username": "x", "password": "y"}),
        client.get(PARTICIPANTS, headers=dm),
        client.delete("/healthz"),
    ]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.request.url
        assert r.headers["referrer-policy"] == "no-referrer", r.request.url


def test_answers_with_participant_data_are_not_stored(client, api, dm):
    created = client.post(f"{PARTICIPANTS}?register=n", json={"subjectKey": "P-1", "firstName": "Ann"}, headers=dm)
    assert created.status_code == 200, created.text
    for r in (
        created,
        client.get(PARTICIPANTS, headers=dm),
        client.get(f"{PARTICIPANTS}/P-1", headers=dm),
        client.get(f"{P}/clinicaldata/studies/{STUDY}/participants/P-1/audit", headers=dm),
        client.get(f"/rest/ng/participants/{created.json().get('id', 1)}", headers=dm),
        client.get(f"{P}/studies/{STUDY}/jobs", headers=dm),
    ):
        assert r.headers["cache-control"] == "no-store", r.request.url


def test_cors_is_off_unless_origins_are_configured(client, api, dm, make_client):
    origin = {"Origin": "https://portal.example.org"}
    r = client.get(f"{P}/me", headers=dm | origin)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    assert "access-control-allow-origin" not in client.options(f"{P}/me", headers=origin | preflight).headers

    allowed = make_client(cors_origins="https://portal.example.org, https://other.example.org")
    r = allowed.options(f"{P}/me", headers=origin | preflight)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://portal.example.org"
    assert "access-control-allow-credentials" not in r.headers
    r = allowed.get(f"{P}/me", headers=dm | origin)
    assert r.headers["access-control-allow-origin"] == "https://portal.example.org"
    assert r.headers["x-content-type-options"] == "nosniff"
    stranger = {"Origin": "https://evil.example.com"}
    assert "access-control-allow-origin" not in allowed.get(f"{P}/me", headers=dm | stranger).headers
    assert allowed.options(f"{P}/me", headers=stranger | preflight).status_code == 400


def test_a_json_body_over_1_mib_is_413_body_too_large(client, api, dm):
    big = b'{"subjectKey": "P-1", "firstName": "' + b"a" * (1024 * 1024) + b'"}'
    targets = [
        ("POST", f"{PARTICIPANTS}?register=n", dm),
        ("POST", f"{P}/admin/users", api.admin),
        ("POST", "/user-service/api/oauth/token", {}),
        ("PATCH", f"{PARTICIPANTS}/P-1", dm),
    ]
    for method, path, headers in targets:
        r = client.request(method, path, content=big, headers=headers | {"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["message"] == codes.BODY_TOO_LARGE, (path, r.text[:200])

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"username": "x", "password": "'
        for _ in range(20):
            yield b"a" * 65536
        yield b'"}'

    r = client.post("/user-service/api/oauth/token", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["message"] == codes.BODY_TOO_LARGE
    # Just under the cap is read as usual.
    r = client.post(
        f"{P}/admin/users",
        content=b'{"username": "' + b"a" * (1024 * 1000) + b'"}',
        headers=api.admin | {"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["message"] == codes.VALIDATION_FAILED


@pytest.mark.parametrize("body", [b"\xff\xfe{", b"[" * 100_000], ids=["not-utf8", "nested-too-deep"])
def test_an_unreadable_json_body_is_422_validation_failed_on_every_route(client, api, dm, body):
    """Finding 6: the admin routes answered 400."""
    for method, path, headers in [
        ("POST", f"{P}/admin/users", api.admin),
        ("PATCH", f"{P}/admin/users/dm", api.admin),
        ("POST", f"{P}/admin/studies", api.admin),
        ("POST", "/user-service/api/oauth/token", {}),
        ("POST", f"{PARTICIPANTS}?register=n", dm),
    ]:
        r = client.request(method, path, content=body, headers=headers | {"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["message"] == codes.VALIDATION_FAILED, (
            path,
            r.status_code,
            r.text[:200],
        )


def test_a_multipart_part_header_over_4_kib_says_the_body_is_malformed(client, api, dm):
    """Finding 6: it answered missingFile."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + b"a" * 5000 + b'.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\nParticipantID\r\nP-1\r\n--b--\r\n"
    )
    r = client.post(
        f"{PARTICIPANTS}/bulk", content=body, headers=dm | {"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert r.status_code == 400 and r.json()["message"] == codes.MALFORMED_MULTIPART, r.text
    assert "header" in r.json()["detail"].lower()
    assert client.get(f"{P}/studies/{STUDY}/jobs", headers=dm).json()["total"] == 0
