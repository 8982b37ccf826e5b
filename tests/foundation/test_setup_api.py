"""SPEC §3: every setup endpoint, its success answers and its 409 / 422 / 403 / 401 / 404 answers."""

from __future__ import annotations

import pytest

from roster import codes
from tests.foundation.test_tokens import TOKEN_URL, assert_unauthorized
from tests.support import PASSWORD, P

STUDIES = f"{P}/admin/studies"
USERS = f"{P}/admin/users"


def error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["message"] == code, body
    return body


# ---------------------------------------------------------------- studies


def test_create_a_study_with_defaults(client, api):
    body = api.study("S_NEW(TEST)")
    assert {k: body[k] for k in body if k not in ("createdAt", "updatedAt")} == {
        "oid": "S_NEW(TEST)",
        "name": "Study S_NEW(TEST)",
        "status": "available",
        "participantIdMethod": "manual",
        "participantIdTemplate": None,
        "participateActive": False,
        "enrollmentCap": None,
        "sites": [],
    }


def test_create_a_study_with_every_field(client, api):
    body = api.study(
        "S_FULL(TEST)",
        status="locked",
        participantIdMethod="system",
        participantIdTemplate="JUNO-####",
        participateActive=True,
        enrollmentCap=250,
    )
    assert (body["status"], body["participantIdMethod"], body["participantIdTemplate"]) == (
        "locked",
        "system",
        "JUNO-####",
    )
    assert (body["participateActive"], body["enrollmentCap"]) == (True, 250)


def test_list_get_and_patch_studies(client, api):
    api.setup_study("S_ONE(TEST)", sites=("S_ONE_A(TEST)",))
    api.study("S_TWO(TEST)")
    listed = api.ok(client.get(STUDIES, headers=api.admin))
    assert [s["oid"] for s in listed] == ["S_ONE(TEST)", "S_TWO(TEST)"]
    assert [s["oid"] for s in listed[0]["sites"]] == ["S_ONE_A(TEST)"]
    got = api.ok(client.get(f"{STUDIES}/S_ONE(TEST)", headers=api.admin))
    assert got["oid"] == "S_ONE(TEST)" and got["sites"][0]["studyOid"] == "S_ONE(TEST)"
    patched = api.ok(
        client.patch(
            f"{STUDIES}/S_ONE(TEST)",
            json={
                "name": "Renamed",
                "status": "locked",
                "participateActive": True,
                "enrollmentCap": 10,
                "participantIdMethod": "system",
                "participantIdTemplate": "ONE-###",
            },
            headers=api.admin,
        )
    )
    assert (patched["name"], patched["status"], patched["participateActive"], patched["enrollmentCap"]) == (
        "Renamed",
        "locked",
        True,
        10,
    )
    assert (patched["participantIdMethod"], patched["participantIdTemplate"]) == ("system", "ONE-###")
    assert patched["updatedAt"] >= got["updatedAt"] and patched["createdAt"] == got["createdAt"]
    # A PATCH changes only what it names; null clears a nullable field.
    again = api.ok(client.patch(f"{STUDIES}/S_ONE(TEST)", json={"enrollmentCap": None}, headers=api.admin))
    assert again["enrollmentCap"] is None and again["name"] == "Renamed"
    # Back to manual, then the template may be cleared.
    manual = api.ok(
        client.patch(
            f"{STUDIES}/S_ONE(TEST)",
            json={"participantIdMethod": "manual", "participantIdTemplate": None},
            headers=api.admin,
        )
    )
    assert manual["participantIdTemplate"] is None


@pytest.mark.parametrize("oid", ["S_DUP(TEST)", "s_dup(test)", "S_Dup(Test)"])
def test_a_duplicate_study_oid_in_any_case_is_409(client, api, oid):
    api.study("S_DUP(TEST)")
    r = client.post(STUDIES, json={"oid": oid, "name": "again"}, headers=api.admin)
    error(r, 409, codes.STUDY_ALREADY_EXISTS)


@pytest.mark.parametrize("path", ["S_JU0(TEST)", "s_ju0(test)", "S_JU0%28TEST%29", "s_Ju0%28test%29"])
def test_oids_are_found_in_any_case_and_url_encoded(client, api, path):
    api.setup_study("S_JU0(TEST)", sites=("S_JU0_SITE(TEST)",))
    assert api.ok(client.get(f"{STUDIES}/{path}", headers=api.admin))["oid"] == "S_JU0(TEST)"
    sites = api.ok(client.get(f"{STUDIES}/{path}/sites", headers=api.admin))
    assert [s["oid"] for s in sites] == ["S_JU0_SITE(TEST)"]
    site_path = path.replace("JU0", "JU0_SITE").replace("Ju0", "Ju0_site").replace("ju0", "ju0_site")
    patched = api.ok(client.patch(f"{STUDIES}/{path}/sites/{site_path}", json={"name": "Renamed"}, headers=api.admin))
    assert patched["oid"] == "S_JU0_SITE(TEST)" and patched["name"] == "Renamed"


