"""SPEC §3 / §10: bad setup bodies answer 422 with the offending field named; nothing answers 500."""

from __future__ import annotations

import pytest

from roster import codes
from tests.support import PASSWORD, P

STUDY = "S_STUDY(TEST)"
SITE = "S_SITE_A(TEST)"
STUDIES = f"{P}/admin/studies"
USERS = f"{P}/admin/users"
OK_STUDY = {"oid": "S_NEW(TEST)", "name": "New"}
OK_SITE = {"oid": "S_NEW_SITE(TEST)", "name": "New site"}
OK_USER = {"username": "newbie", "password": PASSWORD}
OK_ROLE = {"studyOid": STUDY, "role": "viewer"}


def without(body: dict, key: str) -> dict:
    return {k: v for k, v in body.items() if k != key}


# (what, method, path, body, the field named in the answer)
CASES = [
    # POST study
    ("study: missing oid", "POST", STUDIES, without(OK_STUDY, "oid"), "oid"),
    ("study: missing name", "POST", STUDIES, without(OK_STUDY, "name"), "name"),
    ("study: name not a string", "POST", STUDIES, OK_STUDY | {"name": 5}, "name"),
    ("study: empty name", "POST", STUDIES, OK_STUDY | {"name": ""}, "name"),
    ("study: name with NUL", "POST", STUDIES, OK_STUDY | {"name": "a\u0000b"}, "name"),
    ("study: unknown field", "POST", STUDIES, OK_STUDY | {"colour": "red"}, "colour"),
    ("study: bad status", "POST", STUDIES, OK_STUDY | {"status": "closed"}, "status"),
    ("study: bad method", "POST", STUDIES, OK_STUDY | {"participantIdMethod": "random"}, "participantIdMethod"),
    (
        "study: template without #",
        "POST",
        STUDIES,
        OK_STUDY | {"participantIdTemplate": "JUNO-"},
        "participantIdTemplate",
    ),
    (
        "study: template with two runs",
        "POST",
        STUDIES,
        OK_STUDY | {"participantIdTemplate": "J-##-##"},
        "participantIdTemplate",
    ),
    (
        "study: template with <",
        "POST",
        STUDIES,
        OK_STUDY | {"participantIdTemplate": "<b>###"},
        "participantIdTemplate",
    ),
    (
        "study: template too long",
        "POST",
        STUDIES,
        OK_STUDY | {"participantIdTemplate": "X" * 30 + "#"},
        "participantIdTemplate",
    ),
    (
        "study: system without template",
        "POST",
        STUDIES,
        OK_STUDY | {"participantIdMethod": "system"},
        "participantIdTemplate",
    ),
    (
        "study: system with null template",
        "POST",
        STUDIES,
        OK_STUDY | {"participantIdMethod": "system", "participantIdTemplate": None},
        "participantIdTemplate",
    ),
    ("study: negative cap", "POST", STUDIES, OK_STUDY | {"enrollmentCap": -1}, "enrollmentCap"),
    ("study: cap not a number", "POST", STUDIES, OK_STUDY | {"enrollmentCap": "ten"}, "enrollmentCap"),
    ("study: cap as a numeric string", "POST", STUDIES, OK_STUDY | {"enrollmentCap": "10"}, "enrollmentCap"),
    ("study: cap too big for the database", "POST", STUDIES, OK_STUDY | {"enrollmentCap": 10**12}, "enrollmentCap"),
    ("study: cap a fraction", "POST", STUDIES, OK_STUDY | {"enrollmentCap": 1.5}, "enrollmentCap"),
    (
        "study: participateActive a string",
        "POST",
        STUDIES,
        OK_STUDY | {"participateActive": "yes"},
        "participateActive",
    ),
    ("study: participateActive a number", "POST", STUDIES, OK_STUDY | {"participateActive": 1}, "participateActive"),
    ("study: oid with a space", "POST", STUDIES, OK_STUDY | {"oid": "S A"}, "oid"),
    ("study: oid with a slash", "POST", STUDIES, OK_STUDY | {"oid": "S/A"}, "oid"),
    ("study: oid with a percent", "POST", STUDIES, OK_STUDY | {"oid": "S%41"}, "oid"),
    ("study: oid with markup", "POST", STUDIES, OK_STUDY | {"oid": "S_<b>"}, "oid"),
    ("study: oid with a quote", "POST", STUDIES, OK_STUDY | {"oid": 'S_"1"'}, "oid"),
    ("study: oid with NUL", "POST", STUDIES, OK_STUDY | {"oid": "S\u0000A"}, "oid"),
    ("study: oid not ASCII", "POST", STUDIES, OK_STUDY | {"oid": "S_STRAßE"}, "oid"),
    ("study: oid too long", "POST", STUDIES, OK_STUDY | {"oid": "S" * 101}, "oid"),
    ("study: oid a number", "POST", STUDIES, OK_STUDY | {"oid": 12}, "oid"),
    ("study: body a list", "POST", STUDIES, [OK_STUDY], "body"),
    ("study: body a string", "POST", STUDIES, "S_NEW", "body"),
    ("study: body null", "POST", STUDIES, None, "body"),
    # PATCH study
    ("patch study: name null", "PATCH", f"{STUDIES}/{STUDY}", {"name": None}, "name"),
    ("patch study: status null", "PATCH", f"{STUDIES}/{STUDY}", {"status": None}, "status"),
    ("patch study: method null", "PATCH", f"{STUDIES}/{STUDY}", {"participantIdMethod": None}, "participantIdMethod"),
    (
        "patch study: participateActive null",
        "PATCH",
        f"{STUDIES}/{STUDY}",
        {"participateActive": None},
        "participateActive",
    ),
    (
        "patch study: system without template",
        "PATCH",
        f"{STUDIES}/{STUDY}",
        {"participantIdMethod": "system"},
        "participantIdTemplate",
    ),
    (
        "patch study: template without #",
        "PATCH",
        f"{STUDIES}/{STUDY}",
        {"participantIdTemplate": "X"},
        "participantIdTemplate",
    ),
    ("patch study: bad status", "PATCH", f"{STUDIES}/{STUDY}", {"status": "open"}, "status"),
    ("patch study: unknown field", "PATCH", f"{STUDIES}/{STUDY}", {"oid": "S_RENAMED"}, "oid"),
    # POST / PATCH site
    ("site: missing name", "POST", f"{STUDIES}/{STUDY}/sites", without(OK_SITE, "name"), "name"),
    ("site: missing oid", "POST", f"{STUDIES}/{STUDY}/sites", without(OK_SITE, "oid"), "oid"),
    ("site: oid with #", "POST", f"{STUDIES}/{STUDY}/sites", OK_SITE | {"oid": "S#1"}, "oid"),
    ("site: bad status", "POST", f"{STUDIES}/{STUDY}/sites", OK_SITE | {"status": "open"}, "status"),
    ("site: negative cap", "POST", f"{STUDIES}/{STUDY}/sites", OK_SITE | {"enrollmentCap": -5}, "enrollmentCap"),
    ("site: unknown field", "POST", f"{STUDIES}/{STUDY}/sites", OK_SITE | {"studyOid": STUDY}, "studyOid"),
    ("patch site: name null", "PATCH", f"{STUDIES}/{STUDY}/sites/{SITE}", {"name": None}, "name"),
    ("patch site: status null", "PATCH", f"{STUDIES}/{STUDY}/sites/{SITE}", {"status": None}, "status"),
    (
        "patch site: cap a string",
        "PATCH",
        f"{STUDIES}/{STUDY}/sites/{SITE}",
        {"enrollmentCap": "many"},
        "enrollmentCap",
    ),
    # POST / PATCH user
    ("user: missing password", "POST", USERS, without(OK_USER, "password"), "password"),
    ("user: missing username", "POST", USERS, without(OK_USER, "username"), "username"),
    ("user: username with a space", "POST", USERS, OK_USER | {"username": "new bie"}, "username"),
    ("user: username too long", "POST", USERS, OK_USER | {"username": "u" * 101}, "username"),
    ("user: admin a string", "POST", USERS, OK_USER | {"admin": "yes"}, "admin"),
    ("user: bad email", "POST", USERS, OK_USER | {"email": "not-an-email"}, "email"),
    (
        "user: displayName with a control character",
        "POST",
        USERS,
        OK_USER | {"displayName": "Bob\u0007"},
        "displayName",
    ),
    ("user: unknown field", "POST", USERS, OK_USER | {"role": "admin"}, "role"),
    ("patch user: enabled null", "PATCH", f"{USERS}/dana", {"enabled": None}, "enabled"),
    ("patch user: admin null", "PATCH", f"{USERS}/dana", {"admin": None}, "admin"),
    ("patch user: password null", "PATCH", f"{USERS}/dana", {"password": None}, "password"),
    ("patch user: enabled a string", "PATCH", f"{USERS}/dana", {"enabled": "false"}, "enabled"),
    ("patch user: username", "PATCH", f"{USERS}/dana", {"username": "other"}, "username"),
    # POST role
    ("role: missing role", "POST", f"{USERS}/dana/roles", without(OK_ROLE, "role"), "role"),
    ("role: unknown role", "POST", f"{USERS}/dana/roles", OK_ROLE | {"role": "superuser"}, "role"),
    ("role: role in capitals", "POST", f"{USERS}/dana/roles", OK_ROLE | {"role": "VIEWER"}, "role"),
    ("role: missing studyOid", "POST", f"{USERS}/dana/roles", without(OK_ROLE, "studyOid"), "studyOid"),
    ("role: studyOid a list", "POST", f"{USERS}/dana/roles", OK_ROLE | {"studyOid": [STUDY]}, "studyOid"),
    ("role: unknown field", "POST", f"{USERS}/dana/roles", OK_ROLE | {"userId": 1}, "userId"),
]


