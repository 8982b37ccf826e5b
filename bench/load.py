"""Load and fault harness: real processes on loopback, N concurrent clients, every non-2xx counted.

    python bench/load.py [--backends sqlite,postgresql] [--clients 10,100,500] [--seconds 10]
                         [--scenarios read,write,signin,faults]

Per backend: a fresh database, `roster serve` on a free loopback port (embedded worker on SQLite; on
PostgreSQL no embedded worker and two `roster worker` processes with a short lease), an admin created with
`roster admin create-user`, and through the setup API a study without caps, a site, and a data manager and
a viewer. Scenarios, each run for --seconds at each client count:

- read: GET P/me, the site's participant list, one participant, a participant search, the job list.
- write: single-participant POSTs to the one study (new IDs and updates of existing ones).
- signin: the token endpoint with the right password (production argon2 parameters).
- faults (once, not per client count): a job of --fault-rows rows; on PostgreSQL the worker holding it is
  frozen (SIGSTOP) at a third of the rows while 20 clients write to the same study, then resumed
  (SIGCONT); then another job whose worker is killed (SIGKILL) mid-way. On SQLite the server (and its
  embedded worker) is killed mid-job and started again. Checks: the jobs finish, every row logged once.

Prints requests/s, p50/p99 latency and every non-2xx status with its error code. Bounded: every request has
a timeout, every scenario a deadline, and the processes are stopped at the end. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("ROSTER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
P = "/pages/auth/api"
STUDY, SITE = "S_LOAD", "S_LOAD_SITE"
PASSWORD = "load-harness-" + secrets.token_hex(8)
ADMIN, DM, VIEWER = "load-admin", "load-dm", "load-viewer"
REQUEST_TIMEOUT = 60.0
SEEDED = 2000  # participants created before the scenarios, so reads and updates have something to find


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)  # (status, code) of every non-2xx, and errors
    ok: int = 0
    started: float = 0.0
    ended: float = 0.0

    def add(self, seconds: float, status: int, code: str = "") -> None:
        self.latencies.append(seconds)
        if 200 <= status < 300:
            self.ok += 1
        else:
            self.statuses[(status, code)] += 1

    def line(self, name: str, clients: int) -> str:
        total = len(self.latencies)
        wall = max(self.ended - self.started, 1e-9)
        lat = sorted(self.latencies) or [0.0]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        bad = ", ".join(f"{n}× {s} {c}".rstrip() for (s, c), n in sorted(self.statuses.items())) or "none"
        return (
            f"| {name} | {clients} | {total} | {total / wall:.0f} | {statistics.median(lat) * 1000:.0f} | "
            f"{p99 * 1000:.0f} | {bad} |"
        )


# ------------------------------------------------------------------------------------------ processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database(backend: str, tmp: Path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'roster.db'}"
        return
    name = f"roster_load_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Roster:
    """`roster serve` and (PostgreSQL) `roster worker` processes sharing one environment."""

    def __init__(self, backend: str, url: str, tmp: Path, lease: int) -> None:
        self.backend = backend
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "ROSTER_DATABASE_URL": url,
            "ROSTER_DATA_DIR": str(tmp / "data"),
            "ROSTER_JWT_SECRET": secrets.token_hex(32),
            "ROSTER_JOB_LEASE_SECONDS": str(lease),
            "ROSTER_LOG_LEVEL": "WARNING",
            "ROSTER_EMBEDDED_WORKERS": "1" if backend == "sqlite" else "0",
            "ROSTER_BATCH_SIZE": "500",
        }
        self.log = open(tmp / "roster.log", "ab")
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def run(self, *args: str, stdin: str | None = None) -> None:
        subprocess.run(
            [sys.executable, "-m", "roster.cli", *args],
            env=self.env,
            input=stdin,
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )

    def start_server(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, "-m", "roster.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("roster serve did not start (see roster.log)")

    def start_worker(self) -> subprocess.Popen:
        worker = subprocess.Popen(
            [sys.executable, "-m", "roster.cli", "worker"], env=self.env, stdout=self.log, stderr=self.log
        )
        self.workers.append(worker)
        return worker

    def rss_mib(self) -> float:
        return psutil.Process(self.server.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        for proc in [*self.workers, self.server]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.log.close()


# ------------------------------------------------------------------------------------------ clients
def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))
    except Exception:
        return ""


async def call(client: httpx.AsyncClient, tally: Tally, method: str, url: str, **kw) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        tally.add(time.perf_counter() - started, 0, type(exc).__name__)
        return None
    status = response.status_code
    if status == 503 and "retry-after" not in response.headers:
        tally.add(time.perf_counter() - started, status, _code(response) + " (no Retry-After)")
    else:
        tally.add(time.perf_counter() - started, status, "" if status < 300 else _code(response))
    return response


async def token(base: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT) as client:
        for _ in range(60):
            r = await client.post("/user-service/api/oauth/token", json={"username": username, "password": PASSWORD})
            if r.status_code == 200:
                return r.text
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))
    raise RuntimeError(f"no token for {username}")


def study_path(site: bool = True) -> str:
    path = f"{P}/clinicaldata/studies/{quote(STUDY)}"
    return path + f"/sites/{quote(SITE)}" if site else path


async def setup(base: str) -> dict[str, str]:
    tok = await token(base, ADMIN)
    headers = {"Authorization": f"Bearer {tok}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT) as c:
        for method, path, body in (
            ("POST", "/admin/studies", {"oid": STUDY, "name": "Load"}),
            ("POST", f"/admin/studies/{STUDY}/sites", {"oid": SITE, "name": "Load site"}),
            ("POST", "/admin/users", {"username": DM, "password": PASSWORD}),
            ("POST", "/admin/users", {"username": VIEWER, "password": PASSWORD}),
            ("POST", f"/admin/users/{DM}/roles", {"studyOid": STUDY, "role": "data_manager"}),
            ("POST", f"/admin/users/{VIEWER}/roles", {"studyOid": STUDY, "role": "viewer"}),
        ):
            r = await c.request(method, P + path, json=body)
            if r.status_code not in (200, 201, 409):
                raise RuntimeError(f"setup {method} {path}: {r.status_code} {r.text[:200]}")
    tokens = {ADMIN: tok, DM: await token(base, DM), VIEWER: await token(base, VIEWER)}
    csv = "ParticipantID,firstName,lastName\n" + "".join(f"LP-{i:06d},Ann,Lee{i}\n" for i in range(SEEDED))
    job = await upload(base, tokens[DM], csv)
    await wait_job(base, tokens[DM], job, 300)
    return tokens


async def upload(base: str, tok: str, csv: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT) as c:
        for _ in range(30):
            r = await c.post(
                study_path() + "/participants/bulk",
                headers={"Authorization": f"Bearer {tok}"},
                files={"file": ("load.csv", csv.encode(), "text/csv")},
            )
            if r.status_code == 200:
                return r.text.removeprefix("job uuid: ").strip()
            await asyncio.sleep(1)
    raise RuntimeError(f"upload refused: {r.status_code} {r.text[:200]}")


async def wait_job(base: str, tok: str, uuid: str, seconds: float, until_processed: int | None = None) -> dict:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {tok}"}, timeout=REQUEST_TIMEOUT
    ) as c:
        while time.monotonic() < deadline:
            r = await c.get(f"{P}/jobs/{uuid}")
            if r.status_code == 200:
                job = r.json()
                if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    return job
                if until_processed is not None and job["counts"]["processed"] >= until_processed:
                    return job
            await asyncio.sleep(0.2)
    raise TimeoutError(f"job {uuid} not done in {seconds}s")


async def drive(base: str, clients: int, seconds: float, request) -> Tally:
    """`clients` tasks, each sending one request after another until the deadline."""
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT, limits=limits) as client:
        tally.started = time.perf_counter()
        deadline = tally.started + seconds

        async def loop(n: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                await request(client, tally, n, i)
                i += 1

        await asyncio.gather(*(loop(n) for n in range(clients)))
        tally.ended = time.perf_counter()
    return tally


def reads(tokens: dict[str, str]):
    dm = {"Authorization": f"Bearer {tokens[DM]}"}

    async def request(client, tally, n, i):
        kind = (n + i) % 5
        if kind == 0:
            await call(client, tally, "GET", f"{P}/me", headers=dm)
        elif kind == 1:
            await call(client, tally, "GET", study_path() + "/participants", params={"pageSize": 20}, headers=dm)
        elif kind == 2:
            await call(
                client, tally, "GET", study_path(False) + f"/participants/LP-{(n * 31 + i) % SEEDED:06d}", headers=dm
            )
        elif kind == 3:
            await call(
                client,
                tally,
                "GET",
                study_path(False) + "/participants",
                params={"q": f"lp-00{i % 10}", "pageSize": 20},
                headers=dm,
            )
        else:
            await call(client, tally, "GET", f"{P}/studies/{quote(STUDY)}/jobs", headers=dm)

    return request


def writes(tokens: dict[str, str], prefix: str, created: list[str]):
    dm = {"Authorization": f"Bearer {tokens[DM]}"}

    async def request(client, tally, n, i):
        if i % 2:  # an update of a seeded participant
            body = {"subjectKey": f"LP-{(n * 7 + i) % SEEDED:06d}", "firstName": f"Upd{n}x{i}"}
        else:
            body = {"subjectKey": f"{prefix}-{n}-{i}", "firstName": "New", "lastName": "Client"}
        r = await call(client, tally, "POST", study_path() + "/participants", json=body, headers=dm)
        if r is not None and r.status_code == 200 and not i % 2:
            created.append(body["subjectKey"])

    return request


def signins():
    async def request(client, tally, n, i):
        await call(client, tally, "POST", "/user-service/api/oauth/token", json={"username": DM, "password": PASSWORD})

    return request


async def stored(base: str, tok: str) -> int:
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {tok}"}, timeout=REQUEST_TIMEOUT
    ) as c:
        r = await c.get(study_path(False) + "/participants", params={"pageSize": 1})
        return r.json()["total"]


# ------------------------------------------------------------------------------------------ faults
async def faults(roster: Roster, tokens: dict[str, str], rows: int, lease: int) -> list[str]:
    base, dm = roster.base, tokens[DM]
    lines = []
    csv = "ParticipantID,firstName,lastName\n" + "".join(f"FP-{i:07d},Fay,Pol{i}\n" for i in range(rows))
    if roster.backend == "postgresql":
        job = await upload(base, dm, csv)
        await wait_job(base, dm, job, 300, until_processed=rows // 3)
        holder = await holder_pid(base, dm, job)
        victim = next(w for w in roster.workers if w.pid == holder)
        victim.send_signal(signal.SIGSTOP)
        frozen_at = time.perf_counter()
        tally = await drive(base, 20, lease + 10, writes(tokens, "FZ", []))
        lines.append(tally.line("writes while a worker is frozen", 20))
        done = await wait_job(base, dm, job, 600)
        victim.send_signal(signal.SIGCONT)
        lines.append(
            f"frozen worker: job {done['status']} after {time.perf_counter() - frozen_at:.0f}s, "
            f"attempts {job_row(job).attempts}, {await log_check(base, dm, job, rows)}"
        )
        csv2 = csv.replace("FP-", "FK-")
        job = await upload(base, dm, csv2)
        await wait_job(base, dm, job, 300, until_processed=rows // 3)
        holder = await holder_pid(base, dm, job)
        victim = next(w for w in roster.workers if w.pid == holder)
        victim.kill()
        roster.workers.remove(victim)
        killed_at = time.perf_counter()
        roster.start_worker()
        done = await wait_job(base, dm, job, 600)
        lines.append(
            f"killed worker: job {done['status']} after {time.perf_counter() - killed_at:.0f}s, "
            f"{await log_check(base, dm, job, rows)}"
        )
    else:
        job = await upload(base, dm, csv)
        await wait_job(base, dm, job, 300, until_processed=rows // 3)
        roster.server.kill()
        roster.server.wait()
        killed_at = time.perf_counter()
        roster.start_server()
        done = await wait_job(base, dm, job, 600)
        lines.append(
            f"killed server (embedded worker): job {done['status']} after "
            f"{time.perf_counter() - killed_at:.0f}s, {await log_check(base, dm, job, rows)}"
        )
    return lines


def job_row(uuid: str):
    """The job's lease owner (host:pid:thread:random) and attempts, which the API does not show."""
    engine = sa.create_engine(os.environ["_LOAD_DB_URL"])
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT lease_owner, attempts FROM jobs WHERE uuid = :u"), {"u": uuid}).one()
    engine.dispose()
    return row


