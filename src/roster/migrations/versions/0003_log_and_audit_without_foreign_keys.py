"""The bulk-actions log and the audit trail without foreign keys

Both are append-only records written a row at a time by the bulk path: a log entry per data row, an
audit event per created or changed participant. On PostgreSQL each foreign key is a trigger that, per
inserted row, looks up and locks (FOR KEY SHARE) the referenced row: for the log, the same job row a
hundred thousand times, which made the log's INSERTs markedly slower (bench/HISTORY.md). Neither key
protects anything the application does not already ensure:
- a log entry is written only in the transaction whose fenced checkpoint proves the job still exists
  and is ours, and deleting a job deletes the job row first, then its log (roster.bulk.jobs_service);
- an audit event is written in the transaction that creates or changes its participant, and
  Roster never deletes participants (removal is a status). An audit trail should not vanish with what it
  describes anyway.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LOG_FK = "fk_job_log_entries_job_id_jobs"
_AUDIT_FK = "fk_audit_events_participant_id_participants"


def upgrade() -> None:
    # SQLite rebuilds the tables; the log stays a WITHOUT ROWID table.
    with op.batch_alter_table("job_log_entries", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_constraint(_LOG_FK, type_="foreignkey")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint(_AUDIT_FK, type_="foreignkey")


def downgrade() -> None:
    # The restored keys need every row's job and participant. A log entry of a deleted job is garbage; an
    # audit event is a record that must not vanish quietly: the downgrade stops and says how many there are.
    orphans = op.get_bind().execute(
        sa.text("SELECT count(*) FROM audit_events WHERE participant_id NOT IN (SELECT id FROM participants)")
    ).scalar()
    if orphans:
        raise RuntimeError(f"{orphans} audit events name participants that no longer exist; "
                           "keep or move them before downgrading below 0003")
    op.execute("DELETE FROM job_log_entries WHERE job_id NOT IN (SELECT id FROM jobs)")
    with op.batch_alter_table("job_log_entries", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.create_foreign_key(_LOG_FK, "jobs", ["job_id"], ["id"], ondelete="CASCADE")
    with op.batch_alter_table("audit_events") as batch:
        batch.create_foreign_key(_AUDIT_FK, "participants", ["participant_id"], ["id"], ondelete="CASCADE")
