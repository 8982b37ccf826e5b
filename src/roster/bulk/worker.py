"""Job workers: `drain` (synchronous, for tests and scripts), `run_forever` (`roster worker`) and
`start_embedded` (threads inside `roster serve`). All of them run jobs the same way: claim, heartbeat,
import, and on any failure give the job back to the queue or mark it FAILED after its last attempt.

Log lines name the job and the exception type only: rows carry personal data.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType

from fastapi import FastAPI

from roster import codes
from roster.bulk import heartbeat, queue, retention, sinks, tuning
from roster.bulk.extract import Extractor
from roster.bulk.importer import Importer
from roster.bulk.jobstats import JobRun
from roster.bulk.models import JOB_TYPE_EXTRACT, JOB_TYPE_REVERT
from roster.bulk.queue import Claim, LeaseLost
from roster.bulk.revert import Reverter
from roster.bulk.sink import Stopped
from roster.bulk.sinks import SinkFactory, open_sink
from roster.config import Settings
from roster.db import Database, worker_limits

log = logging.getLogger("roster.worker")


class _Heartbeat:
    """Renews the lease while a job runs (a batch may wait on a lock longer than a lease)."""

    def __init__(self, db: Database, claim: Claim, lease_seconds: int):
        self.db = db
        self.claim = claim
        self.lease_seconds = lease_seconds
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{claim.job_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        interval = max(self.lease_seconds / 3, 0.5)
        while not self._done.wait(interval):
            try:
                if not queue.renew(self.db, self.claim, self.lease_seconds):
                    self.lost.set()
                    return
            except Exception as exc:  # a database hiccup: the next beat (or the batch fence) tries again
                log.warning("job %s: lease renewal failed (%s)", self.claim.uuid, type(exc).__name__)


def run_one(
    db: Database, settings: Settings, stop: threading.Event | None = None, batch_sinks: SinkFactory = open_sink
) -> bool:
    """Claims and runs one job; False when there was nothing to claim. `batch_sinks`: how its batches are
    written (roster.bulk.sinks)."""
    sinks.prestart(db, settings)
    claim = queue.claim(db, settings.job_lease_seconds)
    if claim is None:
        return False
    if claim.attempts > settings.job_max_attempts:
        queue.exhausted(db, claim)
        return True
    # JobRun logs the attempt's start and end lines (counts, seconds, rows/s) and counts its metrics.
    with JobRun(db, claim), _Heartbeat(db, claim, settings.job_lease_seconds) as beat:
        try:
            if claim.type == JOB_TYPE_EXTRACT:
                status = Extractor(db, settings, claim, stop=stop, lost=beat.lost).run()
            elif claim.type == JOB_TYPE_REVERT:
                status = Reverter(db, settings, claim, stop=stop, lost=beat.lost).run()
            else:
                status = Importer(db, settings, claim, stop=stop, lost=beat.lost, sinks=batch_sinks).run()
            if not status:
                log.info("job %s: taken over by another worker", claim.uuid)
        except LeaseLost:
            log.warning("job %s: lease lost, the batch in progress was rolled back", claim.uuid)
        except Stopped:
            queue.release(db, claim, count_attempt=False)
            log.info("job %s: given back to the queue (worker stopping)", claim.uuid)
        except Exception as exc:
            log.error("job %s: attempt %d failed with %s", claim.uuid, claim.attempts, type(exc).__name__)
            try:
                queue.fail_attempt(db, claim, settings.job_max_attempts, codes.JOB_ATTEMPTS_EXHAUSTED)
            except Exception as again:  # the lease runs out and another claim counts the attempt
                log.error("job %s: could not record the failure (%s)", claim.uuid, type(again).__name__)
    return True


def drain(db: Database, settings: Settings, batch_sinks: SinkFactory = open_sink) -> int:
    """Process every queued job synchronously in the calling thread until none is left; returns how many."""
    count = 0
    while run_one(db, settings, batch_sinks=batch_sinks):
        count += 1
    return count


@dataclass
class Workers:
    """Worker threads sharing one stop flag; `stop()` lets each finish its current batch."""

    db: Database
    settings: Settings
    concurrency: int = 1
    stop_event: threading.Event = field(default_factory=threading.Event)
    wake_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    owns_db: bool = False  # dispose of the engine on stop()
    beat: heartbeat.Heartbeat | None = None
    purger: retention.Purger | None = None
    batch_sinks: SinkFactory = open_sink

    def start(self) -> Workers:
        # The process's heartbeat row and its share of the cluster's purging (SPEC §13).
        self.beat = heartbeat.Heartbeat(self.db, self.settings.job_lease_seconds, self.concurrency).start()
        self.purger = retention.Purger(self.db, self.settings).start()
        for n in range(self.concurrency):
            thread = threading.Thread(target=self._loop, name=f"roster-worker-{n + 1}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def wake(self) -> None:
        """A job was just queued: look now instead of at the next poll."""
        self.wake_event.set()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                found = run_one(self.db, self.settings, self.stop_event, self.batch_sinks)
            except Exception as exc:  # e.g. the database is unreachable: wait and try again
                log.error("worker: claiming failed (%s)", type(exc).__name__)
                found = False
            if not found:
                self.wake_event.wait(self.settings.worker_poll_seconds)
                self.wake_event.clear()

    def stop(self, timeout: float | None = 60) -> None:
        self.stop_event.set()
        self.wake_event.set()
        for thread in self.threads:
            thread.join(timeout)
        if self.owns_db:
            self.db.dispose()
        for helper in (self.purger, self.beat):
            if helper is not None:
                helper.stop()


def run_forever(settings: Settings, db: Database, concurrency: int = 1) -> None:
    """`roster worker`: runs until SIGTERM/SIGINT, then finishes the current batches and exits."""
    tuning.prepare_process()  # a process of its own: the interpreter-wide tunings are the worker's alone
    workers = Workers(db, settings, max(1, concurrency))

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("worker: %s received, stopping after the current batch", signal.Signals(signum).name)
        workers.stop_event.set()
        workers.wake_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("worker: %d thread(s) polling every %.1fs", workers.concurrency, settings.worker_poll_seconds)
    workers.start()
    while not workers.stop_event.wait(1):
        pass
    workers.stop(timeout=None)
    db.dispose()


def start_embedded(app: FastAPI) -> Workers:
    """Worker threads in the server process (the embedded default); `app.state.wake_workers` is set
    so that an upload wakes them at once. They have their own engine, with a worker's session limits."""
    settings: Settings = app.state.settings
    db = Database(app.state.db.url, worker_limits(settings.job_lease_seconds, settings.worker_count))
    # A test may hand the app its own sinks (roster.bulk.sinks) to inject faults.
    batch_sinks = getattr(app.state, "batch_sinks", None) or open_sink
    workers = Workers(db, settings, settings.worker_count, owns_db=True, batch_sinks=batch_sinks).start()
    app.state.wake_workers = workers.wake
    return workers
