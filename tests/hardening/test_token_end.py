"""SPEC §14 / findings 2 and 4: tokens end at a revoke, a password change or a disable, and stay ended;
a token whose username claim cannot name a user is 401, never 500."""

from __future__ import annotations

import jwt
import pytest

from roster import codes
from tests.foundation.conftest import SECRET, bearer, claims_for, craft
from tests.support import PASSWORD, P

TOKEN_URL = "/user-service/api/oauth/token"
REVOKE_URL = "/user-service/api/oauth/revoke"
ME = f"{P}/me"
STUDY, SITE = "S_END(TEST)", "S_END_A(TEST)"


def login(client, username: str, password: str = PASSWORD) -> str:
    r = client.post(TOKEN_URL, json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r.text


def assert_unauthorized(r) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    if isinstance(body, list):  # OpenSpecimen's error shape (/rest/ng)
        assert body[0]["code"]
        return
    assert r.headers["www-authenticate"] == "Bearer" and body["message"] == codes.UNAUTHORIZED


def test_revoke_ends_that_token_at_once_and_no_other(client, api):
    api.user("alice")
    first, second = login(client, "alice"), login(client, "alice")
    assert client.post(REVOKE_URL, data={"token": first, "token_type_hint": "access_token"}).status_code == 200
    assert_unauthorized(client.get(ME, headers=bearer(first)))
    assert client.get(ME, headers=bearer(second)).status_code == 200
    # Revoking again, or revoking nonsense, is answered 200 too (RFC 7009 §2.2).
    for token in (first, "not-a-token", craft({"alg": "HS256"}, claims_for("alice"), b"wrong-key")):
        r = client.post(REVOKE_URL, data={"token": token})
        assert r.status_code == 200 and r.content == b""


def test_a_revoked_token_is_refused_on_every_kind_of_endpoint(client, api):
    api.setup_study(STUDY, sites=(SITE,))
    api.user("dm", "data_manager", STUDY)
    token = login(client, "dm")
    participants = f"{P}/clinicaldata/studies/{STUDY}/sites/{SITE}/participants"
    assert client.get(participants, headers=bearer(token)).status_code == 200
    client.post(REVOKE_URL, data={"token": token})
    assert_unauthorized(client.get(participants, headers=bearer(token)))
    assert_unauthorized(client.get(f"{P}/studies/{STUDY}/jobs", headers=bearer(token)))
    r = client.post(
        f"{participants}/bulk",
        headers=bearer(token),
        files={"file": ("p.csv", b"ParticipantID\r\nP-1\r\n", "text/csv")},
    )
    assert_unauthorized(r)


def test_revoke_needs_the_token_in_a_form_body(client, api):
    r = client.post(REVOKE_URL, json={"token": "x"})
    assert r.status_code == 422 and r.json()["message"] == codes.VALIDATION_FAILED


def test_a_password_change_ends_every_older_token(client, api):
    api.user("alice")
    old_login, old_issued = login(client, "alice"), api.headers("alice")
    api.ok(client.patch(f"{P}/admin/users/alice", json={"password": "a-brand-new-password"}, headers=api.admin))
    assert_unauthorized(client.get(ME, headers=bearer(old_login)))
    assert_unauthorized(client.get(ME, headers=old_issued))
    # A token signed in the same second, after the change, works.
    assert client.get(ME, headers=bearer(login(client, "alice", "a-brand-new-password"))).status_code == 200


def test_other_changes_to_a_user_end_no_token(client, api):
    headers = api.user("alice")
    api.ok(client.patch(f"{P}/admin/users/alice", json={"displayName": "Alice", "admin": True}, headers=api.admin))
    assert client.get(ME, headers=headers).status_code == 200


def test_a_token_without_iat_is_refused_once_the_users_tokens_were_ended(client, api):
    api.user("alice")
    claims = {k: v for k, v in claims_for("alice").items() if k != "iat"}
    token = jwt.encode(claims, SECRET, "HS256")
    assert client.get(ME, headers=bearer(token)).status_code == 200
    api.ok(client.patch(f"{P}/admin/users/alice", json={"enabled": False}, headers=api.admin))
    api.ok(client.patch(f"{P}/admin/users/alice", json={"enabled": True}, headers=api.admin))
    assert_unauthorized(client.get(ME, headers=bearer(token)))


@pytest.mark.parametrize(
    "username",
    ["\ud800", "a\udfffb", "x" * 201, "\x00", "", 5, ["alice"], None],
    ids=["lone-high-surrogate", "lone-low-surrogate", "too-long", "nul", "empty", "number", "list", "null"],
)
def test_a_claim_that_cannot_name_a_user_is_401_everywhere(client, api, username):
    """Finding 2: a signed token with a lone surrogate as its username answered 500 (UnicodeEncodeError)."""
    api.setup_study(STUDY, sites=(SITE,))
    claims = claims_for("ignored") | {"sub": username, "preferred_username": username}
    token = craft({"alg": "HS256", "typ": "JWT"}, claims, SECRET.encode())
    for method, path in [
        ("GET", ME),
        ("GET", f"{P}/clinicaldata/studies/{STUDY}/participants"),
        ("GET", f"{P}/admin/users"),
        ("GET", f"{P}/studies/{STUDY}/jobs"),
        ("GET", "/rest/ng/participants/1"),
        ("POST", f"{P}/clinicaldata/studies/{STUDY}/sites/{SITE}/participants/bulk"),
    ]:
        assert_unauthorized(client.request(method, path, headers=bearer(token)))
    assert client.post(REVOKE_URL, data={"token": token}).status_code == 200


def test_a_lone_surrogate_as_the_sign_in_username_is_a_client_error(client, api):
    r = client.post(
        TOKEN_URL,
        content=b'{"username": "\\ud800", "password": "whatever-it-is"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (401, 422), r.text
