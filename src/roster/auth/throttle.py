"""Sign-in throttling (SPEC §14), counted in the database so that every API process shares the counts.

When a username has `per_user` failures within the window, or a client address `per_address`, further
attempts answer 429 tooManyAttempts with Retry-After (until enough of them have left the window), and
no password is checked. The check and the recording of a failure both happen while the attempt holds
its hashing slot (roster.auth.signin), so a burst of guesses cannot all pass the check before the first
failures are written: at most one per hashing slot slips past the limit. Successful sign-ins are not
counted, so many people signing in at once from behind one proxy are not throttled. A success clears its
username's failures, never its address's (an attacker with one account of its own must not be able to
reset the count of an address it guesses from). Unknown usernames are counted like known ones, so a 429
tells nothing about who exists. Flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from roster import codes
from roster.auth.models import SignInFailure
from roster.config import Settings
from roster.db import utcnow
from roster.errors import DomainError


@dataclass(frozen=True)
class Limits:
    per_user: int
    per_address: int
    window: dt.timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.signin_max_failures_per_user,
            settings.signin_max_failures_per_address,
            dt.timedelta(minutes=settings.signin_window_minutes),
        )


def username_key(username: str) -> str:
    """The username as counted: lower case (usernames are unique regardless of case), storable whatever was sent."""
    return username.lower().encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")[:200]


def address_key(address: str | None) -> str:
    return (address or "unknown")[:100]


def _blocked_until(
    session: Session, where: ColumnElement[bool], limit: int, since: dt.datetime, window: dt.timedelta
) -> dt.datetime | None:
    """When the `limit`-th newest failure in the window leaves it (the count falls below the limit), or None."""
    at = session.scalar(
        select(SignInFailure.at)
        .where(where, SignInFailure.at > since)
        .order_by(SignInFailure.at.desc())
        .offset(limit - 1)
        .limit(1)
    )
    return at + window if at is not None else None


def check(session: Session, limits: Limits, user_key: str, address: str) -> None:
    """429 tooManyAttempts (with Retry-After) while the username or the address is throttled."""
    now = utcnow()
    since = now - limits.window
    until = [
        t
        for t in (
            _blocked_until(session, SignInFailure.username_key == user_key, limits.per_user, since, limits.window),
            _blocked_until(session, SignInFailure.client_address == address, limits.per_address, since, limits.window),
        )
        if t is not None
    ]
    if until:
        retry_after = max(1, math.ceil((max(until) - now).total_seconds()))
        raise DomainError(
            codes.TOO_MANY_ATTEMPTS, 429, {"retryAfter": retry_after}, headers={"Retry-After": str(retry_after)}
        )


def failed(session: Session, limits: Limits, user_key: str, address: str) -> None:
    now = utcnow()
    # Failures that have left the window count for nothing: dropped as new ones come in.
    session.execute(delete(SignInFailure).where(SignInFailure.at <= now - limits.window))
    session.add(SignInFailure(username_key=user_key, client_address=address, at=now))
    session.flush()


def succeeded(session: Session, user_key: str) -> None:
    session.execute(delete(SignInFailure).where(SignInFailure.username_key == user_key))