@pytest.fixture
def world(api):
    api.setup_study(STUDY, sites=(SITE,))
    api.user("dana")
    return api


def test_a_bad_body_is_422_naming_the_field(client, world):
    """Table-driven over CASES in one test (one database set-up); every mismatch is reported together."""
    wrong = []
    for what, method, path, body, field in CASES:
        r = client.request(method, path, json=body, headers=world.admin)
        answer = r.json()
        errors = answer.get("params", {}).get("errors", []) if isinstance(answer, dict) else []
        if (
            r.status_code != 422
            or answer["message"] != codes.VALIDATION_FAILED
            or field not in [e["field"] for e in errors]
            or not all(e["message"] for e in errors)
            or not answer["detail"]
        ):
            wrong.append(f"{what}: {r.status_code} {r.text}")
    assert not wrong, "\n".join(wrong)


def test_validation_answers_never_echo_the_input(client, world):
    r = client.post(USERS, json=OK_USER | {"password": "sekrit", "email": "secret-person@"}, headers=world.admin)
    assert r.status_code == 422
    assert "sekrit" not in r.text and "secret-person" not in r.text


MALFORMED = [
    b"{",
    b'{"oid": "S_X", "name": }',
    b"",
    b"\xff\xfe\x00",
    b"[1, 2",
    b'{"oid": "S_X", "name": "x"}garbage',
    b"NaN",
]