def test_an_unknown_study_is_404_study_not_exist(client, api):
    for method, path, body in [
        ("GET", f"{STUDIES}/S_NOPE", None),
        ("PATCH", f"{STUDIES}/S_NOPE", {"name": "x"}),
        ("GET", f"{STUDIES}/S_NOPE/sites", None),
        ("POST", f"{STUDIES}/S_NOPE/sites", {"oid": "S_X", "name": "x"}),
        ("PATCH", f"{STUDIES}/S_NOPE/sites/S_X", {"name": "x"}),
    ]:
        r = client.request(method, path, json=body, headers=api.admin)
        assert error(r, 404, codes.STUDY_NOT_EXIST)["params"] == {"studyOID": "S_NOPE"}, (method, path)


# ---------------------------------------------------------------- sites


def test_create_list_and_patch_sites(client, api):
    api.study("S_STUDY(TEST)")
    created = api.site("S_STUDY(TEST)", "S_SITE_A(TEST)", enrollmentCap=5)
    assert {k: created[k] for k in ("oid", "name", "status", "enrollmentCap", "studyOid")} == {
        "oid": "S_SITE_A(TEST)",
        "name": "Site S_SITE_A(TEST)",
        "status": "available",
        "enrollmentCap": 5,
        "studyOid": "S_STUDY(TEST)",
    }
    api.site("S_STUDY(TEST)", "S_SITE_B(TEST)")
    assert [s["oid"] for s in api.ok(client.get(f"{STUDIES}/S_STUDY(TEST)/sites", headers=api.admin))] == [
        "S_SITE_A(TEST)",
        "S_SITE_B(TEST)",
    ]
    patched = api.ok(
        client.patch(
            f"{STUDIES}/S_STUDY(TEST)/sites/S_SITE_A(TEST)",
            json={"status": "locked", "enrollmentCap": None},
            headers=api.admin,
        )
    )
    assert (patched["status"], patched["enrollmentCap"], patched["name"]) == ("locked", None, "Site S_SITE_A(TEST)")


@pytest.mark.parametrize("where", ["same study", "same study other case", "other study"])
def test_a_duplicate_site_oid_is_409(client, api, where):
    api.setup_study("S_STUDY(TEST)", sites=("S_SITE_A(TEST)",))
    api.study("S_OTHER(TEST)")
    study, oid = {
        "same study": ("S_STUDY(TEST)", "S_SITE_A(TEST)"),
        "same study other case": ("S_STUDY(TEST)", "s_site_a(test)"),
        "other study": ("S_OTHER(TEST)", "S_SITE_A(TEST)"),
    }[where]
    r = client.post(f"{STUDIES}/{study}/sites", json={"oid": oid, "name": "again"}, headers=api.admin)
    error(r, 409, codes.SITE_ALREADY_EXISTS)


def test_an_unknown_site_or_a_site_of_another_study_is_404(client, api):
    api.setup_study("S_STUDY(TEST)", sites=("S_SITE_A(TEST)",))
    api.setup_study("S_OTHER(TEST)", sites=("S_OTHER_A(TEST)",))
    for site in ("S_NOPE", "S_OTHER_A(TEST)"):
        r = client.patch(f"{STUDIES}/S_STUDY(TEST)/sites/{site}", json={"name": "x"}, headers=api.admin)
        error(r, 404, codes.INVALID_SITE_IDENTIFIER)


# ---------------------------------------------------------------- users


def test_create_list_and_patch_users(client, api):
    r = client.post(
        USERS,
        json={"username": "dana", "password": PASSWORD, "displayName": "Dana D.", "email": "dana@example.org"},
        headers=api.admin,
    )
    created = api.ok(r, 201)
    assert {k: created[k] for k in ("username", "displayName", "email", "enabled", "admin")} == {
        "username": "dana",
        "displayName": "Dana D.",
        "email": "dana@example.org",
        "enabled": True,
        "admin": False,
    }
    assert not any("password" in k.lower() for k in created)
    listed = api.ok(client.get(USERS, headers=api.admin))
    assert [u["username"] for u in listed] == ["root-admin", "dana"]
    assert not any("password" in k.lower() for u in listed for k in u)
    patched = api.ok(
        client.patch(
            f"{USERS}/DANA", json={"admin": True, "displayName": None, "email": "d@example.org"}, headers=api.admin
        )
    )
    assert (patched["admin"], patched["displayName"], patched["email"], patched["enabled"]) == (
        True,
        None,
        "d@example.org",
        True,
    )


