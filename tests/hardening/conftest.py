"""Fixtures shared with the foundation tests (apps with other settings on the same database)."""

from tests.foundation.conftest import make_client  # noqa: F401  (a fixture)
