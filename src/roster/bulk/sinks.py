"""Chooses how a job's batches are written (roster.bulk.sink), in this one place:

- a dry run (SPEC §11.1): decided under the lock and only logged (roster.bulk.dry_run);
- SQLite file with the overlap on, on POSIX: the writer process (roster.bulk.process_sink), when one
  can start; otherwise
- PostgreSQL with the overlap on: in the worker's transaction, from a writer thread (InlineSink);
- anything else: in the worker's transaction, one batch at a time (InlineSink).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from roster.bulk import writer_process
from roster.bulk.dry_run import dry_run_sink
from roster.bulk.inline_sink import InlineSink
from roster.bulk.process_sink import WriterProcessSink
from roster.bulk.sink import BatchSink, RunningJob
from roster.config import Settings
from roster.db import Database

# How the worker gets a sink for a job; tests pass their own (e.g. one wrapping open_sink with faults).
SinkFactory = Callable[[RunningJob], AbstractContextManager[BatchSink]]


def uses_writer_process(db: Database, settings: Settings) -> bool:
    return settings.bulk_overlap and db.sqlite_file is not None and writer_process.SUPPORTED


@contextmanager
def open_sink(job: RunningJob) -> Iterator[BatchSink]:
    if job.job.dry_run:
        with dry_run_sink(job) as sink:
            yield sink
        return
    inline = InlineSink(job, overlaps=job.settings.bulk_overlap and job.db.dialect == "postgresql")
    if not uses_writer_process(job.db, job.settings):
        yield inline
        return
    with writer_process.leased() as process:
        yield inline if process is None else WriterProcessSink(job, process, inline)


def prestart(db: Database, settings: Settings) -> None:
    """A worker about to poll: its writer process ready before a job comes, as the worker itself is."""
    if uses_writer_process(db, settings):
        writer_process.prestart()