def test_a_password_change_takes_effect(client, api):
    api.user("dana")
    api.ok(client.patch(f"{USERS}/dana", json={"password": "a-brand-new-password"}, headers=api.admin))
    assert client.post(TOKEN_URL, json={"username": "dana", "password": PASSWORD}).status_code == 401
    assert client.post(TOKEN_URL, json={"username": "dana", "password": "a-brand-new-password"}).status_code == 200


def test_passwords_are_stored_as_argon2id_hashes(client, api, db, app):
    from argon2 import PasswordHasher

    from roster.auth import service
    from roster.auth.passwords import PasswordHashing

    app.state.hashing = PasswordHashing()  # the production parameters
    api.user("dana")
    with db.read_sessions() as session:
        stored = service.get_user(session, "dana").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


@pytest.mark.parametrize("username", ["dana", "DANA", "Dana"])
def test_a_duplicate_username_in_any_case_is_409(client, api, username):
    api.user("dana")
    r = client.post(USERS, json={"username": username, "password": PASSWORD}, headers=api.admin)
    error(r, 409, codes.USER_ALREADY_EXISTS)


def test_an_unknown_user_is_404(client, api):
    api.study("S_STUDY(TEST)")
    for method, path, body in [
        ("PATCH", f"{USERS}/ghost", {"enabled": False}),
        ("GET", f"{USERS}/ghost/roles", None),
        ("POST", f"{USERS}/ghost/roles", {"studyOid": "S_STUDY(TEST)", "role": "viewer"}),
        ("DELETE", f"{USERS}/ghost/roles/1", None),
    ]:
        error(client.request(method, path, json=body, headers=api.admin), 404, codes.USER_NOT_FOUND)


# ---------------------------------------------------------------- roles


def test_assign_list_and_remove_roles(client, api):
    api.setup_study("S_STUDY(TEST)", sites=("S_SITE_A(TEST)", "S_SITE_B(TEST)"))
    api.user("dana")
    study_role = api.ok(
        client.post(f"{USERS}/dana/roles", json={"studyOid": "s_study(test)", "role": "monitor"}, headers=api.admin),
        201,
    )
    assert (
        study_role["studyOid"] == "S_STUDY(TEST)" and study_role["siteOid"] is None and study_role["role"] == "monitor"
    )
    assert isinstance(study_role["id"], int)
    site_role = api.ok(
        client.post(
            f"{USERS}/dana/roles",
            json={"studyOid": "S_STUDY(TEST)", "siteOid": "s_site_a(test)", "role": "clinical_research_coordinator"},
            headers=api.admin,
        ),
        201,
    )
    assert site_role["siteOid"] == "S_SITE_A(TEST)"
    # The same role at another site, or another role at the same place, is a new assignment.
    api.ok(
        client.post(
            f"{USERS}/dana/roles",
            json={"studyOid": "S_STUDY(TEST)", "siteOid": "S_SITE_B(TEST)", "role": "clinical_research_coordinator"},
            headers=api.admin,
        ),
        201,
    )
    api.ok(
        client.post(f"{USERS}/dana/roles", json={"studyOid": "S_STUDY(TEST)", "role": "viewer"}, headers=api.admin), 201
    )
    listed = api.ok(client.get(f"{USERS}/dana/roles", headers=api.admin))
    assert [(r["siteOid"], r["role"]) for r in listed] == [
        (None, "monitor"),
        ("S_SITE_A(TEST)", "clinical_research_coordinator"),
        ("S_SITE_B(TEST)", "clinical_research_coordinator"),
        (None, "viewer"),
    ]
    r = client.delete(f"{USERS}/dana/roles/{site_role['id']}", headers=api.admin)
    assert r.status_code == 204 and r.content == b""
    assert len(api.ok(client.get(f"{USERS}/dana/roles", headers=api.admin))) == 3
    error(client.delete(f"{USERS}/dana/roles/{site_role['id']}", headers=api.admin), 404, codes.ROLE_NOT_FOUND)


@pytest.mark.parametrize("site", [None, "S_SITE_A(TEST)"])
def test_the_same_role_twice_is_409(client, api, site):
    api.setup_study("S_STUDY(TEST)", sites=("S_SITE_A(TEST)",))
    api.user("dana")
    body = {"studyOid": "S_STUDY(TEST)", "role": "viewer", **({"siteOid": site} if site else {})}
    first = api.ok(client.post(f"{USERS}/dana/roles", json=body, headers=api.admin), 201)
    again = error(
        client.post(f"{USERS}/dana/roles", json=body | {"studyOid": "s_study(test)"}, headers=api.admin),
        409,
        codes.ROLE_ALREADY_ASSIGNED,
    )
    assert again["params"] == {"id": first["id"]}


