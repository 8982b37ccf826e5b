"""Worker heartbeats (SPEC §13): every running worker process keeps one row in `worker_heartbeats`
(host, pid, version, threads, started, last seen, the jobs it runs now), renewed every third of the job
lease. A worker is live while its last beat is within one lease: `GET P/admin/workers` lists those, and
`roster worker --check` (the container health check) exits 0 only when one of this host's did beat.

Times of beats are the database's clock, as lease times are (roster.bulk.queue), so workers on several
machines are judged by one clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Interval, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from roster import __version__
from roster.bulk.models import WorkerHeartbeat
from roster.db import Database, rowcount, table_of, utcnow

log = logging.getLogger("roster.worker")

HOST = socket.gethostname()[:100]
_HB = table_of(WorkerHeartbeat)
# SQLite's clock written as the UTCDateTime column stores time ("YYYY-MM-DD HH:MM:SS.ffffff").
_SQLITE_NOW = "%Y-%m-%d %H:%M:%f000"

_current: set[str] = set()
_current_lock = threading.Lock()


def db_now(dialect: str, offset_seconds: int = 0) -> ColumnElement[Any]:
    """The database's clock plus `offset_seconds` (may be negative), read when the statement runs."""
    if dialect == "postgresql":
        now = func.now()
        return now + literal(dt.timedelta(seconds=offset_seconds), Interval()) if offset_seconds else now
    return func.strftime(_SQLITE_NOW, "now", f"{offset_seconds:+d} seconds")


@contextmanager
def running(job_uuid: str) -> Iterator[None]:
    """Marks a job as one this process runs now (the heartbeat's `current_jobs`)."""
    with _current_lock:
        _current.add(job_uuid)
    try:
        yield
    finally:
        with _current_lock:
            _current.discard(job_uuid)


def current_jobs() -> list[str]:
    with _current_lock:
        return sorted(_current)


class Heartbeat:
    """This process's row: written at `start()`, renewed by a daemon thread, deleted at `stop()`."""

    def __init__(self, db: Database, lease_seconds: int, threads: int) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.threads = threads
        self.row_id: int | None = None
        self.started_at = utcnow()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="roster-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        try:
            self.beat()
        except Exception as exc:  # the database may come later: the thread keeps trying
            log.warning("worker heartbeat: first beat failed (%s)", type(exc).__name__)
        self._thread.start()
        return self

    def beat(self) -> None:
        values = {"last_seen": db_now(self.db.dialect), "current_jobs": current_jobs()}
        with self.db.transaction() as session:
            if self.row_id is not None and rowcount(
                session.execute(update(_HB).where(_HB.c.id == self.row_id).values(**values))
            ):
                return
            # First beat, or the row was purged as stale while the database was out of reach.
            self.row_id = session.execute(
                insert(_HB)
                .values(
                    host=HOST,
                    pid=os.getpid(),
                    version=__version__,
                    threads=self.threads,
                    started_at=self.started_at,
                    **values,
                )
                .returning(_HB.c.id)
            ).scalar_one()

    def _run(self) -> None:
        while not self._stop.wait(max(self.lease_seconds / 3, 0.5)):
            try:
                self.beat()
            except Exception as exc:  # a database hiccup: the next beat tries again
                log.warning("worker heartbeat failed (%s)", type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.row_id is None:
            return
        try:
            with self.db.transaction() as session:
                session.execute(delete(_HB).where(_HB.c.id == self.row_id))
        except Exception as exc:  # the row ages out of the live list by itself
            log.warning("worker heartbeat: could not remove this worker's row (%s)", type(exc).__name__)


def live(session: Session, lease_seconds: int) -> list[WorkerHeartbeat]:
    """Workers whose last beat is within one lease, by host and start."""
    dialect = session.get_bind().dialect.name
    return list(
        session.scalars(
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_seen >= db_now(dialect, -lease_seconds))
            .order_by(WorkerHeartbeat.host, WorkerHeartbeat.started_at, WorkerHeartbeat.id)
        )
    )


def live_count(session: Session, lease_seconds: int) -> int:
    dialect = session.get_bind().dialect.name
    return (
        session.scalar(select(func.count()).select_from(_HB).where(_HB.c.last_seen >= db_now(dialect, -lease_seconds)))
        or 0
    )


def check(db: Database, lease_seconds: int, host: str = HOST) -> bool:
    """Whether a worker on `host` beat within its lease."""
    with db.read_sessions() as session, session.begin():
        found = session.execute(
            select(_HB.c.id).where(_HB.c.host == host, _HB.c.last_seen >= db_now(db.dialect, -lease_seconds)).limit(1)
        ).first()
    return found is not None
