"""Ending tokens before they expire (SPEC §14): one token through the revoke endpoint, or every token of a
user at a password change or a disable. Flushes, never commits.

A revoked token's key (its `jti`) is kept in `revoked_tokens` until the token would have expired. A user's
`tokens_valid_after` ends every token issued before it, Roster's and an identity provider's alike, and
re-enabling the user does not move it back: tokens from before the disable stay ended.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from roster.auth.models import RevokedToken, User
from roster.auth.tokens import VerifiedToken
from roster.db import utcnow
from roster.errors import Unauthorized


def end_all_tokens(user: User) -> None:
    user.tokens_valid_after = utcnow()


def revoke(session: Session, token: VerifiedToken) -> None:
    now = utcnow()
    # Entries whose tokens have expired anyway are dropped as new ones come in.
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    if token.expires_at > now and session.get(RevokedToken, token.key) is None:
        session.add(RevokedToken(key=token.key, expires_at=token.expires_at))
    session.flush()


def require_live(session: Session, user: User, token: VerifiedToken) -> None:
    """401 for a token the user's password change or disable ended, or one revoked on its own."""
    valid_after = user.tokens_valid_after
    if valid_after is not None and (token.issued_at is None or token.issued_at < valid_after):
        raise Unauthorized("token ended")
    if session.scalar(select(RevokedToken.key).where(RevokedToken.key == token.key)) is not None:
        raise Unauthorized("token revoked")
