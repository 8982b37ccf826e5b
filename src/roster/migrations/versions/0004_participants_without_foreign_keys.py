"""Participants without foreign keys to their study and site

On PostgreSQL each foreign key is a trigger that, per inserted row, looks up and locks (FOR KEY SHARE) the
referenced row: for a bulk batch, the same study row and the same site row a thousand times each, which
made the bulk writer's INSERT markedly slower (bench/HISTORY.md). The keys guard nothing Roster does not
already ensure: a participant is written only with the study and site its request or job was checked
against (the bulk writer holds the study row locked while it writes), and Roster deletes neither studies nor
sites (a site is closed or locked by its status). Migration 0003 made the same call for the bulk-actions log
and the audit trail.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# constraint -> (column, referred table, what one row of it is called)
_KEYS = {"fk_participants_study_id_studies": ("study_id", "studies", "study"), "fk_participants_site_id_sites": ("site_id", "sites", "site")}


def upgrade() -> None:
    # SQLite rebuilds the table (its indexes, the partial ones included, are created again).
    with op.batch_alter_table("participants") as batch:
        for name in _KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    # The restored keys need every participant's study and site: stop and say how many do not have them.
    for column, table, one in _KEYS.values():
        orphans = op.get_bind().execute(
            sa.text(f"SELECT count(*) FROM participants WHERE {column} NOT IN (SELECT id FROM {table})")
        ).scalar()
        if orphans:
            raise RuntimeError(f"{orphans} participants name a {one} that no longer exists; "
                               "move or keep them before downgrading below 0004")
    with op.batch_alter_table("participants") as batch:
        for name, (column, table, _one) in _KEYS.items():
            batch.create_foreign_key(name, table, [column], ["id"], ondelete="CASCADE")
