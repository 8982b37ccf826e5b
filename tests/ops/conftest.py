"""Fixtures for operating Roster (SPEC §13): the bulk fixture (a study, a data manager, uploads through the
endpoint) and the jobs `world` (jobs written straight into the tables), and a log handler that formats
records the way `roster serve` does."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from roster.config import Settings
from roster.logs import RequestIdFilter, json_formatter
from tests.bulk.conftest import bulk  # noqa: F401 (fixture)
from tests.jobs.conftest import world  # noqa: F401 (fixture)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every record of this test as `ROSTER_LOG_FORMAT=json` writes it (the handler roster.logs configures)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def settings_with(settings: Settings, **changes) -> Settings:
    return settings.model_copy(update=changes)
