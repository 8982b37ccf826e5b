"""`roster` as a client of a running server (SPEC §12): login, upload, jobs, setup — over HTTP only."""

from __future__ import annotations

import argparse
from typing import Any

from roster.client import jobs, setup


def register(sub: Any) -> None:
    """Adds the client commands to the `roster` parser; each takes `--url` (default `ROSTER_URL`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", metavar="URL", help="the Roster server (default: $ROSTER_URL, else http://127.0.0.1:8000)"
    )
    jobs.register(sub, common)
    setup.register(sub, common)
