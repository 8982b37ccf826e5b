"""Helpers that set up studies, sites, users and roles through the setup API, as a client would, and
that start a real `roster serve` process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from fastapi.testclient import TestClient

from roster.auth.tokens import TokenService
from roster.db import Database

P = "/pages/auth/api"
PASSWORD = "correct-horse-battery"


@dataclass
class Api:
    client: TestClient
    db: Database
    tokens: TokenService
    _admin: dict[str, str] = field(default_factory=dict)

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(username)[0]}"}

    @property
    def admin(self) -> dict[str, str]:
        """Headers of a bootstrap admin, written directly (there is no admin to create the first one; it
        only ever uses tokens, so it has no password to hash)."""
        if not self._admin:
            from roster.auth import service
            from roster.auth.models import User

            with self.db.transaction() as session:
                if service.find_user(session, "root-admin") is None:
                    session.add(User(username="root-admin", username_key="root-admin", enabled=True, admin=True))
            self._admin = self.headers("root-admin")
        return self._admin

    def ok(self, response, status: int = 200) -> Any:
        assert response.status_code == status, (response.status_code, response.text)
        return response.json() if response.content and "json" in response.headers.get("content-type", "") else response

    def study(self, oid: str = "S_STUDY(TEST)", **fields: Any) -> dict[str, Any]:
        body = {"oid": oid, "name": f"Study {oid}", **fields}
        return self.ok(self.client.post(f"{P}/admin/studies", json=body, headers=self.admin), 201)

    def site(self, study_oid: str, oid: str, **fields: Any) -> dict[str, Any]:
        body = {"oid": oid, "name": f"Site {oid}", **fields}
        return self.ok(self.client.post(f"{P}/admin/studies/{study_oid}/sites", json=body, headers=self.admin), 201)

    def user(
        self, username: str, role: str | None = None, study: str | None = None, site: str | None = None, **fields: Any
    ) -> dict[str, str]:
        """Creates the user (and a role when given) and returns its auth headers."""
        r = self.client.post(
            f"{P}/admin/users", json={"username": username, "password": PASSWORD, **fields}, headers=self.admin
        )
        assert r.status_code in (201, 409), r.text
        if role:
            self.grant(username, role, study, site)
        return self.headers(username)

    def grant(self, username: str, role: str, study: str | None, site: str | None = None) -> dict[str, Any]:
        body = {"studyOid": study, "role": role, **({"siteOid": site} if site else {})}
        return self.ok(self.client.post(f"{P}/admin/users/{username}/roles", json=body, headers=self.admin), 201)

    def setup_study(
        self, study: str = "S_STUDY(TEST)", sites: tuple[str, ...] = ("S_SITE_A(TEST)", "S_SITE_B(TEST)"), **fields: Any
    ) -> dict[str, Any]:
        """A study with sites; returns what the API answered for the study."""
        created = self.study(study, **fields)
        for oid in sites:
            self.site(study, oid)
        return created


def wait_until_listening(process: subprocess.Popen, base_url: str, path: str = "/healthz", timeout: float = 90) -> None:
    """Until `roster serve` answers `path`; fails at once if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, process.communicate()
        try:
            httpx.get(base_url + path, timeout=2)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "roster serve did not start listening"
            time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(env: dict[str, str], cwd: Path, log_path: Path, *, attempts: int = 3) -> tuple[subprocess.Popen, str]:
    """`roster serve` on a free loopback port, and its base URL once *this* process listens there and
    /healthz answers. A port found free can be taken by another process (other test sessions run on the
    same machine) before the server binds it; /healthz would then answer from that process. So the
    listening socket is checked to be this process's, and a server that could not bind is started again
    on another port."""
    for _ in range(attempts):
        port = free_port()
        with open(log_path, "ab") as log:  # the server's output, for a failing test's message
            process = subprocess.Popen(
                [sys.executable, "-m", "roster.cli", "serve", "--port", str(port)],
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            listening = any(
                c.status == psutil.CONN_LISTEN and c.laddr.port == port
                for c in psutil.Process(process.pid).net_connections("tcp")
            )
            if listening:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        return process, f"http://127.0.0.1:{port}"
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        if process.poll() is None:
            process.kill()
            process.wait()
            raise AssertionError("roster serve did not start within 60 s")
    raise AssertionError(f"roster serve exited {attempts} times at start (exit code {process.returncode})")
