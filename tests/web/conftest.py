"""Browser tests of the Bulk Actions Log page: a real uvicorn server on a free 127.0.0.1 port in a
thread (with an embedded worker, so jobs complete), and Debian's Chromium driven by Playwright.

They prove the page, not the database, so they run on the SQLite backend only (the PostgreSQL
parametrisation of this directory is deselected). Without Chromium they skip, except under `CI`,
where a missing browser is a failure.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from roster.app import create_app
from roster.config import Settings
from tests.support import PASSWORD, Api
from tests.web.constants import COORDINATOR, QUIET_SITE, QUIET_STUDY, SITE_A, SITE_B, STUDY

HERE = Path(__file__).parent
# Debian's Chromium (Playwright cannot download its own browser here); another path via ROSTER_CHROMIUM.
CHROMIUM = Path(os.environ.get("ROSTER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run this directory once (SQLite): deselect its PostgreSQL parametrisation instead of skipping it."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        in_here = Path(str(item.path)).is_relative_to(HERE)
        if in_here and callspec is not None and callspec.params.get("database_url") == "postgresql":
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    from playwright.sync_api import expect

    # A busy 2-core machine runs these next to the rest of the suite: wait up to 15 s, not 5.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class LiveServer:
    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()


@pytest.fixture
def start_server(settings: Settings, db) -> Iterator[Callable[..., LiveServer]]:
    """Starts Roster (API, page and one embedded worker) on the test database; settings overridable."""
    started: list[LiveServer] = []

    def start(batch_sinks=None, **overrides) -> LiveServer:
        live_settings = settings.model_copy(update={"embedded_workers": 1, "worker_poll_seconds": 0.1, **overrides})
        app = create_app(live_settings)
        app.state.batch_sinks = batch_sinks  # the embedded worker's (roster.bulk.worker.start_embedded)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-live", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        live = LiveServer(f"http://127.0.0.1:{port}", live_settings, server, thread, sock)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture
def server(start_server) -> LiveServer:
    return start_server()


@dataclass
class PageWatch:
    """What the page did that a test should never see: script errors, CSP violations, dialogs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def page(browser, watch: PageWatch) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))

    def on_console(message) -> None:
        # Failed requests (401 for a wrong password, 4xx answers the page explains) are logged by the
        # browser itself; anything else at error level (a CSP violation, an exception) is a bug.
        if message.type == "error" and "Failed to load resource" not in message.text:
            watch.errors.append(f"console: {message.text}")

    tab.on("console", on_console)
    yield tab
    context.close()
    assert watch.errors == [], watch.errors


@dataclass
class WebSetup:
    study: str = STUDY
    site_a: str = SITE_A
    site_b: str = SITE_B
    quiet_study: str = QUIET_STUDY
    username: str = COORDINATOR
    password: str = PASSWORD


@pytest.fixture
def web_setup(api: Api) -> WebSetup:
    """A study with Participate active and two sites, a coordinator at site A (viewer at site B), and
    a second study without Participate where the coordinator works at study level."""
    api.study(STUDY, name="JUNO Heart Study", participateActive=True)
    api.site(STUDY, SITE_A, name="Boston Medical Center")
    api.site(STUDY, SITE_B, name="London Royal Infirmary")
    api.study(QUIET_STUDY, name="Quiet Registry", participateActive=False)
    api.site(QUIET_STUDY, QUIET_SITE, name="Quiet Clinic")
    api.user(COORDINATOR, "clinical_research_coordinator", STUDY, SITE_A)
    api.grant(COORDINATOR, "viewer", STUDY, SITE_B)
    api.grant(COORDINATOR, "data_manager", QUIET_STUDY)
    return WebSetup()
