"""The token endpoint's sign-in (SPEC §2, §14): throttled, then one bounded password hash.

The database is used in two short transactions around the hash, never during it: the first checks the
throttle, counts the attempt and reads the user's hash; the second (after a success only) clears the
username's failures. In between the request waits for a hashing slot (roster.auth.passwords) holding no
thread and no connection. An unknown username, a wrong password and a disabled user cost one hash each
and get the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from roster import codes
from roster.auth import throttle
from roster.auth.models import User
from roster.auth.passwords import PasswordHashing
from roster.auth.tokens import can_name_a_user
from roster.db import Database
from roster.errors import DomainError


@dataclass(frozen=True)
class _Attempt:
    attempt_id: int
    username: str | None
    password_hash: str | None
    enabled: bool


def _begin(db: Database, limits: throttle.Limits, user_key: str, address: str, username: str) -> _Attempt:
    with db.transaction() as session:
        attempt_id = throttle.begin_attempt(session, limits, user_key, address)
        user = None
        if can_name_a_user(username):
            user = session.execute(
                select(User.username, User.password_hash, User.enabled).where(User.username_key == username.lower())
            ).one_or_none()
        if user is None:
            return _Attempt(attempt_id, None, None, False)
        return _Attempt(attempt_id, user.username, user.password_hash, bool(user.enabled))


def _succeeded(db: Database, user_key: str, attempt_id: int) -> None:
    with db.transaction() as session:
        throttle.succeeded(session, user_key, attempt_id)


def invalid_credentials() -> DomainError:
    return DomainError(codes.INVALID_CREDENTIALS, 401, headers={"WWW-Authenticate": "Bearer"})


async def sign_in(db: Database, hashing: PasswordHashing, limits: throttle.Limits, username: str, password: str, address: str | None) -> str:
    """The signed-in user's name as created; 429 tooManyAttempts while throttled, else 401 invalidCredentials."""
    user_key, client = throttle.username_key(username), throttle.address_key(address)
    attempt = await run_in_threadpool(_begin, db, limits, user_key, client, username)
    ok = await hashing.verify_async(attempt.password_hash, password)
    if not (ok and attempt.enabled and attempt.username):
        raise invalid_credentials()
    await run_in_threadpool(_succeeded, db, user_key, attempt.attempt_id)
    return attempt.username
