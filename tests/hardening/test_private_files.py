"""Finding 5 / SPEC §14: the embedded database (PII, password hashes) is private to Roster's user:
its directory 0700, the file and its -wal/-shm 0600, whatever the umask; an older world-readable file is
tightened at start. SQLite only (PostgreSQL keeps no file of ours)."""

from __future__ import annotations

import os
import stat

from fastapi.testclient import TestClient

from roster.app import create_app
from roster.config import Settings
from roster.db import Database
from roster.migrate import upgrade
from tests.support import Api


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_data_directory_database_and_secret_are_created_private(tmp_path):
    old = os.umask(0o022)
    try:
        data = tmp_path / "roster-data"
        settings = Settings(_env_file=None, data_dir=data, embedded_workers=0)  # the embedded default
        db = Database(settings.database_url)
        upgrade(db)
        with TestClient(create_app(settings, db=db)) as client:
            api = Api(client, db, client.app.state.tokens)
            api.setup_study("S_PRIV(TEST)", sites=("S_PRIV_A(TEST)",))  # writes through the API: -wal appears
            assert client.get("/readyz").status_code == 200
        assert mode(data) == 0o700
        files = [p for p in data.iterdir()]
        assert {p.name for p in files} >= {"roster.db", "jwt-secret"}
        for path in files:
            assert mode(path) == 0o600, (path.name, oct(mode(path)))
    finally:
        os.umask(old)


def test_a_world_readable_database_from_before_is_made_private(tmp_path):
    path = tmp_path / "old" / "roster.db"
    path.parent.mkdir()
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    os.chmod(path, 0o644)
    Database(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o755  # an existing directory is left as it is (it may be shared)