async def holder_pid(base: str, tok: str, uuid: str) -> int | None:
    owner = job_row(uuid).lease_owner
    return int(owner.split(":")[1]) if owner else None


async def log_check(base: str, tok: str, uuid: str, rows: int) -> str:
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {tok}"}, timeout=REQUEST_TIMEOUT
    ) as c:
        r = await c.get(f"{P}/jobs/{uuid}/downloadFile")
    logged = [line.split(",", 1)[0] for line in r.text.splitlines()[1:]]
    exact = len(logged) == rows and len(set(logged)) == rows
    return f"{len(logged)} log rows for {rows} ({'each once' if exact else 'NOT each once'})"


# ------------------------------------------------------------------------------------------ main
async def run_backend(backend: str, args) -> list[str]:
    lines = [
        f"\n### {backend}\n",
        "| scenario | clients | requests | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="roster-load-") as tmp_name, database(backend, Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        os.environ["_LOAD_DB_URL"] = url
        roster = Roster(backend, url, tmp, args.lease)
        try:
            roster.run("db", "upgrade")
            roster.run("admin", "create-user", ADMIN, "--admin", "--password-stdin", stdin=PASSWORD + "\n")
            roster.start_server()
            if backend == "postgresql":
                roster.start_worker()
                roster.start_worker()
            tokens = await setup(roster.base)
            for clients in args.clients:
                if "read" in args.scenarios:
                    lines.append(
                        (await drive(roster.base, clients, args.seconds, reads(tokens))).line("read mix", clients)
                    )
                    print(lines[-1], flush=True)
                if "write" in args.scenarios:
                    before, created = await stored(roster.base, tokens[DM]), []
                    tally = await drive(roster.base, clients, args.seconds, writes(tokens, f"W{clients}", created))
                    after = await stored(roster.base, tokens[DM])
                    lost = (
                        ""
                        if after - before == len(created)
                        else f" LOST: {len(created)} created answered, {after - before} stored"
                    )
                    lines.append(tally.line("write mix", clients) + lost)
                    print(lines[-1], flush=True)
                if "signin" in args.scenarios:
                    rss0 = roster.rss_mib()
                    peak = [rss0]

                    async def sample(peak: list[float] = peak) -> None:
                        while True:
                            peak.append(roster.rss_mib())
                            await asyncio.sleep(0.1)

                    sampler = asyncio.create_task(sample())
                    tally = await drive(roster.base, clients, args.seconds, signins())
                    sampler.cancel()
                    lines.append(tally.line("sign-ins", clients) + f" RSS +{max(peak) - rss0:.0f} MiB")
                    print(lines[-1], flush=True)
            if "faults" in args.scenarios:
                for line in await faults(roster, tokens, args.fault_rows, args.lease):
                    lines.append("\n" + line if line.startswith(("frozen", "killed")) else line)
                    print(lines[-1], flush=True)
        finally:
            roster.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--clients", default="10,100,500", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per scenario and client count")
    parser.add_argument("--scenarios", default="read,write,signin,faults")
    parser.add_argument("--fault-rows", type=int, default=60000)
    parser.add_argument("--lease", type=int, default=6, help="ROSTER_JOB_LEASE_SECONDS for the run")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.scenarios = set(args.scenarios.split(","))
    out = []
    for backend in args.backends.split(","):
        out += asyncio.run(run_backend(backend, args))
    print("\n".join(out))


if __name__ == "__main__":
    main()
