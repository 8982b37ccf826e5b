"""The token endpoint takes the OAuth 2 password form (SPEC §12) and answers as it does for JSON (SPEC §2)."""

from __future__ import annotations

from tests.support import PASSWORD, Api

TOKEN = "/user-service/api/oauth/token"
FORM = {"grant_type": "password", "username": "dm", "password": PASSWORD}


def test_the_password_form_answers_as_json_does(api: Api) -> None:
    api.user("dm")
    plain = api.client.post(TOKEN, data=FORM)
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain")
    assert plain.text.count(".") == 2 and plain.headers["cache-control"] == "no-store"
    as_json = api.client.post(
        TOKEN, data={"username": "dm", "password": PASSWORD}, headers={"Accept": "application/json"}
    )
    assert as_json.status_code == 200
    assert (
        set(as_json.json()) == {"access_token", "token_type", "expires_in"} and as_json.json()["token_type"] == "bearer"
    )
    me = api.client.get("/pages/auth/api/me", headers={"Authorization": f"Bearer {plain.text}"})
    assert me.json()["username"] == "dm"


def test_form_refusals_match_the_json_ones(api: Api) -> None:
    api.user("dm")
    wrong = api.client.post(TOKEN, data={**FORM, "password": "not-it"})
    assert (wrong.status_code, wrong.json()["message"]) == (401, "errorCode.invalidCredentials")
    assert wrong.json() == api.client.post(TOKEN, json={"username": "dm", "password": "not-it"}).json()
    missing = api.client.post(TOKEN, data={"username": "dm"})
    assert missing.status_code == 422
    assert missing.json()["params"]["errors"][0]["field"] == "password"
    assert (
        missing.json()["params"]["errors"] == api.client.post(TOKEN, json={"username": "dm"}).json()["params"]["errors"]
    )
    grant = api.client.post(TOKEN, data={**FORM, "grant_type": "client_credentials"})
    assert grant.status_code == 422 and grant.json()["params"]["errors"][0]["field"] == "grant_type"


def test_json_bodies_are_read_as_before(api: Api) -> None:
    api.user("dm")
    assert (
        api.client.post(TOKEN, json={"username": "dm", "password": PASSWORD, "grant_type": "anything"}).status_code
        == 200
    )
    empty = api.client.post(TOKEN, content=b"", headers={"Content-Type": "application/json"})
    assert (empty.status_code, empty.json()["params"]["errors"][0]["field"]) == (422, "body")
    broken = api.client.post(TOKEN, content=b"{nope", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["message"] == "errorCode.validationFailed"
    text = api.client.post(TOKEN, content=b'{"username": "dm"}', headers={"Content-Type": "text/plain"})
    assert text.status_code == 422
