"""Hardening (SPEC §14): participants' foreign keys back, ended tokens, sign-in failures

- Participants reference their study and site through foreign keys again (0004 dropped them for speed):
  in a clinical registry integrity comes first. No ON DELETE CASCADE: a study or site that still has
  participants cannot be deleted. The cost on the bulk benchmark is in bench/HISTORY.md.
- `users.tokens_valid_after`: tokens issued before it are ended (a password change, a disable).
- `revoked_tokens`: tokens ended through the revoke endpoint, until they would have expired.
- `sign_in_failures`: the sign-in throttle's counts, shared by every API process.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# constraint -> (column, referred table, what one row of it is called)
_KEYS = {"fk_participants_study_id_studies": ("study_id", "studies", "study"), "fk_participants_site_id_sites": ("site_id", "sites", "site")}


def upgrade() -> None:
    # The keys need every participant's study and site: stop and say how many do not have them.
    for column, table, one in _KEYS.values():
        orphans = op.get_bind().execute(
            sa.text(f"SELECT count(*) FROM participants WHERE {column} NOT IN (SELECT id FROM {table})")
        ).scalar()
        if orphans:
            raise RuntimeError(f"{orphans} participants name a {one} that does not exist; "
                               "move or delete them before upgrading to 0006")
    # SQLite rebuilds the table (its indexes, the partial ones included, are created again).
    with op.batch_alter_table("participants") as batch:
        for name, (column, table, _one) in _KEYS.items():
            batch.create_foreign_key(name, table, [column], ["id"])

    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("tokens_valid_after", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "revoked_tokens",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_revoked_tokens")),
    )
    op.create_index(op.f("ix_revoked_tokens_expires_at"), "revoked_tokens", ["expires_at"])

    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username_key", sa.String(200), nullable=False),
        sa.Column("client_address", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    op.create_index("ix_sign_in_failures_username_at", "sign_in_failures", ["username_key", "at"])
    op.create_index("ix_sign_in_failures_address_at", "sign_in_failures", ["client_address", "at"])
    op.create_index(op.f("ix_sign_in_failures_at"), "sign_in_failures", ["at"])


def downgrade() -> None:
    op.drop_table("sign_in_failures")
    op.drop_table("revoked_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("tokens_valid_after")
    with op.batch_alter_table("participants") as batch:
        for name in _KEYS:
            batch.drop_constraint(name, type_="foreignkey")
