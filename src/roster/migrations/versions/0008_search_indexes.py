"""Search indexes: ID and name prefixes, email and MRN exact (roster.participants.search)

- PostgreSQL: participant_key, first_name, last_name and email_address get the "C" collation, so that their
  btree order is code point order as on SQLite and a prefix is one index range whatever the database's
  locale. Equality is unchanged (deterministic collations compare bytes); the unique key on
  (participant_key, study_id) is rebuilt and then serves ID prefixes as well.
- Both backends: lower(last_name), lower(first_name), lower(email_address) (each with study_id), and
  participant_mrns.mrn_key. The cost on the bulk benchmark is in bench/HISTORY.md.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = {"participant_key": 100, "first_name": 35, "last_name": 35, "email_address": 255}
_LOWER = {"ix_participants_last_name_lower": "last_name", "ix_participants_first_name_lower": "first_name",
          "ix_participants_email_lower": "email_address"}


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite compares by code point already (BINARY)
    for column, length in _COLUMNS.items():
        op.alter_column("participants", column, type_=sa.String(length, collation=collation), existing_nullable=column != "participant_key")


def upgrade() -> None:
    _collate("C")
    for name, column in _LOWER.items():
        op.create_index(name, "participants", [sa.text(f"lower({column})"), "study_id"])
    op.create_index("ix_participant_mrns_mrn_key", "participant_mrns", ["mrn_key"])


def downgrade() -> None:
    op.drop_index("ix_participant_mrns_mrn_key", table_name="participant_mrns")
    for name in _LOWER:
        op.drop_index(name, table_name="participants")
    _collate(None)
