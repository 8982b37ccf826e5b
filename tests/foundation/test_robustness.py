"""SPEC §10: health checks, no 500 for any body, and UTC timestamps on both backends."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from roster.app import create_app
from roster.config import Settings
from roster.db import Database
from roster.errors import install_error_handlers
from roster.schemas import Page, PageParams, page_params
from tests.foundation.conftest import SECRET
from tests.foundation.test_tokens import TOKEN_URL
from tests.support import P

STUDY, SITE = "S_STUDY(TEST)", "S_SITE_A(TEST)"


def test_healthz_needs_no_token_and_no_database(tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/unused.db", jwt_secret=SECRET, data_dir=tmp_path))
    r = TestClient(app).get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_answers_200_with_the_backend(client, backend):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": backend}


@pytest.mark.parametrize("kind", ["postgresql refused", "sqlite unopenable"])
def test_readyz_answers_503_when_the_database_is_unreachable(tmp_path, kind):
    if kind == "postgresql refused":
        url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    else:
        (tmp_path / "a-directory.db").mkdir()
        url = f"sqlite:///{tmp_path}/a-directory.db"
    settings = Settings(database_url=url, jwt_secret=SECRET, data_dir=tmp_path)
    app = create_app(settings, db=Database(url))
    r = TestClient(app).get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    assert "127.0.0.1" not in r.text and str(tmp_path) not in r.text


def utc(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.utcoffset() == dt.timedelta(0), value
    return parsed


def test_timestamps_are_iso_8601_utc_and_right(client, api):
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    api.setup_study(STUDY, sites=(SITE,))
    api.user("dana")
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    study = api.ok(client.get(f"{P}/admin/studies/{STUDY}", headers=api.admin))
    users = api.ok(client.get(f"{P}/admin/users", headers=api.admin))
    stamps = [study["createdAt"], study["updatedAt"], study["sites"][0]["createdAt"], study["sites"][0]["updatedAt"]]
    stamps += [u[k] for u in users for k in ("createdAt", "updatedAt")]
    for value in stamps:
        assert value.endswith(("Z", "+00:00")), value
        # Right instant too: a local time labelled UTC would be off by the server's offset.
        assert before <= utc(value) <= after, value


# ---------------------------------------------------------------- no 500 for any body

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
WRITES = [
    (
        "POST",
        f"{P}/admin/studies",
        ["oid", "name", "status", "participantIdMethod", "participantIdTemplate", "participateActive", "enrollmentCap"],
    ),
    (
        "PATCH",
        f"{P}/admin/studies/{STUDY}",
        ["name", "status", "participantIdMethod", "participantIdTemplate", "participateActive", "enrollmentCap"],
    ),
    ("POST", f"{P}/admin/studies/{STUDY}/sites", ["oid", "name", "status", "enrollmentCap"]),
    ("PATCH", f"{P}/admin/studies/{STUDY}/sites/{SITE}", ["name", "status", "enrollmentCap"]),
    ("POST", f"{P}/admin/users", ["username", "password", "admin", "displayName", "email"]),
    ("PATCH", f"{P}/admin/users/dana", ["enabled", "password", "admin", "displayName", "email"]),
    ("POST", f"{P}/admin/users/dana/roles", ["studyOid", "siteOid", "role"]),
    ("POST", TOKEN_URL, ["username", "password"]),
]


def bodies(keys: list[str]):
    """Arbitrary JSON, or an object with the endpoint's own keys holding arbitrary JSON."""
    return json_values | st.fixed_dictionaries({}, optional={k: json_values for k in keys})


@pytest.fixture
def world(api):
    api.setup_study(STUDY, sites=(SITE,))
    api.user("dana")
    return api


@pytest.mark.parametrize("method,path,keys", WRITES, ids=[f"{m} {p.removeprefix(P)}" for m, p, _ in WRITES])
def test_no_body_makes_a_setup_endpoint_fail(client, world, method, path, keys):
    @hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=bodies(keys))
    def check(body):
        r = client.request(
            method, path, content=json.dumps(body), headers=world.admin | {"Content-Type": "application/json"}
        )
        assert r.status_code < 500, (body, r.text)

    check()


TRICKY_TEXT = [
    "\ud800",
    "a\udfffb",
    "\u0000",
    "\u202e",
    "😀" * 30,
    "ß" * 100,
    "Ｓ" * 100,
    "\\",
    "'; DROP TABLE users; --",
]


@pytest.mark.parametrize("text", TRICKY_TEXT, ids=[repr(t)[:14] for t in TRICKY_TEXT])
def test_tricky_text_never_fails_the_server(client, world, text):
    """Lone surrogates cannot be stored as UTF-8, NUL cannot be stored by PostgreSQL: both must be 4xx."""
    for method, path, keys in WRITES:
        for key in keys:
            body = json.dumps({key: text})  # json.dumps escapes a lone surrogate as \\ud800, as a client might
            r = client.request(method, path, content=body, headers=world.admin | {"Content-Type": "application/json"})
            assert r.status_code < 500, (method, path, key, r.text)
    assert client.get(f"{P}/admin/studies/{STUDY}", headers=world.admin).status_code == 200


def test_paths_with_odd_characters_are_404_not_500(client, world):
    for oid in ("%00", "%ED%A0%80", "..%2F..%2Fetc", "%FF", "S" * 5000, "%2525"):
        r = client.get(f"{P}/admin/studies/{oid}", headers=world.admin)
        assert r.status_code in (404, 422), (oid, r.status_code, r.text)
    r = client.get(f"{P}/admin/users/%00/roles", headers=world.admin)
    assert r.status_code == 404


def test_unknown_paths_and_methods_answer_json_codes(client):
    r = client.get(f"{P}/no-such-thing")
    assert r.status_code == 404 and r.json()["message"] == "errorCode.notFound"
    r = client.put(f"{P}/admin/studies")
    assert r.status_code == 405 and r.json()["message"] == "errorCode.methodNotAllowed"


def test_pagination_parameters_are_bounded():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/items")
    def items(params: Annotated[PageParams, Depends(page_params)]) -> dict:
        return Page[int](items=[], page=params.page, page_size=params.page_size, total=params.offset).model_dump(
            by_alias=True
        )

    c = TestClient(app)
    assert c.get("/items").json() == {"items": [], "page": 1, "pageSize": 50, "total": 0}
    assert c.get("/items?page=3&pageSize=1000").json() == {"items": [], "page": 3, "pageSize": 1000, "total": 2000}
    for query in ("page=0", "pageSize=0", "pageSize=1001", "page=99999999999999999999", "page=x", "pageSize=-1"):
        r = c.get(f"/items?{query}")
        assert r.status_code == 422 and r.json()["message"] == "errorCode.validationFailed", query
