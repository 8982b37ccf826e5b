from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from roster.config import Settings
from tests.live import LiveServer, start_live_server


@pytest.fixture
def start_server(settings: Settings, db) -> Iterator[Callable[..., LiveServer]]:
    """Starts Roster (API and one embedded worker, so jobs complete) on the test database."""
    started: list[LiveServer] = []

    def start(**overrides) -> LiveServer:
        live = start_live_server(
            settings.model_copy(update={"embedded_workers": 1, "worker_poll_seconds": 0.1, **overrides})
        )
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture
def server(start_server) -> LiveServer:
    return start_server()
