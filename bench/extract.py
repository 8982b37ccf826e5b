"""Extract benchmark (SPEC §11.3): rows/s and worker peak RSS of an EXTRACT_PARTICIPANTS job.

    python bench/extract.py [--sizes 10000,1000000] [--backends sqlite,postgresql]

Per backend and size: a fresh database, a real API server, a site filled with N participants by plain SQL
(COPY on PostgreSQL; names, email, mobile, identifier, an access code each), then the data manager's extract
with access codes (`includeParticipateInfo=y`, so every column), drained by a worker in its own process
(bench/worker_child.py) whose memory is sampled, then the file downloaded over HTTP. The smallest size is
the baseline of the same run: memory must not grow with N. Figures go in bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import bulk as harness  # noqa: E402  (sibling module: the server, worker and database of bench/bulk.py)

CHUNK = 20_000
COLUMNS = (
    "study_id",
    "site_id",
    "participant_id",
    "participant_key",
    "oid",
    "status",
    "activity_status",
    "created_at",
    "updated_at",
    "first_name",
    "last_name",
    "email_address",
    "mobile_number",
    "identifier",
    "access_code",
)


def rows(study_id: int, site_id: int, n: int):
    for i in range(1, n + 1):
        pid = f"XP-{i:07d}"
        yield (
            study_id,
            site_id,
            pid,
            pid.casefold(),
            f"SS_XP{i:07d}",
            "available",
            "Active",
            "2026-01-01",
            "2026-01-01",
            "Jane",
            f"Doe{i % 997}",
            f"jane.{i}@example.org",
            f"+1555{i:07d}",
            f"ID-{i}",
            f"AC{i:010d}",
        )


def fill(url: str, n: int) -> float:
    """N participants at the benchmark's site, written straight into the table (the extract reads them)."""
    started = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        study_id = conn.scalar(sa.text("SELECT id FROM studies WHERE oid = :oid"), {"oid": harness.STUDY})
        site_id = conn.scalar(sa.text("SELECT id FROM sites WHERE oid = :oid"), {"oid": harness.SITE})
        raw = conn.connection.driver_connection
        columns = ", ".join(COLUMNS)
        if url.startswith("postgresql"):
            with raw.cursor() as cur, cur.copy(f"COPY participants ({columns}) FROM STDIN") as copy:
                for row in rows(study_id, site_id, n):
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(COLUMNS))
            batch: list[tuple] = []
            for row in rows(study_id, site_id, n):
                batch.append(row)
                if len(batch) == CHUNK:
                    raw.executemany(f"INSERT INTO participants ({columns}) VALUES ({marks})", batch)
                    batch.clear()
            raw.executemany(f"INSERT INTO participants ({columns}) VALUES ({marks})", batch)
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE participants"))
    engine.dispose()
    return time.perf_counter() - started


def extract(client: httpx.Client, auth: dict[str, str]) -> str:
    r = client.post(
        f"{harness.P}/clinicaldata/studies/{harness.STUDY}/sites/{harness.SITE}/participants/extractParticipantsInfo",
        params={"includeParticipateInfo": "y"},
        headers={**auth, "Accept": "application/json"},
    )
    if r.status_code != 200:
        raise RuntimeError(f"extract answered {r.status_code}: {r.text[:300]}")
    return r.json()["jobUuid"]


def download(
    client: httpx.Client, auth: dict[str, str], job_uuid: str, server: harness.Server
) -> tuple[int, int, float, float]:
    """(lines, bytes, seconds, API peak RSS MiB) of the job's file, streamed."""
    sampler = harness.RssSampler(server.proc.pid)
    sampler.start()
    started, lines, size = time.perf_counter(), 0, 0
    with client.stream("GET", f"{harness.P}/jobs/{job_uuid}/downloadFile", headers=auth) as r:
        if r.status_code != 200:
            raise RuntimeError(f"downloadFile answered {r.status_code}")
        for chunk in r.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    sampler.stopped.set()
    return lines, size, time.perf_counter() - started, sampler.peak / harness.MiB


def job(client: httpx.Client, auth: dict[str, str], job_uuid: str) -> dict:
    r = client.get(f"{harness.P}/jobs/{job_uuid}", headers={**auth, "Accept": "application/json"})
    r.raise_for_status()
    return r.json()


def run(backend: str, n: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="roster-bench-") as tmpname:
        tmp = Path(tmpname)
        with harness.fresh_database(backend, tmp) as url:
            env = harness.child_env(url, None)
            server = harness.Server(env, tmp)
            try:
                with httpx.Client(base_url=server.base, timeout=3600) as client:
                    auth = harness.setup_study(client)
                    fill_s = fill(url, n)
                    worker = harness.WorkerChild(env, tmp)
                    job_uuid = extract(client, auth)
                    drained = worker.drain(timeout)
                    answer = job(client, auth, job_uuid)
                    lines, size, download_s, api_rss = download(client, auth, job_uuid, server)
            finally:
                server.stop()
    ok = not drained.timed_out and answer["status"] == "COMPLETED" and answer["counts"]["rows"] == n and lines == n + 1
    result = {
        "backend": backend,
        "n": n,
        "fill_s": fill_s,
        "worker_s": drained.seconds,
        "rows_s": n / drained.seconds,
        "cpu_s": drained.cpu_s,
        "db_cpu_s": drained.db_cpu_s,
        "peak_rss_mib": drained.peak_rss_mib,
        "idle_rss_mib": worker.idle_rss_mib,
        "file_mib": size / harness.MiB,
        "download_s": download_s,
        "api_rss_mib": api_rss,
        "ok": ok,
    }
    db_cpu = "" if drained.db_cpu_s is None else f" + DB {drained.db_cpu_s:.2f} s"
    print(
        f"  {backend:10} {n:>9,}: worker {drained.seconds:7.2f} s = {n / drained.seconds:9,.0f} rows/s (CPU "
        f"{drained.cpu_s:.2f} s"
        f"{db_cpu}), peak RSS {drained.peak_rss_mib:6.1f} MiB (idle {worker.idle_rss_mib:.1f}); file "
        f"{size / harness.MiB:.1f} MiB "
        f"downloaded in {download_s:.2f} s (API peak {api_rss:.1f} MiB){'' if ok else '  !! WRONG: ' + repr(answer)}",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = [b for b in args.backends.split(",") if b != "postgresql" or harness.pg_reachable()]
    results = [run(backend, n, args.timeout) for backend in backends for n in sizes]
    print(
        "\n| backend | participants | worker s | rows/s | worker CPU s | DB CPU s | worker peak RSS MiB | file MiB | "
        "download s | API peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        db_cpu = "" if r["db_cpu_s"] is None else f"{r['db_cpu_s']:.2f}"
        print(
            f"| {r['backend']} | {r['n']:,} | {r['worker_s']:.2f} | {r['rows_s']:,.0f} | {r['cpu_s']:.2f} | {db_cpu} | "
            f"{r['peak_rss_mib']:.1f} | {r['file_mib']:.1f} | {r['download_s']:.2f} | {r['api_rss_mib']:.1f} |"
        )
    for backend in backends:
        mine = [r for r in results if r["backend"] == backend]
        if len(mine) > 1:
            growth = mine[-1]["peak_rss_mib"] / mine[0]["peak_rss_mib"] - 1
            print(f"{backend}: worker peak RSS at {mine[-1]['n']:,} is {growth:+.1%} of {mine[0]['n']:,}")
    if not all(r["ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
