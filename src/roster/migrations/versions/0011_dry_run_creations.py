"""Dry runs (SPEC §11.1): dry_run_creations, the participants a running dry run would have created

In a study that generates IDs, a dry run's later batches look up what its earlier batches would have
created (a later row may name a generated ID; the generator skips IDs taken before) by ID key, with the job
as scope, as the in-file duplicate check looks up the job's log. No foreign key, as for the log (0003).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dry_run_creations",
        sa.Column("participant_key", sa.String(length=100), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(length=30), nullable=False),
        sa.Column("contact_values", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("participant_key", "job_id", name=op.f("pk_dry_run_creations")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("dry_run_creations")
