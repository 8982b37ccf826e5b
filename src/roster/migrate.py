"""Apply Alembic migrations programmatically (used by `roster db upgrade`, `roster serve` and tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from roster.db import Database


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "roster:migrations")
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
