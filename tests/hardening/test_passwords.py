"""SPEC §14: passwords set through the setup API are 12+ characters and do not contain the username
(the CLI: tests/foundation/test_cli.py); `roster demo`'s users meet the same rules."""

from __future__ import annotations

import pytest

from roster import codes, demo
from roster.auth.passwords import check_strength
from tests.support import PASSWORD, P

USERS = f"{P}/admin/users"
WEAK = [
    ("eleven-char", "too short"),
    ("", "empty"),
    ("xx-dana-is-my-name", "contains the username"),
    ("XX-DANA-IS-MY-NAME", "contains the username in another case"),
]


@pytest.mark.parametrize("password,why", WEAK, ids=[w for _, w in WEAK])
def test_a_weak_password_is_422_weak_password_on_create_and_on_change(client, api, password, why):
    r = client.post(USERS, json={"username": "Dana", "password": password}, headers=api.admin)
    assert r.status_code == 422, r.text
    assert r.json()["message"] == codes.WEAK_PASSWORD and r.json()["params"]["field"] == "password"
    assert password not in r.text or not password
    assert "Dana" not in [u["username"] for u in client.get(USERS, headers=api.admin).json()]

    api.user("dana")
    r = client.patch(f"{USERS}/dana", json={"password": password}, headers=api.admin)
    assert r.status_code == 422 and r.json()["message"] == codes.WEAK_PASSWORD
    # Nothing changed: the old password still signs in.
    assert (
        client.post("/user-service/api/oauth/token", json={"username": "dana", "password": PASSWORD}).status_code == 200
    )


def test_twelve_characters_without_the_username_are_enough(client, api):
    r = client.post(USERS, json={"username": "dana", "password": "twelve-chars"}, headers=api.admin)
    assert r.status_code == 201, r.text


def test_the_demo_users_passwords_meet_the_rules(client, api):
    for username, *_ in demo.DEMO_USERS:
        check_strength(username, demo.DEMO_PASSWORD)
    with api.db.transaction() as session:
        demo.seed(session)
    r = client.post(
        "/user-service/api/oauth/token", json={"username": "datamanager", "password": "roster-demo-password"}
    )
    assert r.status_code == 200, r.text
