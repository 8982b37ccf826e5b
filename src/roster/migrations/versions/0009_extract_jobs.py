"""Extract jobs (SPEC §11.3): jobs.include_participate_info, jobs.file_pii; the site index gains the ID key

- jobs.include_participate_info: the extract's `includeParticipateInfo=y` (false for other jobs).
- jobs.file_pii: whether the extract's stored file holds personal data (null until the worker wrote it), so
  that its download asks for PII permission only when it must.
- ix_participants_site_status (site_id, status) becomes (site_id, status, participant_key): the extract reads
  a site's available participants in ID order a page at a time, each page one index range. It serves every
  query the old index served.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("include_participate_info", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("jobs", sa.Column("file_pii", sa.Boolean(), nullable=True))
    op.drop_index("ix_participants_site_status", table_name="participants")
    op.create_index("ix_participants_site_status_key", "participants", ["site_id", "status", "participant_key"])


def downgrade() -> None:
    op.drop_index("ix_participants_site_status_key", table_name="participants")
    op.create_index("ix_participants_site_status", "participants", ["site_id", "status"])
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("file_pii")
        batch.drop_column("include_participate_info")
