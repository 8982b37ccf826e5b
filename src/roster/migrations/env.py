from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from roster.models import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from roster.config import get_settings
    from roster.db import make_engine
    from roster.migrate import lock_migrations

    # The `alembic` command itself (development): the same lock as roster.migrate.upgrade takes.
    engine = make_engine(get_settings().database_url)
    with engine.begin() as conn:
        lock_migrations(conn)
        run(conn)
    engine.dispose()
