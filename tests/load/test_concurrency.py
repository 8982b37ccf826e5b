"""Issue 13: 200 clients at once against a real `roster serve` (its admission control, thread pool,
connection pool and session limits as deployed), on the SQLite embedded default and on PostgreSQL.

Every answer is a 2xx or a 503 `errorCode.serverBusy` with Retry-After; no client waits out its timeout;
every write answered 2xx is stored and every write answered 503 is not (the request was not carried out).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from roster import codes
from tests.load.conftest import STUDY, study_url
from tests.support import P

CLIENT_TIMEOUT = 60.0  # generous but finite: a hang fails the test instead of stalling it
CLIENTS = 200
SEEDED = 40  # participants written before the burst, each updated once during it
SEED_NAME = "Seed"
BULK_ROWS = 20_000  # a job the embedded worker writes to the same study during the burst


@dataclass
class Call:
    kind: str
    method: str
    url: str
    body: dict | None = None
    key: str | None = None  # the participant a write names
    value: str | None = None  # the firstName it writes


def plan() -> list[Call]:
    """200 mixed calls: reads of every kind, new participants and updates of the seeded ones."""
    calls, updates = [], 0
    for i in range(CLIENTS):
        kind = i % 10
        if kind in (0, 1):
            calls.append(Call("me", "GET", f"{P}/me"))
        elif kind == 2:
            calls.append(Call("list", "GET", study_url() + "/participants?pageSize=50"))
        elif kind == 3:
            calls.append(Call("one", "GET", study_url() + f"/participants/SEED-{i % SEEDED:03d}"))
        elif kind == 4:
            calls.append(Call("jobs", "GET", f"{P}/studies/{quote(STUDY, safe='')}/jobs"))
        elif kind in (5, 6, 7):
            key = f"NEW-{i:03d}"
            calls.append(
                Call(
                    "create",
                    "POST",
                    study_url(site=True) + "/participants",
                    {"subjectKey": key, "firstName": "New", "lastName": f"L{i}"},
                    key,
                    "New",
                )
            )
        else:
            key, value = f"SEED-{updates:03d}", f"Upd{i}"
            updates += 1
            if kind == 8:
                calls.append(
                    Call("patch", "PATCH", study_url() + f"/participants/{key}", {"firstName": value}, key, value)
                )
            else:  # the single add-or-update endpoint on an existing ID
                calls.append(
                    Call(
                        "upsert",
                        "POST",
                        study_url(site=True) + "/participants",
                        {"subjectKey": key, "firstName": value},
                        key,
                        value,
                    )
                )
    assert updates == SEEDED
    return calls


def is_busy(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers.get("retry-after", "").isdigit()
        and response.json().get("message") == codes.SERVER_BUSY
    )


async def wait_until_running(client: httpx.AsyncClient, job: str) -> None:
    for _ in range(300):
        r = await client.get(f"{P}/jobs/{job}")
        if r.status_code == 200 and r.json()["counts"]["processed"] > 0:
            assert r.json()["status"] == "IN_PROGRESS", r.json()  # still writing when the burst starts
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the bulk job did not start")


async def wait_until_done(client: httpx.AsyncClient, job: str) -> None:
    for _ in range(1200):
        r = await client.get(f"{P}/jobs/{job}")
        if r.status_code == 200 and r.json()["status"] not in ("IN_QUEUE", "IN_PROGRESS"):
            assert r.json()["status"] == "COMPLETED" and r.json()["counts"]["created"] == BULK_ROWS, r.json()
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the bulk job did not finish")


async def stored_participants(client: httpx.AsyncClient) -> dict[str, str]:
    """participantId -> firstName of every participant in the study, read after the burst."""
    found, page = {}, 1
    while True:
        r = await client.get(study_url() + "/participants", params={"page": page, "pageSize": 1000})
        assert r.status_code == 200, r.text
        body = r.json()
        found |= {p["participantId"]: p.get("firstName") for p in body["items"]}
        if len(found) >= body["total"]:
            return found
        page += 1


@pytest.mark.parametrize(
    ("bulk_job", "queue_seconds"),
    [(False, "10"), (True, "10"), (False, "0.1")],
    ids=["alone", "while-a-bulk-job-writes", "short-queue"],
)
def test_200_concurrent_mixed_requests_answer_2xx_or_503_and_lose_nothing(live_roster, bulk_job, queue_seconds):
    """With the default queue wait the burst queues for its turn; with a short one some requests are refused
    (503), and those writes must not be stored. An embedded worker on both backends, so that a bulk job
    can write to the same study during the burst."""
    roster = live_roster(
        ROSTER_EMBEDDED_WORKERS="1", ROSTER_BATCH_SIZE="500", ROSTER_REQUEST_QUEUE_SECONDS=queue_seconds
    )
    dm = roster.setup_study()
    bulk = {f"BULK-{i:05d}" for i in range(BULK_ROWS)} if bulk_job else set()

    async def run() -> tuple[list[Call], list[httpx.Response | BaseException], dict[str, str]]:
        limits = httpx.Limits(max_connections=CLIENTS + 10, max_keepalive_connections=CLIENTS + 10)
        async with httpx.AsyncClient(base_url=roster.base, headers=dm, timeout=CLIENT_TIMEOUT, limits=limits) as client:
            for i in range(SEEDED):
                r = await client.post(
                    study_url(site=True) + "/participants", json={"subjectKey": f"SEED-{i:03d}", "firstName": SEED_NAME}
                )
                assert r.status_code == 200, r.text
            if bulk:
                csv = "ParticipantID,firstName\n" + "".join(f"{key},Bulk\n" for key in sorted(bulk))
                r = await client.post(
                    study_url(site=True) + "/participants/bulk", files={"file": ("load.csv", csv.encode(), "text/csv")}
                )
                assert r.status_code == 200, r.text
                job = r.text.removeprefix("job uuid: ").strip()
                await wait_until_running(client, job)
            calls = plan()
            answers = await asyncio.gather(
                *(client.request(c.method, c.url, json=c.body) for c in calls), return_exceptions=True
            )
            if bulk:
                await wait_until_done(client, job)
            return calls, answers, await stored_participants(client)

    calls, answers, stored = asyncio.run(run())

    failures = [(c.kind, repr(a)) for c, a in zip(calls, answers, strict=True) if isinstance(a, BaseException)]
    assert not failures, failures  # no client timeout, no dropped connection
    wrong = [
        (c.kind, a.status_code, a.text[:200])
        for c, a in zip(calls, answers, strict=True)
        if not (a.status_code == 200 or is_busy(a))
    ]
    assert not wrong, wrong
    answered = Counter((c.kind, a.status_code) for c, a in zip(calls, answers, strict=True))

    seeded = {f"SEED-{i:03d}" for i in range(SEEDED)}
    created = {c.key for c, a in zip(calls, answers, strict=True) if c.kind == "create" and a.status_code == 200}
    assert set(stored) == seeded | created | bulk, answered  # exactly: nothing lost, nothing a 503 refused
    for call, answer in zip(calls, answers, strict=True):
        if call.kind in ("patch", "upsert"):
            assert stored[call.key] == (call.value if answer.status_code == 200 else SEED_NAME), (
                call,
                answer.status_code,
            )
    log = roster.log()
    assert "unhandled" not in log and "Traceback" not in log, log[-3000:]


def test_saturation_is_answered_503_server_busy_with_retry_after_and_nothing_refused_is_stored(live_roster):
    """One slot, a queue of 2 waiting at most a second, and a write that holds the slot (its body comes
    slowly): the others are answered 503 with Retry-After, at once or after the queue wait, none stored;
    the held write is stored, and Roster answers again as soon as the slot is free."""
    roster = live_roster(
        ROSTER_MAX_CONCURRENT_REQUESTS="1", ROSTER_REQUEST_QUEUE_SECONDS="1", ROSTER_MAX_QUEUED_REQUESTS="2"
    )
    dm = roster.setup_study()
    url = study_url(site=True) + "/participants"

    async def run() -> tuple[httpx.Response, list[httpx.Response], httpx.Response, dict[str, str]]:
        release = asyncio.Event()

        async def slow_body():
            yield b'{"subjectKey": "HOLD-1", '
            await release.wait()
            yield b'"firstName": "Held"}'

        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=roster.base, headers=dm, timeout=CLIENT_TIMEOUT, limits=limits) as client:
            holder = asyncio.create_task(
                client.post(url, content=slow_body(), headers={"Content-Type": "application/json"})
            )
            for _ in range(100):  # until the holder has the slot: a probe is then refused
                probe = await client.get(f"{P}/me")
                if probe.status_code == 503:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the slow write never held the slot")
            refused = await asyncio.gather(
                *(client.post(url, json={"subjectKey": f"SAT-{i}", "firstName": "Refused"}) for i in range(5)),
                *(client.get(f"{P}/me") for _ in range(5)),
            )
            release.set()
            held = await holder
            after = await client.get(f"{P}/me")
            return held, refused, after, await stored_participants(client)

    held, refused, after, stored = asyncio.run(run())
    assert [r.status_code for r in refused] == [503] * 10
    assert all(is_busy(r) and r.headers["retry-after"] == "1" for r in refused), [(r.headers, r.text) for r in refused]
    assert held.status_code == 200, held.text
    assert after.status_code == 200
    assert stored == {"HOLD-1": "Held"}
