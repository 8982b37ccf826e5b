"""No request makes the participant API answer 500: odd IDs, terms and bodies get a clear code."""

from __future__ import annotations

from urllib.parse import quote

from tests.participants.conftest import SITE_A, STUDY_PATH, World

ODD_TEXT = ["\x00", "a\x00b", "\u2028", "\U0001f600" * 40, "%", "_", "\\", "' OR 1=1 --", "x" * 5000, " "]
ODD_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b'{"subjectKey": "P\\ud800"}',
    b"\xff\xfe",
    b'{"pmis": [null]}',
    b'{"pmis": {"mrn": "1"}}',
    b'{"race": [1]}',
    b'{"birthDate": 1e400}',
    b'{"birthDate": 99999999999999999999}',
    b'{"birthDate": -62135596800001}',
    b'{"birthDate": true}',
    b'{"deathDate": "9999-12-31T23:59:59+14:00"}',
    b'{"birthDate": "0001-01-01"}',
    b'{"birthDate": "9999-12-31T23:59:59-14:00"}',
    b'{"id": {}}',
]


def test_odd_ids_and_search_terms_are_answered(world: World):
    world.created("P-1")
    h = world.h("dm")
    for text in ODD_TEXT:
        assert world.client.get(world.path(text), headers=h).status_code in (404, 422), text
        for params in ({"q": text}, {"siteOID": text}):
            assert world.client.get(f"{STUDY_PATH}/participants", headers=h, params=params).status_code in (
                200,
                404,
                422,
            ), text
        r = world.client.post(
            f"{STUDY_PATH}/sites/{quote(SITE_A)}/participants", json={"subjectKey": text, "firstName": text}, headers=h
        )
        assert r.status_code in (200, 400), text
        assert world.patch(
            "P-1", {"middleName": text, "uid": text, "pmis": [{"mrn": text, "siteName": text}]}
        ).status_code in (200, 400), text
        assert world.patch(
            "P-1", {"empi": text, "pmis": [{"mrn": text, "siteName": f"Site {SITE_A}"}]}
        ).status_code in (200, 400), text
        assert world.client.get(f"/rest/ng/participants/{quote(text, safe='')}", headers=h).status_code in (404, 422), (
            text
        )


def test_odd_bodies_are_answered(world: World):
    world.created("P-1")
    headers = {**world.h("dm"), "Content-Type": "application/json"}
    pk = world.pk("P-1")
    for raw in ODD_BODIES:
        for method, url in (
            ("post", f"{STUDY_PATH}/sites/{quote(SITE_A)}/participants"),
            ("put", world.path("P-1")),
            ("patch", world.path("P-1")),
            ("put", f"/rest/ng/participants/{pk}"),
        ):
            r = world.client.request(method, url, content=raw, headers=headers)
            assert r.status_code in (200, 400, 422), (raw, method, url, r.status_code, r.text)
