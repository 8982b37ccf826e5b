"""Issuing and verifying JWTs (SPEC §2). Algorithms are pinned from configuration."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jwt

from roster.config import Settings
from roster.errors import Unauthorized

# Longer than any username Roster accepts (the setup API allows 100): such a claim names nobody.
MAX_USERNAME_CLAIM = 200


def can_name_a_user(value: object) -> bool:
    """A claim or form value that could be a username: a non-empty string, not too long, that the
    database can take (no NUL, which PostgreSQL refuses; no lone surrogate, which is not UTF-8)."""
    if not isinstance(value, str) or not value or len(value) > MAX_USERNAME_CLAIM or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class VerifiedToken:
    username: str
    issued_at: dt.datetime | None  # None: the token has no `iat`
    expires_at: dt.datetime
    key: str  # names the token in the revocation list: its `jti`, else a hash of its claims


def _revocation_key(claims: dict[str, Any]) -> str:
    jti = claims.get("jti")
    if isinstance(jti, str) and 0 < len(jti) <= 64 and jti.isascii():
        return jti
    # Not the token's text: base64url has spare bits, so one signed token can be spelled several ways.
    return hashlib.sha256(json.dumps(claims, sort_keys=True, default=str).encode()).hexdigest()


def _timestamp(value: object) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


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
        now = dt.datetime.now(dt.UTC).timestamp()
        ttl = s.token_ttl_minutes * 60
        # `iat` keeps its microseconds (a JWT NumericDate may): a token issued just after a password change
        # must count as newer than the change (users.tokens_valid_after). `jti` names it for revocation.
        claims: dict[str, Any] = {
            "sub": username,
            s.jwt_username_claim: username,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
        }
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
        return self.verify(token).username

    def verify(self, token: str) -> VerifiedToken:
        """The valid token's user, times and revocation key; anything wrong → 401 Unauthorized."""
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
        if not isinstance(username, str) or not can_name_a_user(username):
            raise Unauthorized("token names no user")
        expires_at = _timestamp(claims.get("exp"))
        if expires_at is None:
            raise Unauthorized("token expiry unusable")
        return VerifiedToken(username, _timestamp(claims.get("iat")), expires_at, _revocation_key(claims))
