"""SPEC §2: the token endpoint, and every way a bearer token is refused (HS256, Roster's own tokens)."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest

from roster import codes
from tests.foundation.conftest import SECRET, bearer, claims_for, craft
from tests.support import PASSWORD, P

# The HS512 attack token is signed with our 44-byte secret, which pyjwt finds short for SHA-512.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

TOKEN_URL = "/user-service/api/oauth/token"
ME = f"{P}/me"


def assert_unauthorized(r) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["message"] == codes.UNAUTHORIZED


def login(client, username: str, password: str = PASSWORD, **headers: str):
    return client.post(TOKEN_URL, json={"username": username, "password": password}, headers=headers)


def test_token_endpoint_answers_the_token_as_plain_text_by_default(client, api):
    api.user("alice")
    r = login(client, "alice")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["cache-control"] == "no-store"
    token = r.text
    assert token.count(".") == 2 and not token.startswith('"')
    me = client.get(ME, headers=bearer(token))
    assert me.status_code == 200 and me.json()["username"] == "alice"


def test_token_endpoint_answers_json_when_asked(client, api, settings):
    api.user("alice")
    r = login(client, "alice", Accept="application/json")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.token_ttl_minutes * 60
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == pytest.approx(body["expires_in"])
    assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200


def test_login_is_case_insensitive_on_the_username(client, api):
    api.user("Alice.Smith")
    r = login(client, "alice.smith")
    assert r.status_code == 200
    assert client.get(ME, headers=bearer(r.text)).json()["username"] == "Alice.Smith"


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "disabled user"])
def test_bad_credentials_answer_401_invalid_credentials(client, api, case):
    api.user("alice")
    if case == "disabled user":
        api.ok(client.patch(f"{P}/admin/users/alice", json={"enabled": False}, headers=api.admin))
    username, password = {"wrong password": ("alice", "not-the-password"), "unknown user": ("nobody", PASSWORD)}.get(
        case, ("alice", PASSWORD)
    )
    r = login(client, username, password)
    assert r.status_code == 401
    assert r.json()["message"] == codes.INVALID_CREDENTIALS


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[]",
        b'"alice"',
        b"null",
        b'{"username": 5, "password": "x"}',
        b'{"username": "alice"}',
        b"\xff\xfe",
    ],
    ids=["malformed", "empty", "array", "string", "null", "wrong-type", "missing-password", "not-utf8"],
)
def test_a_malformed_token_request_is_a_client_error(client, content):
    r = client.post(TOKEN_URL, content=content, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text


def test_a_disabled_users_token_stops_working_at_once_and_stays_ended_when_re_enabled(client, api):
    headers = api.user("alice")
    assert client.get(ME, headers=headers).status_code == 200
    api.ok(client.patch(f"{P}/admin/users/alice", json={"enabled": False}, headers=api.admin))
    assert_unauthorized(client.get(ME, headers=headers))
    api.ok(client.patch(f"{P}/admin/users/alice", json={"enabled": True}, headers=api.admin))
    assert_unauthorized(client.get(ME, headers=headers))  # SPEC §14: re-enabling revives no old token
    assert client.get(ME, headers=bearer(login(client, "alice").text)).status_code == 200


def test_the_bearer_scheme_is_case_insensitive(client, api):
    token = api.user("alice")["Authorization"].split()[1]
    assert client.get(ME, headers={"Authorization": f"bearer {token}"}).status_code == 200


def _past(minutes: int) -> int:
    return int((dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).timestamp())


def _future(minutes: int) -> int:
    return int((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).timestamp())


def _without(claims: dict, *names: str) -> dict:
    return {k: v for k, v in claims.items() if k not in names}


# Each entry makes the Authorization header from a valid user "alice"; every one must be refused.
BAD_HEADERS = {
    "no header": lambda: None,
    "basic scheme": lambda: "Basic YWxpY2U6Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5",
    "bearer without token": lambda: "Bearer",
    "bearer blank": lambda: "Bearer    ",
    "garbage": lambda: "Bearer not-a-token",
    "three garbage parts": lambda: "Bearer abc.def.ghi",
    "token without scheme": lambda: jwt.encode(claims_for("alice"), SECRET, "HS256"),
    "expired": lambda: "Bearer " + jwt.encode(claims_for("alice", iat=_past(120), exp=_past(60)), SECRET, "HS256"),
    "bad signature": lambda: "Bearer " + jwt.encode(claims_for("alice"), "another-secret-" + "y" * 32, "HS256"),
    "tampered claims": lambda: "Bearer " + _tampered(),
    "alg none": lambda: "Bearer " + craft({"alg": "none", "typ": "JWT"}, claims_for("alice")),
    "alg None": lambda: "Bearer " + craft({"alg": "None", "typ": "JWT"}, claims_for("alice")),
    "alg none signed": lambda: "Bearer " + craft({"alg": "none"}, claims_for("alice"), SECRET.encode()),
    "no alg": lambda: "Bearer " + craft({"typ": "JWT"}, claims_for("alice"), SECRET.encode()),
    "HS512 when HS256 is configured": lambda: "Bearer " + jwt.encode(claims_for("alice"), SECRET, "HS512"),
    "missing exp": lambda: "Bearer " + jwt.encode(_without(claims_for("alice"), "exp"), SECRET, "HS256"),
    "exp not a number": lambda: (
        "Bearer " + craft({"alg": "HS256"}, claims_for("alice", exp="tomorrow"), SECRET.encode())
    ),
    "not yet valid": lambda: "Bearer " + jwt.encode(claims_for("alice", nbf=_future(30)), SECRET, "HS256"),
    "unknown user": lambda: "Bearer " + jwt.encode(claims_for("mallory"), SECRET, "HS256"),
    "no username claim": lambda: "Bearer " + jwt.encode(_without(claims_for("alice"), "sub"), SECRET, "HS256"),
    "username claim not a string": lambda: (
        "Bearer " + craft({"alg": "HS256"}, claims_for("alice", sub=["alice"]), SECRET.encode())
    ),
    "empty username": lambda: "Bearer " + jwt.encode(claims_for(""), SECRET, "HS256"),
    "username with NUL": lambda: "Bearer " + jwt.encode(claims_for("alice\u0000"), SECRET, "HS256"),
}


def _tampered() -> str:
    header, _claims, signature = jwt.encode(claims_for("alice"), SECRET, "HS256").split(".")
    forged = craft({"alg": "HS256"}, claims_for("root-admin")).split(".")[1]
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("case", list(BAD_HEADERS))
def test_a_bad_token_answers_401_with_www_authenticate(client, api, case):
    api.user("alice")
    value = BAD_HEADERS[case]()
    r = client.get(ME, headers={"Authorization": value} if value is not None else {})
    assert_unauthorized(r)


def test_a_token_naming_a_user_in_another_case_is_that_user(client, api):
    api.user("alice")
    r = client.get(ME, headers=bearer(jwt.encode(claims_for("ALICE"), SECRET, "HS256")))
    assert r.status_code == 200 and r.json()["username"] == "alice"


def test_a_small_clock_skew_is_tolerated(client, api):
    api.user("alice")
    token = jwt.encode(claims_for("alice", exp=_past(0) - 2), SECRET, "HS256")
    assert client.get(ME, headers=bearer(token)).status_code == 200


class TestIssuerAndAudience:
    """With ROSTER_JWT_ISSUER / ROSTER_JWT_AUDIENCE set, tokens must carry exactly those."""

    ISS, AUD = "https://idp.example.org/realms/roster", "roster-api"

    @pytest.fixture
    def strict(self, api, make_client):
        api.user("alice")
        return make_client(jwt_issuer=self.ISS, jwt_audience=self.AUD)

    def test_a_token_with_the_configured_issuer_and_audience_works(self, strict):
        token = jwt.encode(claims_for("alice", iss=self.ISS, aud=self.AUD), SECRET, "HS256")
        assert strict.get(ME, headers=bearer(token)).status_code == 200

    def test_an_audience_list_containing_ours_works(self, strict):
        token = jwt.encode(claims_for("alice", iss=self.ISS, aud=["other", self.AUD]), SECRET, "HS256")
        assert strict.get(ME, headers=bearer(token)).status_code == 200

    @pytest.mark.parametrize(
        "claims",
        [{"iss": ISS, "aud": "someone-else"}, {"iss": ISS}, {"iss": "https://evil.example", "aud": AUD}, {"aud": AUD}],
        ids=["wrong aud", "missing aud", "wrong iss", "missing iss"],
    )
    def test_a_wrong_or_missing_issuer_or_audience_is_refused(self, strict, claims):
        token = jwt.encode(claims_for("alice", **claims), SECRET, "HS256")
        assert_unauthorized(strict.get(ME, headers=bearer(token)))

    def test_tokens_roster_issues_carry_the_configured_issuer_and_audience(self, strict, client):
        token = login(strict, "alice").text
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=self.AUD, issuer=self.ISS)
        assert claims["sub"] == "alice"
        assert strict.get(ME, headers=bearer(token)).status_code == 200
        # The default app checks no audience, so the same token works there too; the reverse does not hold.
        plain = login(client, "alice").text
        assert_unauthorized(strict.get(ME, headers=bearer(plain)))
