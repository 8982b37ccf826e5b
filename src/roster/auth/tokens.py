"""Issuing and verifying JWTs (SPEC §2). Algorithms are pinned from configuration."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any

import jwt

from roster.config import Settings
from roster.errors import Unauthorized


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if not settings.uses_public_keys:
            # Resolved now, so that an unusable secret file stops start-up instead of failing requests.
            _ = self._hmac_secret

    @cached_property
    def _hmac_secret(self) -> str:
        return self.settings.signing_secret()

    @cached_property
    def _public_key(self) -> Any:
        if self.settings.jwt_public_key_file:
            return self.settings.jwt_public_key_file.read_bytes()
        return None

    @cached_property
    def _jwks(self) -> jwt.PyJWKClient | None:
        return jwt.PyJWKClient(self.settings.jwks_url, cache_keys=True, timeout=10) if self.settings.jwks_url else None

    @property
    def can_issue(self) -> bool:
        """Roster signs its own tokens only with an HMAC secret; an external IdP issues the others."""
        return not self.settings.uses_public_keys

    def issue(self, username: str) -> tuple[str, int]:
        s = self.settings
        now = dt.datetime.now(dt.UTC)
        ttl = s.token_ttl_minutes * 60
        claims: dict[str, Any] = {"sub": username, s.jwt_username_claim: username, "iat": now, "exp": now + dt.timedelta(seconds=ttl)}
        if s.jwt_issuer:
            claims["iss"] = s.jwt_issuer
        if s.jwt_audience:
            claims["aud"] = s.jwt_audience
        return jwt.encode(claims, self._hmac_secret, algorithm=s.jwt_algorithms[0]), ttl

    def _verification_key(self, token: str) -> Any:
        if not self.settings.uses_public_keys:
            return self._hmac_secret
        if self._public_key is not None:
            return self._public_key
        assert self._jwks is not None
        return self._jwks.get_signing_key_from_jwt(token).key

    def username_from(self, token: str) -> str:
        """The username a valid token names; anything wrong → 401 Unauthorized."""
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
            # Pinned: `none` and any algorithm not configured are refused before any key is chosen.
            if header.get("alg") not in s.jwt_algorithms:
                raise Unauthorized("token algorithm not accepted")
            claims = jwt.decode(
                token,
                self._verification_key(token),
                algorithms=s.jwt_algorithms,
                audience=s.jwt_audience or None,
                issuer=s.jwt_issuer or None,
                options={"require": ["exp"], "verify_aud": bool(s.jwt_audience)},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token rejected: {type(exc).__name__}") from None
        username = claims.get(s.jwt_username_claim) or claims.get("sub")
        if not isinstance(username, str) or not username:
            raise Unauthorized("token names no user")
        return username
