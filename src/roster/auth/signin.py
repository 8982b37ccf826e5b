"""The token endpoint's sign-in (SPEC §2, §14): throttled, then one bounded password hash.

1. A read of the throttle, holding nothing: an address or username already throttled gets its 429 at
   once, without queueing behind the hashes of others.
2. The request waits for a hashing slot (roster.auth.passwords), holding no thread and no connection.
3. Holding the slot: the throttle is read again and the user's hash fetched (one short transaction),
   the password hashed (no connection held), and a failure recorded or a success's failures cleared
   (another short transaction). Checking and recording under the slot means a burst of guesses cannot
   pass the check together before any failure is written.
An unknown username, a wrong password and a disabled user cost one hash each and get the same answer.
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
class _Found:
    username: str | None
    password_hash: str | None
    enabled: bool


def _check(db: Database, limits: throttle.Limits, user_key: str, address: str) -> None:
    with db.read_sessions() as session, session.begin():
        throttle.check(session, limits, user_key, address)


def _check_and_find(db: Database, limits: throttle.Limits, user_key: str, address: str, username: str) -> _Found:
    with db.read_sessions() as session, session.begin():
        throttle.check(session, limits, user_key, address)
        user = None
        if can_name_a_user(username):
            user = session.execute(
                select(User.username, User.password_hash, User.enabled).where(User.username_key == username.lower())
            ).one_or_none()
    if user is None:
        return _Found(None, None, False)
    return _Found(user.username, user.password_hash, bool(user.enabled))


def _record(db: Database, limits: throttle.Limits, user_key: str, address: str, ok: bool) -> None:
    with db.transaction() as session:
        if ok:
            throttle.succeeded(session, user_key)
        else:
            throttle.failed(session, limits, user_key, address)


def invalid_credentials() -> DomainError:
    return DomainError(codes.INVALID_CREDENTIALS, 401, headers={"WWW-Authenticate": "Bearer"})


async def sign_in(
    db: Database, hashing: PasswordHashing, limits: throttle.Limits, username: str, password: str, address: str | None
) -> str:
    """The signed-in user's name as created; 429 tooManyAttempts while throttled, else 401 invalidCredentials."""
    user_key, client = throttle.username_key(username), throttle.address_key(address)
    await run_in_threadpool(_check, db, limits, user_key, client)
    async with hashing.slot():
        found = await run_in_threadpool(_check_and_find, db, limits, user_key, client, username)
        ok = await run_in_threadpool(hashing.verify, found.password_hash, password)
        ok = ok and found.enabled and found.username is not None
        await run_in_threadpool(_record, db, limits, user_key, client, ok)
    if not ok or found.username is None:
        raise invalid_credentials()
    return found.username