def test_role_assignment_404s(client, api):
    api.setup_study("S_STUDY(TEST)", sites=("S_SITE_A(TEST)",))
    api.setup_study("S_OTHER(TEST)", sites=("S_OTHER_A(TEST)",))
    api.user("dana")
    api.user("erin")
    roles = f"{USERS}/dana/roles"
    error(
        client.post(roles, json={"studyOid": "S_NOPE", "role": "viewer"}, headers=api.admin), 404, codes.STUDY_NOT_EXIST
    )
    error(
        client.post(
            roles, json={"studyOid": "S_STUDY(TEST)", "siteOid": "S_NOPE", "role": "viewer"}, headers=api.admin
        ),
        404,
        codes.INVALID_SITE_IDENTIFIER,
    )
    error(
        client.post(
            roles, json={"studyOid": "S_STUDY(TEST)", "siteOid": "S_OTHER_A(TEST)", "role": "viewer"}, headers=api.admin
        ),
        404,
        codes.INVALID_SITE_IDENTIFIER,
    )
    erins = api.ok(
        client.post(f"{USERS}/erin/roles", json={"studyOid": "S_STUDY(TEST)", "role": "viewer"}, headers=api.admin), 201
    )
    # Another user's assignment is not reachable through dana's URL.
    error(client.delete(f"{roles}/{erins['id']}", headers=api.admin), 404, codes.ROLE_NOT_FOUND)
    error(client.delete(f"{roles}/999999", headers=api.admin), 404, codes.ROLE_NOT_FOUND)


@pytest.mark.parametrize("role_id", ["abc", "0", "-1", "99999999999999999999999", "1.5"])
def test_a_role_id_that_is_no_id_is_422_not_500(client, api, role_id):
    api.user("dana")
    error(client.delete(f"{USERS}/dana/roles/{role_id}", headers=api.admin), 422, codes.VALIDATION_FAILED)


# ---------------------------------------------------------------- who may call

EVERY_ENDPOINT = [
    ("POST", STUDIES, {"oid": "S_NEW", "name": "New"}),
    ("GET", STUDIES, None),
    ("GET", f"{STUDIES}/S_STUDY(TEST)", None),
    ("PATCH", f"{STUDIES}/S_STUDY(TEST)", {"name": "x"}),
    ("POST", f"{STUDIES}/S_STUDY(TEST)/sites", {"oid": "S_NEW_SITE", "name": "New"}),
    ("GET", f"{STUDIES}/S_STUDY(TEST)/sites", None),
    ("PATCH", f"{STUDIES}/S_STUDY(TEST)/sites/S_SITE_A(TEST)", {"name": "x"}),
    ("POST", USERS, {"username": "newbie", "password": PASSWORD}),
    ("GET", USERS, None),
    ("PATCH", f"{USERS}/dana", {"enabled": False}),
    ("POST", f"{USERS}/dana/roles", {"studyOid": "S_STUDY(TEST)", "role": "viewer"}),
    ("GET", f"{USERS}/dana/roles", None),
    ("DELETE", f"{USERS}/dana/roles/1", None),
]
ENDPOINT_IDS = [f"{m} {p.removeprefix(P)}" for m, p, _ in EVERY_ENDPOINT]


@pytest.fixture
def populated(api):
    api.setup_study("S_STUDY(TEST)", sites=("S_SITE_A(TEST)",))
    # A data manager across the study is still no admin.
    return api.user("dana", "data_manager", "S_STUDY(TEST)")


@pytest.mark.parametrize("method,path,body", EVERY_ENDPOINT, ids=ENDPOINT_IDS)
def test_a_non_admin_gets_403_everywhere(client, populated, method, path, body):
    error(client.request(method, path, json=body, headers=populated), 403, codes.NO_SUFFICIENT_PRIVILEGES)
    # Also before the body is looked at: a broken body still answers 403, not 422.
    if body is not None:
        r = client.request(method, path, content=b"{broken", headers=populated | {"Content-Type": "application/json"})
        error(r, 403, codes.NO_SUFFICIENT_PRIVILEGES)


@pytest.mark.parametrize("method,path,body", EVERY_ENDPOINT, ids=ENDPOINT_IDS)
def test_no_token_gets_401_everywhere(client, populated, method, path, body):
    assert_unauthorized(client.request(method, path, json=body))
    if body is not None:
        assert_unauthorized(
            client.request(method, path, content=b"{broken", headers={"Content-Type": "application/json"})
        )


def test_a_disabled_admin_loses_the_setup_api_at_once(client, api):
    headers = api.user("boss", admin=True)
    assert client.get(STUDIES, headers=headers).status_code == 200
    api.ok(client.patch(f"{USERS}/boss", json={"enabled": False}, headers=api.admin))
    assert_unauthorized(client.get(STUDIES, headers=headers))
    assert_unauthorized(client.post(STUDIES, json={"oid": "S_X", "name": "x"}, headers=headers))
