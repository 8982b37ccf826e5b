"""The client's connection to a Roster server: where it is, the stored token, and refusals as exit 2.

Only HTTP: the client never opens the database, so it works against any Roster it can reach.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
from platformdirs import user_config_path

DEFAULT_URL = "http://127.0.0.1:8000"
P = "/pages/auth/api"
# A refused request, an unreachable server or a bad argument; `upload --wait` adds 1 and 3 (SPEC §12).
EXIT_REFUSED = 2


def server_url(option: str | None) -> str:
    return (option or os.environ.get("ROSTER_URL") or DEFAULT_URL).rstrip("/")


def path_part(value: str) -> str:
    """OIDs such as `S_JU0(TEST)` travel percent-encoded in the path (as the OpenClinica sample does)."""
    return quote(value, safe="")


def fail(message: str, status: int = EXIT_REFUSED) -> NoReturn:
    print(f"roster: {message}", file=sys.stderr)
    raise SystemExit(status)


class TokenStore:
    """Tokens per server URL in the user's config directory (`~/.config/roster/tokens.json` on Linux),
    readable by the user only, as other command-line clients keep theirs."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or user_config_path("roster")) / "tokens.json"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, url: str) -> str | None:
        entry = self._load().get(url)
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            return None
        expires = entry.get("expiresAt")
        if isinstance(expires, int | float) and expires <= time.time():
            return None
        return entry["token"]

    def put(self, url: str, username: str, token: str, expires_in: int) -> None:
        data = self._load()
        data[url] = {"username": username, "token": token, "expiresAt": int(time.time()) + expires_in}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        # Created 0600 (not chmod-ed after the fact: the token is never readable by others, even briefly).
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)


class Server:
    """An httpx client for one Roster server, with the token of `ROSTER_TOKEN` or of `roster login`."""

    def __init__(self, url: str | None = None, *, with_token: bool = True, timeout: float = 60.0) -> None:
        self.url = server_url(url)
        self.store = TokenStore()
        token = (os.environ.get("ROSTER_TOKEN") or self.store.get(self.url)) if with_token else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202, 204), **kwargs: Any
    ) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.url}: {type(exc).__name__}: {exc}")
        if response.status_code not in ok:
            refused(response)
        return response

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if response.status_code != 200:
                    response.read()
                    refused(response)
                yield response
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.url}: {type(exc).__name__}: {exc}")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, headers={"Accept": "application/json"}, **kwargs).json()


def refused(response: httpx.Response) -> NoReturn:
    """The server's code and sentence on stderr (`roster: <code>: <sentence> (HTTP <status>)`), exit 2.
    Field errors follow, one a line. OpenSpecimen's path answers a list of `{code, message}`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = {"message": body[0].get("code"), "detail": body[0].get("message")}
    lines = []
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        lines.append(f"{body['message']}: {body.get('detail') or ''} (HTTP {response.status_code})")
        params = body["params"] if isinstance(body.get("params"), dict) else {}
        for problem in [*(body.get("errors") or []), *(params.get("errors") or [])]:
            if isinstance(problem, dict):
                where = problem.get("field") or problem.get("column") or ""
                lines.append(f"  {where}: {problem.get('code') or ''} {problem.get('message') or ''}".rstrip())
    else:
        lines.append(f"HTTP {response.status_code}: {response.text[:200]}")
    if response.status_code == 401:
        lines.append("  (sign in with `roster login`, or set ROSTER_TOKEN)")
    fail("\n".join(lines))
