"""Test fixtures: every test that touches the database runs once per backend (SQLite file, PostgreSQL).

PostgreSQL is found through ROSTER_TEST_DATABASE_URL (a server URL; each test session creates and drops
its own database there), else a local server on 127.0.0.1:5432 if one answers. With
ROSTER_REQUIRE_POSTGRES=1 (as .ci/run sets) an unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from roster.app import create_app
from roster.config import Settings
from roster.db import Database
from roster.migrate import upgrade
from roster.models import Base
from tests.support import Api

LOCAL_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REQUIRE_PG = os.environ.get("ROSTER_REQUIRE_POSTGRES") == "1"


def _pg_server_url() -> str | None:
    url = os.environ.get("ROSTER_TEST_DATABASE_URL") or LOCAL_PG
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return url
    except Exception as exc:
        if REQUIRE_PG or os.environ.get("ROSTER_TEST_DATABASE_URL"):
            raise pytest.UsageError(
                f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)} is required but unreachable: {exc}"
            ) from None
        return None


PG_SERVER = _pg_server_url()
BACKENDS = ["sqlite", "postgresql"] if PG_SERVER else ["sqlite"]


def pytest_report_header(config) -> str:
    return f"roster backends: {', '.join(BACKENDS)}"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    if PG_SERVER is None:
        pytest.skip("no PostgreSQL server (set ROSTER_TEST_DATABASE_URL)")
    return PG_SERVER


def _create_pg_database(server_url: str) -> tuple[str, callable]:
    name = f"roster_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A migrated, empty database for the whole session, on each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "roster-test.db"
        url, drop = f"sqlite:///{path}", (lambda: None)
    else:
        url, drop = _create_pg_database(PG_SERVER)
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield url
    drop()


@pytest.fixture
def fresh_postgres_url(pg_server_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own (no schema), dropped afterwards; skipped without a server."""
    url, drop = _create_pg_database(pg_server_url)
    yield url
    drop()


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


def wipe(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(sa.text(f"DELETE FROM {table}"))


def cheap_hashing():
    """Still argon2id through the same code, at the cheapest cost: the production parameters take 50-300 ms
    a hash on this machine. `test_passwords_are_stored_as_argon2id_hashes` and tests/foundation/test_signin_load.py
    use those."""
    from argon2 import PasswordHasher

    from roster.auth.passwords import PasswordHashing

    return PasswordHashing(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's default hasher (what create_app, the CLI in-process and `roster demo` use) made cheap."""
    from roster.auth import passwords

    monkeypatch.setattr(passwords, "DEFAULT", cheap_hashing())


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # _env_file=None: a developer's own .env must not change what the tests run against.
    return Settings(
        _env_file=None,
        database_url=database_url,
        jwt_secret="test-secret-" + "x" * 32,
        data_dir=tmp_path / "data",
        embedded_workers=0,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    wipe(database)
    yield database
    database.dispose()


@pytest.fixture
def app(settings: Settings, db: Database):
    return create_app(settings, db=db)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def api(client: TestClient, db: Database, app) -> Api:
    return Api(client, db, app.state.tokens)
