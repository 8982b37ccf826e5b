"""SPEC §14: sign-in throttling per username and per client address, counted in the database."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from argon2 import PasswordHasher

from roster import codes
from roster.auth.models import SignInFailure
from roster.auth.passwords import PasswordHashing
from tests.support import PASSWORD

TOKEN_URL = "/user-service/api/oauth/token"


class CountingHasher(PasswordHasher):
    """The cheap test parameters, counting every verify: shows whether a password was checked."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash, password):  # noqa: A002 (argon2's own parameter name)
        self.verified += 1
        return super().verify(hash, password)


def login(client, username: str, password: str):
    # Starlette's TestClient always signs in from the address "testclient".
    return client.post(TOKEN_URL, json={"username": username, "password": password})


def assert_throttled(r, window_seconds: int) -> int:
    assert r.status_code == 429, r.text
    assert r.json()["message"] == codes.TOO_MANY_ATTEMPTS
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= window_seconds
    return retry_after


def test_five_failures_for_a_username_throttle_it_without_checking_the_password(client, api, app):
    api.user("alice")
    counting = CountingHasher()
    app.state.hashing = PasswordHashing(counting)
    for _ in range(5):
        assert login(client, "alice", "wrong-password-1").status_code == 401
    checked = counting.verified
    assert checked == 5
    # The right password too: refused while throttled, and no password is checked meanwhile.
    for password in ("wrong-password-1", PASSWORD):
        assert_throttled(login(client, "ALICE", password), 15 * 60)
    assert counting.verified == checked
    # Another username from the same address is not throttled by alice's count (5 < 20).
    api.user("bob")
    assert login(client, "bob", PASSWORD).status_code == 200


def test_the_throttle_lifts_when_the_failures_leave_the_window(client, api, db):
    api.user("alice")
    for _ in range(5):
        assert login(client, "alice", "wrong-password-1").status_code == 401
    assert_throttled(login(client, "alice", PASSWORD), 15 * 60)
    # The counts live in the database: age them by the window, as 15 minutes would.
    with db.transaction() as session:
        failures = session.scalars(sa.select(SignInFailure)).all()
        assert len(failures) == 5
        for failure in failures:
            failure.at -= dt.timedelta(minutes=15)
    assert login(client, "alice", PASSWORD).status_code == 200


def test_an_unknown_username_is_counted_like_a_known_one(client, api):
    """A 429 must not tell which usernames exist."""
    for _ in range(5):
        r = login(client, "nobody", "wrong-password-1")
        assert r.status_code == 401 and r.json()["message"] == codes.INVALID_CREDENTIALS
    assert_throttled(login(client, "nobody", "wrong-password-1"), 15 * 60)


def test_a_success_clears_the_usernames_failures(client, api):
    api.user("alice")
    for _ in range(4):
        assert login(client, "alice", "wrong-password-1").status_code == 401
    assert login(client, "alice", PASSWORD).status_code == 200
    for _ in range(4):
        assert login(client, "alice", "wrong-password-1").status_code == 401
    assert login(client, "alice", PASSWORD).status_code == 200


def test_twenty_failures_from_one_address_throttle_it_for_every_username(client, api):
    api.user("alice")
    # Four failures each for five usernames: none of them reaches its own limit of 5.
    for i in range(20):
        assert login(client, f"guess{i % 5}", "wrong-password-1").status_code == 401
    r = login(client, "alice", PASSWORD)
    assert_throttled(r, 15 * 60)


def test_the_limits_are_settings_and_every_api_process_shares_the_counts(client, api, make_client):
    """Two apps on one database (two API processes): failures at one count at the other."""
    api.user("alice")
    assert login(client, "alice", "wrong-password-1").status_code == 401
    strict = make_client(signin_max_failures_per_user=2, signin_window_minutes=1)
    assert login(strict, "alice", "wrong-password-2").status_code == 401
    assert_throttled(login(strict, "alice", PASSWORD), 60)
    # The default app (limit 5) still lets alice in: 2 failures < 5.
    assert login(client, "alice", PASSWORD).status_code == 200