def test_malformed_json_is_a_client_error(client, world):
    wrong = []
    for path in (STUDIES, USERS, f"{STUDIES}/{STUDY}/sites", f"{USERS}/dana/roles"):
        for content in MALFORMED:
            r = client.post(path, content=content, headers=world.admin | {"Content-Type": "application/json"})
            if not (400 <= r.status_code < 500 and r.json()["message"] == codes.VALIDATION_FAILED):
                wrong.append(f"{path} {content!r}: {r.status_code} {r.text}")
    assert not wrong, "\n".join(wrong)


def test_a_body_sent_as_form_data_is_a_client_error(client, world):
    r = client.post(STUDIES, data={"oid": "S_X", "name": "x"}, headers=world.admin)
    assert r.status_code == 422


def test_nothing_is_stored_by_a_refused_body(client, world):
    for _what, method, path, body, _field in CASES:
        client.request(method, path, json=body, headers=world.admin)
    studies = client.get(STUDIES, headers=world.admin).json()
    assert [s["oid"] for s in studies] == [STUDY]
    assert studies[0]["participantIdMethod"] == "manual" and studies[0]["name"] == f"Study {STUDY}"
    assert [s["oid"] for s in studies[0]["sites"]] == [SITE]
    assert [u["username"] for u in client.get(USERS, headers=world.admin).json()] == ["root-admin", "dana"]
    assert client.get(f"{USERS}/dana/roles", headers=world.admin).json() == []
