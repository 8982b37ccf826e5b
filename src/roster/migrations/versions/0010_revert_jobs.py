"""Revert jobs (SPEC §11.2): jobs.revert_of, dry_run, and the deleted/restored counts

revert_of holds the reverted job's UUID and is unique, so a job is reverted at most once even when two
revert requests race.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("deleted", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("restored", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("dry_run", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("revert_of", sa.String(36), nullable=True))
        batch.create_unique_constraint("uq_jobs_revert_of", ["revert_of"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_revert_of", type_="unique")
        for name in ("revert_of", "dry_run", "restored", "deleted"):
            batch.drop_column(name)
