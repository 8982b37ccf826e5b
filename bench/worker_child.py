"""The benchmark's worker process: the real `roster.bulk.worker.drain`, in a process of its own.

Settings come from ROSTER_* variables (bench/bulk.py sets them). It imports, connects and polls the empty queue
once first, as a deployed worker does before its first job, and says "ready <VmRSS KiB>", so start-up is not timed; on "go" it drains the queue and answers
"done <jobs> <seconds> <VmHWM KiB> <CPU seconds>". CPU seconds (user + system, all threads)
say how much work the worker did whatever else runs on the machine; wall seconds are what a user waits. VmHWM is this process image's own peak RSS: unlike the
ru_maxrss that wait4() reports for a child, it cannot include the parent's RSS at fork/exec time.
"""

from __future__ import annotations

import functools
import os
import resource
import sys
import time


def status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def without_audit() -> None:
    """bench/bulk.py --without-audit: the writer decides as usual but writes no audit events, so the
    run shows what the audit trail costs (the events are still collected and encoded; that is cheap)."""
    from roster.participants.batch import Batch

    real = Batch._write

    def write(batch, db) -> None:
        batch.audit = None
        real(batch, db)

    Batch._write = write


def main() -> None:
    if os.environ.get("ROSTER_BENCH_WITHOUT_AUDIT"):
        without_audit()
    from roster.bulk.worker import drain
    from roster.config import Settings
    from roster.db import Database

    settings = Settings()
    db = Database(settings.database_url)
    with db.engine.connect():
        pass
    # A deployed worker polls before its first job arrives; its first poll does the process's one-time
    # preparation (roster.bulk.worker._prepare_process), so that is not part of a job's time here either.
    drain(db, settings)
    print("ready", status_kib("VmRSS"), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    started, cpu = time.perf_counter(), cpu_seconds()
    if os.environ.get("ROSTER_BENCH_CALLGRIND"):
        # bench/bulk.py --instructions: callgrind counts only inside functools.reduce (a C function).
        jobs = functools.reduce(lambda _a, _b: drain(db, settings), (None, None))
    else:
        jobs = drain(db, settings)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print("done", jobs, f"{elapsed:.6f}", status_kib("VmHWM"), f"{cpu:.6f}", flush=True)
    sys.stdin.read()  # keep the connections open until the harness has read their server-side CPU time
    db.dispose()


if __name__ == "__main__":
    main()
