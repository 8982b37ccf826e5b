"""Worker heartbeats; jobs.upload_purged_at (SPEC §13)

worker_heartbeats: one row per running worker process (host, pid, version, threads, started, last seen,
current jobs), listed by GET P/admin/workers and read by `roster worker --check`. jobs.upload_purged_at:
when retention deleted the job's stored upload, so that failedRows answers 410 errorCode.fileExpired
instead of 409 for a damaged upload.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host", sa.String(100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_jobs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_worker_heartbeats"),
    )
    op.create_index("ix_worker_heartbeats_host", "worker_heartbeats", ["host"])
    op.create_index("ix_worker_heartbeats_last_seen", "worker_heartbeats", ["last_seen"])
    op.add_column("jobs", sa.Column("upload_purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("upload_purged_at")
    op.drop_index("ix_worker_heartbeats_last_seen", table_name="worker_heartbeats")
    op.drop_index("ix_worker_heartbeats_host", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
