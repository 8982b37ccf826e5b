"""roster.admission on its own: at most `limit` requests at work, a bounded queue, 503 serverBusy with
Retry-After past it, /healthz never queued, and the waiting requests visible in /metrics."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from roster import codes
from roster.admission import Admission


class HeldApp:
    """Answers 200 once `release` is set; counts the requests at work."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.at_work = 0
        self.peak = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.at_work += 1
        self.peak = max(self.peak, self.at_work)
        try:
            if scope["path"] != "/healthz":
                await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.at_work -= 1


def waiting() -> float:
    return REGISTRY.get_sample_value("roster_http_requests_waiting") or 0.0


def test_one_at_work_one_queued_the_rest_turned_away_with_retry_after() -> None:
    async def scenario() -> None:
        inner = HeldApp()
        app = Admission(inner, limit=1, queue_seconds=0.5, max_queued=1)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roster") as client:
            before = waiting()
            first = asyncio.create_task(client.get("/pages/auth/api/me"))
            await asyncio.sleep(0.05)
            queued = asyncio.create_task(client.get("/pages/auth/api/me"))
            await asyncio.sleep(0.05)
            assert waiting() == before + 1
            turned_away = await client.get("/pages/auth/api/me")  # the queue is full: at once
            health = await client.get("/healthz")  # never queued
            timed_out = await queued  # waited queue_seconds
            assert waiting() == before
            inner.release.set()
            done = await first
        assert health.status_code == 200 and done.status_code == 200
        for answer in (turned_away, timed_out):
            assert answer.status_code == 503 and answer.json()["message"] == codes.SERVER_BUSY
            assert int(answer.headers["Retry-After"]) >= 1
        assert inner.peak <= 2  # the held request and /healthz; never two gated ones

    asyncio.run(scenario())


def test_a_slot_is_handed_to_the_next_waiting_request() -> None:
    async def scenario() -> None:
        inner = HeldApp()
        app = Admission(inner, limit=2, queue_seconds=5, max_queued=100)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roster") as client:
            tasks = [asyncio.create_task(client.get(f"/r/{i}")) for i in range(10)]
            await asyncio.sleep(0.1)
            assert inner.peak == 2
            inner.release.set()
            answers = await asyncio.gather(*tasks)
        assert [a.status_code for a in answers] == [200] * 10 and inner.peak == 2

    asyncio.run(scenario())
