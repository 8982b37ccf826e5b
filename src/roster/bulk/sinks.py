"""Chooses how a job's batches are written (roster.bulk.sink), in this one place:

- a dry run (SPEC §11.1): decided under the lock and only logged (roster.bulk.dry_run);
- SQLite file with the overlap on, on POSIX: the writer process (roster.bulk.process_sink), when one
  can start; otherwise
- PostgreSQL with the overlap on: in the worker's transaction, from a writer thread (InlineSink);
- anything else: in the worker's transaction, one batch at a time (InlineSink).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from roster.bulk import writer_process
from roster.bulk.dry_run import dry_run_sink
from roster.bulk.inline_sink import InlineSink
from roster.bulk.process_sink import WriterProcessSink
from roster.bulk.sink import BatchSink, RunningJob
from roster.config import Settings
from roster.db import Database


class SinkFactory(Protocol):
    """How the worker gets a sink for a job; tests pass their own (e.g. one wrapping open_sink with faults)."""

    def __call__(self, job: RunningJob) -> AbstractContextManager[BatchSink]: ...

    def prestart(self, db: Database, settings: Settings) -> None:
        """A worker about to poll: what its sinks need ready before a job comes, as the worker itself is."""


def uses_writer_process(db: Database, settings: Settings) -> bool:
    return settings.bulk_overlap and db.sqlite_file is not None and writer_process.SUPPORTED


class Sinks:
    """The sink chosen for each job, with writer processes from `pool` (tests pass one that makes faulty ones)."""

    def __init__(self, pool: writer_process.Pool = writer_process.POOL) -> None:
        self.pool = pool

    @contextmanager
    def __call__(self, job: RunningJob) -> Iterator[BatchSink]:
        if job.job.dry_run:
            with dry_run_sink(job) as sink:
                yield sink
            return
        inline = InlineSink(job, overlaps=job.settings.bulk_overlap and job.db.dialect == "postgresql")
        if not uses_writer_process(job.db, job.settings):
            yield inline
            return
        with self.pool.leased() as process:
            yield inline if process is None else WriterProcessSink(job, process, inline)

    def prestart(self, db: Database, settings: Settings) -> None:
        if uses_writer_process(db, settings):
            self.pool.prestart()


open_sink = Sinks()
