"""Helpers that set up studies, sites, users and roles through the setup API, as a client would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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

    def user(self, username: str, role: str | None = None, study: str | None = None, site: str | None = None, **fields: Any) -> dict[str, str]:
        """Creates the user (and a role when given) and returns its auth headers."""
        r = self.client.post(f"{P}/admin/users", json={"username": username, "password": PASSWORD, **fields}, headers=self.admin)
        assert r.status_code in (201, 409), r.text
        if role:
            self.grant(username, role, study, site)
        return self.headers(username)

    def grant(self, username: str, role: str, study: str | None, site: str | None = None) -> dict[str, Any]:
        body = {"studyOid": study, "role": role, **({"siteOid": site} if site else {})}
        return self.ok(self.client.post(f"{P}/admin/users/{username}/roles", json=body, headers=self.admin), 201)

    def setup_study(self, study: str = "S_STUDY(TEST)", sites: tuple[str, ...] = ("S_SITE_A(TEST)", "S_SITE_B(TEST)"), **fields: Any) -> dict[str, Any]:
        """A study with sites; returns what the API answered for the study."""
        created = self.study(study, **fields)
        for oid in sites:
            self.site(study, oid)
        return created
