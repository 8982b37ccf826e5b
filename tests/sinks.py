"""Faults injected through the bulk worker's seams: the sink the worker would choose (roster.bulk.sinks.open_sink),
wrapped with hooks around its writes; the SQLite writer processes it would lease, from a pool of faulty ones
(roster.bulk.writer_process.Pool)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from roster.bulk.planner import BatchPlan
from roster.bulk.sink import BatchOutcome, BatchSink, RunningJob
from roster.bulk.sinks import SinkFactory, open_sink
from roster.bulk.writer_process import Pool, WriterProcess
from roster.config import Settings
from roster.db import Database


class Hooked:
    def __init__(self, sink: BatchSink, job: RunningJob, before, after, planned) -> None:
        self.sink, self.job = sink, job
        self.before, self.after, self.planned = before, after, planned
        self.overlaps, self.decides = sink.overlaps, sink.decides

    def prepare(self, plan: BatchPlan, reads: Any) -> None:
        if self.planned is not None:
            self.planned(self.job, plan)
        self.sink.prepare(plan, reads)

    def write(self, plan: BatchPlan) -> BatchOutcome:
        if self.before is not None:
            self.before(self.job, plan)
        outcome = self.sink.write(plan)
        if self.after is not None:
            self.after(self.job, outcome)
        return outcome


class HookedSinks:
    def __init__(self, sinks: SinkFactory, before, after, planned) -> None:
        self.sinks, self.before, self.after, self.planned = sinks, before, after, planned

    @contextmanager
    def __call__(self, job: RunningJob) -> Iterator[BatchSink]:
        with self.sinks(job) as sink:
            yield Hooked(sink, job, self.before, self.after, self.planned)

    def prestart(self, db: Database, settings: Settings) -> None:
        self.sinks.prestart(db, settings)


def hooked(
    *,
    before: Callable[[RunningJob, BatchPlan], None] | None = None,
    after: Callable[[RunningJob, BatchOutcome], None] | None = None,
    planned: Callable[[RunningJob, BatchPlan], None] | None = None,
    sinks: SinkFactory = open_sink,
) -> SinkFactory:
    """`sinks`' sink, where `before(job, plan)` runs before each batch is written, `after(job, outcome)` once it
    is, and `planned(job, plan)` in the planning thread as each batch's plan is made (not for a stale plan)."""
    return HookedSinks(sinks, before, after, planned)


def failing_after(calls: int, exc: type[BaseException]) -> tuple[SinkFactory, dict[str, int]]:
    """A sink that writes `calls` batches, then raises `exc` instead of writing; and its count of calls."""
    seen = {"n": 0}

    def flaky(_job: RunningJob, _plan: BatchPlan) -> None:
        seen["n"] += 1
        if seen["n"] > calls:
            raise exc("injected")

    return hooked(before=flaky), seen


Answer = tuple[str, Any]


def writers(call: Callable[[WriterProcess, Callable[[], Answer]], Answer]) -> Pool:
    """A pool of writer processes that answer each request through `call(process, answer)`, where `answer()`
    sends the request to the real process and waits for its answer. The caller closes the pool."""

    class Hooked(WriterProcess):
        def call(self, request: bytes, timeout: float | None = None) -> Answer:
            return call(self, lambda: WriterProcess.call(self, request, timeout))

    return Pool(Hooked)
