"""SPEC §2: tokens from an external identity provider, checked with a public key file or a JWKS URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from tests.foundation.conftest import SECRET, b64url, bearer, claims_for, craft
from tests.foundation.test_tokens import ME, TOKEN_URL, assert_unauthorized


@pytest.fixture
def rs256(api, make_client, keys):
    api.user("alice")
    return make_client(jwt_algorithms=["RS256"], jwt_public_key_file=keys["rsa"].public_file, jwt_secret="")


def idp_claims(username: str, **extra):
    # An IdP puts the login name in preferred_username and an opaque id in sub.
    return claims_for("4f9a1c2e-0000-4000-8000-000000000001", preferred_username=username, **extra)


def test_an_rs256_token_checked_against_the_key_file_works(rs256, keys):
    token = keys["rsa"].sign(idp_claims("alice"), "RS256")
    r = rs256.get(ME, headers=bearer(token))
    assert r.status_code == 200 and r.json()["username"] == "alice"


def test_the_username_falls_back_to_sub(rs256, keys):
    assert rs256.get(ME, headers=bearer(keys["rsa"].sign(claims_for("alice"), "RS256"))).status_code == 200


def test_a_configured_username_claim_is_used(api, make_client, keys):
    api.user("alice")
    app = make_client(jwt_algorithms=["RS256"], jwt_public_key_file=keys["rsa"].public_file, jwt_username_claim="upn")
    assert app.get(ME, headers=bearer(keys["rsa"].sign(idp_claims("nobody", upn="alice"), "RS256"))).status_code == 200


def _key_confusion(keys) -> str:
    # The classic attack: HS256 "signed" with the server's public key used as the HMAC secret.
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(idp_claims('alice')).encode())}"
    signature = hmac.new(keys["rsa"].public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


REFUSED = {
    "signed by another key": lambda k: k["rsa_other"].sign(idp_claims("alice"), "RS256"),
    "HS256 signed with the public key (key confusion)": _key_confusion,
    "HS256 signed with Roster's secret": lambda k: jwt.encode(idp_claims("alice"), SECRET, "HS256"),
    "alg none": lambda k: craft({"alg": "none"}, idp_claims("alice")),
    "RS512 when only RS256 is configured": lambda k: k["rsa"].sign(idp_claims("alice"), "RS512"),
    "missing exp": lambda k: k["rsa"].sign({"preferred_username": "alice"}, "RS256"),
    "expired": lambda k: k["rsa"].sign(idp_claims("alice", exp=1_600_000_000), "RS256"),
    "unknown user": lambda k: k["rsa"].sign(idp_claims("mallory"), "RS256"),
    "EC key": lambda k: k["ec"].sign(idp_claims("alice"), "ES256"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_token_is_refused_by_an_rs256_app(rs256, keys, case):
    assert_unauthorized(rs256.get(ME, headers=bearer(REFUSED[case](keys))))


def test_roster_issues_no_tokens_when_an_identity_provider_does(rs256):
    r = rs256.post(TOKEN_URL, json={"username": "alice", "password": "whatever-it-is"})
    assert r.status_code == 404


def test_es256_with_an_ec_key_file(api, make_client, keys):
    api.user("alice")
    app = make_client(jwt_algorithms=["ES256"], jwt_public_key_file=keys["ec"].public_file)
    assert app.get(ME, headers=bearer(keys["ec"].sign(idp_claims("alice"), "ES256"))).status_code == 200
    assert_unauthorized(app.get(ME, headers=bearer(keys["rsa"].sign(idp_claims("alice"), "RS256"))))


@pytest.fixture
def jwks_server(keys) -> Iterator[str]:
    """A tiny JWKS endpoint on 127.0.0.1, as an identity provider publishes one."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["rsa"].private_key.public_key()))
    body = json.dumps({"keys": [jwk | {"kid": "key-1", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200 if self.path == "/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if self.path == "/jwks.json" else b"{}")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_token_is_checked_against_the_jwks_url(api, make_client, keys, jwks_server):
    api.user("alice")
    app = make_client(jwt_algorithms=["RS256"], jwks_url=jwks_server)
    assert app.get(ME, headers=bearer(keys["rsa"].sign(idp_claims("alice"), "RS256", kid="key-1"))).status_code == 200
    assert_unauthorized(app.get(ME, headers=bearer(keys["rsa"].sign(idp_claims("alice"), "RS256", kid="key-9"))))
    assert_unauthorized(app.get(ME, headers=bearer(keys["rsa_other"].sign(idp_claims("alice"), "RS256", kid="key-1"))))


def test_an_unreachable_jwks_url_refuses_tokens_instead_of_failing(api, make_client, keys):
    api.user("alice")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    app = make_client(jwt_algorithms=["RS256"], jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    assert_unauthorized(app.get(ME, headers=bearer(keys["rsa"].sign(idp_claims("alice"), "RS256", kid="key-1"))))
