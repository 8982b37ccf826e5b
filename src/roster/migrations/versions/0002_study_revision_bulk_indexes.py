"""studies.revision; lighter bulk tables; 64-bit upload sizes

studies.revision is moved by every writer of a study's participants (a bulk batch decided ahead of its
transaction checks it). The bulk path inserts a log entry per row and a participant per new row, so their
indexes are what a row costs: the log's key is (job_id, row) instead of a surrogate id with its own index
and sequence, and the participants' indexes on columns a bulk row never sets (uid, empi, and the access
code without register=y) leave out NULLs. On SQLite the log is a WITHOUT ROWID table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


_NOT_NULL = {name: sa.text(f"{name} IS NOT NULL") for name in ("access_code", "uid_key", "empi_key")}


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    # Uploads over 2 GiB (ROSTER_MAX_UPLOAD_BYTES allows them) overflowed a 32-bit size.
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("upload_size", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table("participants") as batch:
        batch.drop_constraint("uq_participants_access_code", type_="unique")
        batch.drop_index("ix_participants_study_uid")
        batch.drop_index("ix_participants_study_empi")
    op.create_index("uq_participants_access_code", "participants", ["access_code"], unique=True,
                    postgresql_where=_NOT_NULL["access_code"], sqlite_where=_NOT_NULL["access_code"])
    op.create_index("ix_participants_study_uid", "participants", ["study_id", "uid_key"],
                    postgresql_where=_NOT_NULL["uid_key"], sqlite_where=_NOT_NULL["uid_key"])
    op.create_index("ix_participants_study_empi", "participants", ["study_id", "empi_key"],
                    postgresql_where=_NOT_NULL["empi_key"], sqlite_where=_NOT_NULL["empi_key"])
    # SQLite: WITHOUT ROWID, so the table itself is the (job_id, row) tree and a row is one insert less.
    with op.batch_alter_table("job_log_entries", recreate="always", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_constraint("uq_job_log_entries_job_id_row", type_="unique")
        batch.drop_constraint("pk_job_log_entries", type_="primary")
        batch.drop_column("id")
        batch.create_primary_key("pk_job_log_entries", ["job_id", "row"])


def downgrade() -> None:
    # An identity column numbers the existing rows itself (PostgreSQL); SQLite numbers them on the copy.
    with op.batch_alter_table("job_log_entries", recreate="always", table_kwargs={"sqlite_with_rowid": True}) as batch:
        batch.drop_constraint("pk_job_log_entries", type_="primary")
        batch.add_column(sa.Column("id", sa.Integer(), sa.Identity(), nullable=False), insert_before="job_id")
        batch.create_primary_key("pk_job_log_entries", ["id"])
        batch.create_unique_constraint("uq_job_log_entries_job_id_row", ["job_id", "row"])
    for name in ("ix_participants_study_empi", "ix_participants_study_uid", "uq_participants_access_code"):
        op.drop_index(name, "participants")
    with op.batch_alter_table("participants") as batch:
        batch.create_index("ix_participants_study_uid", ["study_id", "uid_key"])
        batch.create_index("ix_participants_study_empi", ["study_id", "empi_key"])
        batch.create_unique_constraint("uq_participants_access_code", ["access_code"])
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("upload_size", type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("revision")
