"""SPEC §14 / issue 13 item 3: password hashing is bounded per process. A burst of sign-ins neither grows
the API process by more than 300 MiB nor keeps /healthz from answering within 0.5 s; at most one hash
per core runs at once, the others wait holding no thread."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import httpx
import psutil
import pytest
from argon2 import PasswordHasher

from roster import codes
from roster.auth import schemas, service
from roster.auth.passwords import PasswordHashing
from tests.support import PASSWORD, start_serve

TOKEN_URL = "/user-service/api/oauth/token"
MiB = 1024 * 1024


class SlowRecordingHasher(PasswordHasher):
    """Cheap argon2 plus a pause, noting how many verifications run at the same moment."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.lock = threading.Lock()
        self.running = self.peak = self.calls = 0

    def verify(self, hash, password):  # noqa: A002 (argon2's own parameter name)
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.15)
            return super().verify(hash, password)
        finally:
            with self.lock:
                self.running -= 1


def test_at_most_max_concurrent_hashes_run_at_once(client, api, app):
    api.user("alice")
    recording = SlowRecordingHasher()
    app.state.hashing = PasswordHashing(recording, max_concurrent=2)
    results: list[int] = []

    def sign_in(i: int) -> None:
        username, password = ("alice", PASSWORD) if i % 2 else (f"nobody{i}", PASSWORD)
        results.append(client.post(TOKEN_URL, json={"username": username, "password": password}).status_code)

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] * 5 + [401] * 5
    assert recording.calls == 10  # unknown usernames are hashed too
    assert recording.peak == 2


def test_a_sign_in_that_waits_too_long_for_a_hash_is_503_with_retry_after(client, api, app):
    """The wait for a hashing slot is bounded: past it the answer is 503 serverBusy, no password checked."""
    api.user("alice")
    recording = SlowRecordingHasher()
    app.state.hashing = PasswordHashing(recording, max_concurrent=1, queue_seconds=0.2)
    answers: list[httpx.Response] = []

    def sign_in() -> None:
        answers.append(client.post(TOKEN_URL, json={"username": "alice", "password": PASSWORD}))

    threads = [threading.Thread(target=sign_in) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy = [r for r in answers if r.status_code == 503]
    assert sorted({r.status_code for r in answers}) == [200, 503] and len(busy) >= 3
    assert all(r.json()["message"] == "errorCode.serverBusy" and int(r.headers["Retry-After"]) >= 1 for r in busy)
    assert recording.calls == 6 - len(busy)  # a sign-in turned away checked no password


def test_a_sign_in_flood_takes_no_slot_from_other_requests(client, api, app, settings):
    """Sign-ins queue for their own slots, not the general ones: P/me answers while they wait."""
    alice = api.user("alice")
    app.state.hashing = PasswordHashing(SlowRecordingHasher(), max_concurrent=1)
    results: list[int] = []

    def sign_in() -> None:
        results.append(client.post(TOKEN_URL, json={"username": "alice", "password": PASSWORD}).status_code)

    threads = [threading.Thread(target=sign_in) for _ in range(settings.max_concurrent_requests + 20)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    started = time.monotonic()
    me = client.get("/pages/auth/api/me", headers=alice)
    elapsed = time.monotonic() - started
    for t in threads:
        t.join()
    assert me.status_code == 200 and elapsed < 1, elapsed  # behind 20 sign-ins it would wait ~3 s
    assert results == [200] * len(threads)


@pytest.fixture
def live_server(db, settings, tmp_path):
    """`roster serve` in its own process, with the production argon2 parameters."""
    with db.transaction() as session:  # the stored hash carries its parameters: production ones
        service.create_user(session, schemas.UserCreate(username="alice", password=PASSWORD), PasswordHashing())
    env = os.environ | {
        "ROSTER_DATABASE_URL": settings.database_url,
        "ROSTER_JWT_SECRET": settings.jwt_secret,
        "ROSTER_DATA_DIR": str(tmp_path / "serve-data"),
        "ROSTER_EMBEDDED_WORKERS": "0",
        "ROSTER_LOG_LEVEL": "WARNING",
    }
    process, base = start_serve(env, tmp_path, tmp_path / "serve.log")
    try:
        yield base, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_hundred_simultaneous_sign_ins_stay_within_300_mib_and_healthz_keeps_answering(live_server):
    base, server = live_server
    assert httpx.post(f"{base}{TOKEN_URL}", json={"username": "alice", "password": PASSWORD}).status_code == 200
    baseline = server.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.memory_info().rss)
            time.sleep(0.02)

    async def burst() -> tuple[list[tuple[str, int, str]], list[float]]:
        health: list[float] = []
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(max_connections=200)) as http:

            async def sign_in(i: int) -> tuple[str, int, str]:
                # 83 of alice's sign-ins and 17 unknown usernames (fewer than the address's 20 failures).
                username = "alice" if i % 6 else f"nobody{i}"
                r = await http.post(TOKEN_URL, json={"username": username, "password": PASSWORD})
                busy = (
                    r.status_code == 503 and r.headers.get("retry-after") and r.json()["message"] == codes.SERVER_BUSY
                )
                return username[:5], r.status_code, "busy" if busy else ""

            async def poll_health(stop: asyncio.Event) -> None:
                while not stop.is_set():
                    started = time.perf_counter()
                    r = await http.get("/healthz")
                    assert r.status_code == 200
                    health.append(time.perf_counter() - started)
                    await asyncio.sleep(0.05)

            stop = asyncio.Event()
            poller = asyncio.create_task(poll_health(stop))
            statuses = await asyncio.gather(*(sign_in(i) for i in range(100)))  # SPEC §14
            stop.set()
            await poller
        return statuses, health

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        statuses, health = asyncio.run(burst())
    finally:
        done.set()
        sampler.join()
    # On a machine busy with other work the 100 hashes can take longer than a sign-in's wait for a hashing
    # slot (30 s): the last sign-ins are then refused 503 serverBusy with Retry-After,
    # as designed. Anything else is wrong: alice's right password is never a 401.
    expected = {"alice": 200, "nobod": 401}
    wrong = [s for s in statuses if s[1] != expected[s[0]] and s[2] != "busy"]
    assert not wrong and (statuses.count(("alice", 200, "")) > 0), statuses
    assert len(health) >= 3 and max(health) < 0.5, health
    assert (peak - baseline) / MiB < 300, ((peak - baseline) / MiB, baseline / MiB)
