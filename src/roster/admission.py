"""Admission control: at most `limit` requests do their work at once; the rest wait in the event loop.

Why: a request's database session is opened in one worker thread (a dependency) and used in another
(the endpoint), and committed in a third. With more requests in flight than threads or pooled
connections, every thread can end up waiting for a connection that is held by a request waiting for a
thread: nothing moves until the pool's timeout. Admitting no more requests than there are connections
and threads for makes that impossible. A waiting request holds neither a thread nor a connection; one
that waits longer than `queue_seconds`, or finds `max_queued` others waiting, is answered 503
`errorCode.serverBusy` with `Retry-After`, never left hanging.

A request leaves as soon as its answer starts: a streamed download reads its rows in short transactions
of their own and must not keep others out while a slow client reads.
"""

from __future__ import annotations

import asyncio
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roster.errors import busy_response
from roster.metrics import HTTP_WAITING

# Answered without admission: liveness must be told even when every slot is taken.
UNGATED = frozenset({"/healthz"})
# Routes with an admission of their own: a sign-in waits for a hashing slot (roster.auth.passwords), which is
# bounded in count and time; holding a general slot meanwhile would let a sign-in flood starve every other call.
SELF_ADMITTED = frozenset({"/user-service/api/oauth/token"})


class Admission:
    def __init__(self, app: ASGIApp, *, limit: int, queue_seconds: float, max_queued: int) -> None:
        self.app = app
        self.limit = limit
        self.queue_seconds = queue_seconds
        self.max_queued = max_queued
        self._slots: asyncio.Semaphore | None = None  # made in the running loop, on first use
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNGATED or scope["path"] in SELF_ADMITTED:
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        if not await self._enter(slots):
            retry = max(1, math.ceil(self.queue_seconds / 4))
            await busy_response(retry, "Roster is at capacity; try again shortly.")(scope, receive, send)
            return
        held = True

        def leave() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def send_leaving(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()
            await send(message)

        try:
            await self.app(scope, receive, send_leaving)
        finally:
            leave()

    async def _enter(self, slots: asyncio.Semaphore) -> bool:
        if slots.locked() and self.waiting >= self.max_queued:
            return False
        self.waiting += 1
        HTTP_WAITING.inc()
        try:
            # asyncio.timeout, not wait_for: a slot granted as the time runs out is never lost (3.11).
            async with asyncio.timeout(self.queue_seconds):
                await slots.acquire()
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
            HTTP_WAITING.dec()
