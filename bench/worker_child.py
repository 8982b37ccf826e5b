"""The benchmark's worker process: the real `roster.bulk.worker.drain`, in a process of its own.

Settings come from ROSTER_* variables (bench/bulk.py sets them). It imports, connects and polls the empty queue
once first, as a deployed worker does before its first job, and says "ready <VmRSS KiB>", so start-up is not
timed; on "go" it drains the queue and answers
"done <jobs> <seconds> <VmHWM KiB> <CPU seconds> <writer VmHWM KiB> <writer CPU seconds>".
CPU seconds (user + system, all threads) say how much work the worker did whatever else runs on the machine;
wall seconds are what a user waits. VmHWM is this process image's own peak RSS: unlike the
ru_maxrss that wait4() reports for a child, it cannot include the parent's RSS at fork/exec time.

On SQLite the worker has a writer process (roster.bulk.writer_process), started at its first poll like a
deployed worker's. Its memory and CPU are the worker's too: the VmHWM and CPU figures are the sums of both
processes (the writer's own figures follow them).
"""

from __future__ import annotations

import functools
import os
import resource
import sys
import time


def status_kib(field: str, pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def writer_pids() -> list[int]:
    from roster.bulk import writer_process

    return writer_process.POOL.idle_pids()


def writer_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def without_audit() -> None:
    """bench/bulk.py --without-audit: the writer decides as usual but writes no audit events, so the
    run shows what the audit trail costs (the events are still collected and encoded; that is cheap)."""
    from roster.participants import batch

    def no_audit_events(_decision, _db):
        return iter(())

    batch.audit_statements = no_audit_events


def main() -> None:
    if os.environ.get("ROSTER_BENCH_WITHOUT_AUDIT"):
        without_audit()
    from roster.bulk.tuning import prepare_process
    from roster.bulk.worker import drain
    from roster.config import Settings
    from roster.db import Database, worker_limits

    settings = Settings()
    # As `roster worker` connects: its sessions are named roster-worker, which bench/bulk.py's DB CPU looks for.
    db = Database(settings.database_url, worker_limits(settings.job_lease_seconds))
    with db.engine.connect():
        pass
    # As `roster worker` does before its first poll (roster.bulk.tuning); a deployed worker also polls
    # before its first job arrives, which starts its SQLite writer process, so neither is timed here.
    prepare_process()
    drain(db, settings)
    writers = writer_pids()
    print("ready", status_kib("VmRSS") + sum(status_kib("VmRSS", pid) for pid in writers), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    started, cpu, writer_cpu = time.perf_counter(), cpu_seconds(), writer_cpu_seconds(writers)
    if os.environ.get("ROSTER_BENCH_CALLGRIND"):
        # bench/bulk.py --instructions: callgrind counts only inside functools.reduce (a C function).
        jobs = functools.reduce(lambda _a, _b: drain(db, settings), (None, None))
    else:
        jobs = drain(db, settings)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    # The job gave its writer process back to the pool (a new one, had the first died).
    writers = writer_pids()
    writer_cpu = writer_cpu_seconds(writers) - writer_cpu if writers else 0.0
    writer_hwm = sum(status_kib("VmHWM", pid) for pid in writers)
    print(
        "done",
        jobs,
        f"{elapsed:.6f}",
        status_kib("VmHWM") + writer_hwm,
        f"{cpu + writer_cpu:.6f}",
        writer_hwm,
        f"{writer_cpu:.6f}",
        flush=True,
    )
    sys.stdin.read()  # keep the connections open until the harness has read their server-side CPU time
    db.dispose()


if __name__ == "__main__":
    main()
