"""roster.fastsql on a real database."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from roster.fastsql import bulk_for


def test_an_error_inside_keyed_surfaces_as_itself(db):
    with pytest.raises(DBAPIError) as raised, db.transaction() as session:
        bulk = bulk_for(session)
        with bulk.index_lookups_only():
            session.connection().exec_driver_sql("SELECT * FROM no_such_table")
    # Not hidden behind "current transaction is aborted" from restoring the planner settings.
    assert "aborted" not in str(raised.value).lower()
    assert "no_such_table" in str(raised.value)
