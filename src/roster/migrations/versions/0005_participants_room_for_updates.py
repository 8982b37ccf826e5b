"""PostgreSQL: participants' pages keep half their room for updates (fillfactor 50)

An UPDATE that finds room on its row's page and changes no indexed column writes a heap-only tuple: no new
entry in any of the table's indexes (among them two unique ones, whose check also reads the row's old
version). A bulk update of contact fields changes no indexed column (with register=y, a row given an access
code does, and is updated as before). A bulk re-upload updates every row it names, so a page needs room for
all of its rows at once, hence half; the old versions are pruned when a page is next visited, and the room
comes back. Bulk updates get cheaper for a participants table about twice the size on disk (figures in
bench/HISTORY.md). Pages already written keep their fill until the table is rewritten (VACUUM FULL).
SQLite has no such setting.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 10:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE participants SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE participants RESET (fillfactor)")
