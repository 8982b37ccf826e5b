"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's recommendations), bounded, and
the rules a new password must meet (SPEC §14).

Each argon2 hash takes 64 MiB and most of a core for a fraction of a second, so a burst of sign-ins
would otherwise take as many hashes at once as it has requests. `PasswordHashing` lets at most
`max_concurrent` hashes (default: one per core) run at once in a process: sign-ins wait their turn on an
asyncio semaphore, holding no thread, no database connection and no hash memory; every other caller (the
setup API, the CLI) waits on a thread semaphore of the same size. The app keeps one on `app.state.hashing`.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool

from roster import codes
from roster.errors import DomainError

MIN_PASSWORD_LENGTH = 12


class PasswordHashing:
    def __init__(
        self,
        hasher: PasswordHasher | None = None,
        max_concurrent: int | None = None,
        queue_seconds: float = 30.0,
        max_queued: int = 1000,
    ) -> None:
        self.hasher = hasher or PasswordHasher()
        self.max_concurrent = max_concurrent or os.cpu_count() or 1
        # A sign-in waits at most this long, behind at most this many others; then 503 serverBusy.
        self.queue_seconds = queue_seconds
        self.max_queued = max_queued
        self.waiting = 0
        self._slots = threading.BoundedSemaphore(self.max_concurrent)
        self._gate: asyncio.Semaphore | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None

    @cached_property
    def _dummy_hash(self) -> str:
        # Verifying against this when the user does not exist makes an unknown username take as long as a
        # wrong password (same parameters, same work).
        return self.hash("roster-dummy-password")

    def hash(self, password: str) -> str:
        with self._slots:
            return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True only for a real hash that matches; a missing hash (unknown user) costs a hash all the same."""
        stored = password_hash or self._dummy_hash
        with self._slots:
            try:
                return self.hasher.verify(stored, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False

    def _loop_gate(self) -> asyncio.Semaphore:
        # An asyncio semaphore belongs to one event loop; a new loop (tests start several) gets a new one.
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate, self._gate_loop = asyncio.Semaphore(self.max_concurrent), loop
        return self._gate

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Waits (holding no thread) until fewer than `max_concurrent` sign-ins hash; run `verify` in a
        thread inside it. 503 serverBusy with Retry-After when `max_queued` already wait or the wait runs out."""
        if "_dummy_hash" not in self.__dict__:
            await run_in_threadpool(lambda: self._dummy_hash)  # computed once, off the event loop
        gate = self._loop_gate()
        if gate.locked() and self.waiting >= self.max_queued:
            raise _busy(self.queue_seconds)
        self.waiting += 1
        try:
            async with asyncio.timeout(self.queue_seconds):  # a slot granted as time runs out is kept (3.11)
                await gate.acquire()
        except TimeoutError:
            raise _busy(self.queue_seconds) from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            gate.release()


def _busy(queue_seconds: float) -> DomainError:
    retry = max(1, math.ceil(queue_seconds / 4))
    return DomainError(
        codes.SERVER_BUSY,
        503,
        {"retryAfter": retry},
        detail="Too many sign-ins at once; try again shortly.",
        headers={"Retry-After": str(retry)},
    )


# The process's default; `create_app` takes another (tests pass cheap parameters).
DEFAULT = PasswordHashing()


def default() -> PasswordHashing:
    return DEFAULT


def check_strength(username: str, password: str) -> None:
    """SPEC §14: at least 12 characters, not containing the username (any case) → 422 weakPassword."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"at least {MIN_PASSWORD_LENGTH} characters")
    if username and username.casefold() in password.casefold():
        problems.append("not containing the username")
    if problems:
        detail = f"The password must be {' and '.join(problems)}."
        raise DomainError(
            codes.WEAK_PASSWORD, 422, {"field": "password", "minLength": MIN_PASSWORD_LENGTH}, detail=detail
        )
