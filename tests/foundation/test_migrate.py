"""Migrations at start-up: every `roster serve` and `roster worker` migrates, so several may do it at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from roster.db import Base, Database
from roster.migrate import alembic_config, downgrade, upgrade
from tests.conftest import _create_pg_database


def test_concurrent_upgrades_of_a_fresh_postgresql_database_both_succeed(fresh_postgres_url):
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def start() -> None:
        db = Database(fresh_postgres_url)
        try:
            barrier.wait()
            upgrade(db)
        except BaseException as exc:
            failures.append(exc)
        finally:
            db.dispose()

    # Daemon threads: without the lock they can hang (Alembic's `context` is process-global), and must not
    # keep pytest from exiting.
    threads = [threading.Thread(target=start, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "an upgrade hung"
    assert not failures, [f"{type(e).__name__}: {str(e).splitlines()[0]}" for e in failures]

    engine = sa.create_engine(fresh_postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        assert {"studies", "sites", "users", "participants", "jobs"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def empty_url(backend: str, tmp_path, pg_server_url) -> Iterator[str]:
    """An empty database of the session's backend, for migrating up and down."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    url, drop = _create_pg_database(pg_server_url)
    yield url
    drop()


def _a_study_and_its_site(conn) -> None:
    """Study 1 and its site 1, in columns every revision has."""
    conn.execute(
        sa.text(
            "INSERT INTO studies (oid, oid_key, name, status, participant_id_method, id_counter, participate_active, "
            "created_at, updated_at) "
            "VALUES ('S', 's', 'n', 'available', 'manual', 0, false, '2026-01-01', '2026-01-01')"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO sites (study_id, oid, oid_key, name, status, created_at, updated_at) VALUES (1, 'X', 'x', "
            "'n', 'available', '2026-01-01', '2026-01-01')"
        )
    )


def test_the_schema_the_migrations_build_is_the_models_schema(empty_url):
    db = Database(empty_url)
    try:
        upgrade(db)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_the_bulk_index_migration_goes_down_and_up_again_keeping_every_row(empty_url):
    db = Database(empty_url)
    try:
        upgrade(db, "0001")
        with db.engine.begin() as conn:
            _a_study_and_its_site(conn)
            conn.execute(
                sa.text(
                    "INSERT INTO jobs (uuid, type, status, study_id, site_id, register, source_file_name, created_by, "
                    "date_created, processed, "
                    "created, updated, unchanged, failed, warnings, attempts, cancel_requested, upload_size) "
                    "VALUES ('u', 't', 'IN_QUEUE', 1, 1, false, 'f', 'dm', '2026-01-01', 0, 0, 0, 0, 0, '[]', 0, "
                    "false, 0)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO job_log_entries (job_id, row, line, outcome, errors) VALUES (1, 1, 2, 'created', "
                    "'[]'), (1, 2, 3, 'failed', '[]')"
                )
            )
            # Rows that reference the rebuilt tables: SQLite would delete them with the old table if foreign keys were
            # on.
            conn.execute(
                sa.text(
                    "INSERT INTO participants (study_id, site_id, participant_id, participant_key, oid, status, "
                    "activity_status, created_at, updated_at) "
                    "VALUES (1, 1, 'P-1', 'p-1', 'SS_P1', 'available', 'Active', '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO audit_events (participant_id, at, username, action, source, changes) VALUES (1, "
                    "'2026-01-01', 'dm', 'create', 'api', '[]')"
                )
            )
            conn.execute(
                sa.text("INSERT INTO participant_mrns (participant_id, site_id, mrn, mrn_key) VALUES (1, 1, 'M', 'm')")
            )
        upgrade(db)
        with db.engine.begin() as conn:
            assert [
                conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("participants", "audit_events", "participant_mrns")
            ] == [1, 1, 1]
            assert conn.execute(sa.text("SELECT revision FROM studies")).scalar() == 0
            assert conn.execute(sa.text("SELECT row FROM job_log_entries ORDER BY row")).scalars().all() == [1, 2]
        downgrade(db, "0001")
        with db.engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT id, row FROM job_log_entries ORDER BY row")).all()
            assert [r.row for r in rows] == [1, 2] and len({r.id for r in rows}) == 2
            conn.execute(
                sa.text(
                    "INSERT INTO job_log_entries (job_id, row, line, outcome, errors) VALUES (1, 3, 4, 'created', '[]')"
                )
            )
        upgrade(db)
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM job_log_entries")).scalar() == 3
            assert [
                conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("participants", "audit_events", "participant_mrns")
            ] == [1, 1, 1]
    finally:
        db.dispose()


def test_going_below_0004_refuses_while_a_participant_names_a_missing_study_or_site_and_restores_the_keys_after(
    empty_url,
):
    """Between 0004 and 0006 participants have no foreign keys; 0004's downgrade and 0006's upgrade both
    refuse to restore them over rows that name a missing study or site."""
    db = Database(empty_url)
    try:
        upgrade(db, "0005")
        with db.engine.begin() as conn:
            _a_study_and_its_site(conn)
            for pk, study, site in ((1, 1, 1), (2, 1, 99), (3, 98, 1)):
                conn.execute(
                    sa.text(
                        "INSERT INTO participants (id, study_id, site_id, participant_id, participant_key, oid, "
                        "status, activity_status, created_at, updated_at) "
                        f"VALUES ({pk}, {study}, {site}, 'P-{pk}', 'p-{pk}', 'SS_P{pk}', 'available', 'Active', "
                        "'2026-01-01', '2026-01-01')"
                    )
                )
        with pytest.raises(RuntimeError, match="1 participants name a study that does not exist"):
            upgrade(db)
        for orphan, message in (
            ("study_id = 98", "1 participants name a study that no longer exists"),
            ("site_id = 99", "1 participants name a site that no longer exists"),
        ):
            with pytest.raises(RuntimeError, match=message):
                downgrade(db, "0003")
            with db.engine.begin() as conn:
                conn.execute(sa.text(f"DELETE FROM participants WHERE {orphan}"))
        downgrade(db, "0003")
        keys = {
            (fk["constrained_columns"][0], fk["referred_table"], fk["options"].get("ondelete"))
            for fk in sa.inspect(db.engine).get_foreign_keys("participants")
        }
        assert keys == {("study_id", "studies", "CASCADE"), ("site_id", "sites", "CASCADE")}
        upgrade(db, "0005")
        assert sa.inspect(db.engine).get_foreign_keys("participants") == []
        upgrade(db)  # 0006: the keys again, without a cascade
        keys = {
            (fk["constrained_columns"][0], fk["referred_table"], fk["options"].get("ondelete"))
            for fk in sa.inspect(db.engine).get_foreign_keys("participants")
        }
        assert keys == {("study_id", "studies", None), ("site_id", "sites", None)}
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT participant_id FROM participants")).scalars().all() == ["P-1"]
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO participants (id, study_id, site_id, participant_id, participant_key, oid, status, "
                    "activity_status, created_at, updated_at) "
                    "VALUES (4, 1, 99, 'P-4', 'p-4', 'SS_P4', 'available', 'Active', '2026-01-01', '2026-01-01')"
                )
            )
    finally:
        db.dispose()


def test_on_postgresql_participants_pages_keep_room_for_updates_until_downgraded(fresh_postgres_url):
    db = Database(fresh_postgres_url)
    options = sa.text("SELECT reloptions FROM pg_class WHERE relname = 'participants'")
    try:
        upgrade(db)
        with db.engine.connect() as conn:
            assert conn.execute(options).scalar() == ["fillfactor=50"]
        downgrade(db, "0004")
        with db.engine.connect() as conn:
            assert conn.execute(options).scalar() is None
    finally:
        db.dispose()
