"""SQLite: a helper process that writes a bulk job's batches, so that the database's work runs on a second
core while the worker decides the next batch (roster.bulk.importer).

On PostgreSQL the server does the writing, and the worker's writer thread holds no GIL while it waits. SQLite
does its work inside the process that asks, under that process's GIL: a writer thread there gains nothing
(bench/HISTORY.md). So the worker sends each batch, as the very statements it would have run (SQL text and driver
parameters, built by roster.fastsql and SQLAlchemy in the worker), to this process, which runs them in one
transaction and answers.

It knows nothing of Roster's models or rules: it imports the standard library and roster.sqliteconn only (small, and
quick to start). Its checks are generic: a step may require that the row it returns starts with given values (the
study's revision and settings the batch was decided with), or that it returns a row at all (the fenced checkpoint).
When a check fails, or a unique constraint (an access code drawn meanwhile by another study), it rolls back and says so,
and the worker writes the batch itself, deciding it again under the lock, as it would without this process.
A batch that this process committed and could not report (it died) is no different from a worker that died
after its commit: the job's checkpoint says which rows are done.

The worker starts it (`WriterProcess`): requests on its stdin, answers on its stdout, pickled.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from roster import sqliteconn

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

# The process talks over pipes as file descriptors (POSIX); elsewhere every batch is written in the worker.
SUPPORTED = os.name == "posix"

log = logging.getLogger("roster.worker")

# One step: SQL text, its parameters, and its check: None (none), ROW (it must return a row, which the
# answer carries), or a tuple (the row it returns must start with these values).
ROW = "row"
Step = tuple[str, Sequence[Any], Any]

# Answers: (WRITTEN, [rows of the ROW steps]) | (STALE, step index) | (MISSING, step index) | (CONFLICT, message)
WRITTEN, STALE, MISSING, CONFLICT, ERROR = "written", "stale", "missing", "conflict", "error"

# A pipe of 1 MiB (Linux's limit without privileges) takes a batch's request in one piece instead of
# 64 KiB at a time, each waiting for the other process to be scheduled.
_PIPE_BYTES = 1 << 20
# Writer processes kept idle for later jobs, per worker process (a busy worker thread gets one of its own).
_MAX_IDLE = 1
# The process says it is ready, and which code it runs: the same file as the worker's, same protocol.
_PROTOCOL = 1
_READY_SECONDS = 15
# After a failed start, batches are written in the worker for a while before the next try.
_RETRY_SECONDS = 60.0
# How the worker starts the process: -P keeps the working directory off its import path, and this package's
# own location goes last, so a source tree that is not installed is found without shadowing anything.
_START = "import sys; sys.path.append(sys.argv[1]); from roster.bulk.writer_process import _main; _main()"


def run(connection: sqlite3.Connection, steps: Sequence[Step]) -> tuple[str, Any]:
    """The steps in one transaction (BEGIN IMMEDIATE, as roster.db's writers). Nothing stays written
    unless the answer is WRITTEN."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        rows = []
        for index, (sql, params, check) in enumerate(steps):
            cursor = connection.execute(sql, params)
            if check is None:
                continue
            row = cursor.fetchone()
            cursor.close()
            if check == ROW:
                if row is None:
                    connection.rollback()
                    return MISSING, index
                rows.append(tuple(row))
            elif row is None or tuple(row[: len(check)]) != tuple(check):
                connection.rollback()
                return STALE, index
        connection.commit()
        return WRITTEN, rows
    except sqlite3.IntegrityError as exc:
        connection.rollback()
        return CONFLICT, str(exc)
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise


def _open(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        sqliteconn.configure(connection)
        # Only batches are written here, and a batch lands with its checkpoint or not at all: one lost in a
        # crash of the machine is done again (roster.db.Database.transaction, relaxed).
        connection.execute("PRAGMA " + sqliteconn.RELAXED)
    except BaseException:
        connection.close()
        raise
    return connection


def _file(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_dev, status.st_ino


def serve(requests: Connection, answers: Connection) -> None:
    """The process's loop: (database path, steps) in, an answer out, until None or the worker is gone."""
    sqliteconn.bind_none_cheaply()
    opened, connection = None, None
    while True:
        try:
            request = requests.recv()
        except EOFError:  # the worker exited
            break
        if request is None:
            break
        try:
            # One database at a time (a worker serves one); a file replaced at the same path is opened anew.
            path = request[0]
            if (path, _file(path)) != opened:
                if connection is not None:
                    connection.close()
                opened, connection = None, None
                connection = _open(path)
                opened = path, _file(path)
            assert connection is not None
            answer = run(connection, request[1])
        except Exception as exc:
            # The type and the driver's message (SQLite's name tables and constraints). The worker raises it,
            # and logs only the type, as for any failed batch.
            answer = ERROR, f"{type(exc).__name__}: {exc}"
        try:
            answers.send(answer)
        except OSError:  # the worker died waiting: what was committed, its job's checkpoint says
            break
    if connection is not None:
        connection.close()


class WriterProcess:
    """The worker's handle on one writer process."""

    def __init__(self) -> None:
        """Starts the process and waits for it to say it is ready. Raises OSError when it does not, or
        when it runs other code than this worker (another copy of Roster found first on its path)."""
        here = str(Path(__file__).resolve().parents[2])
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-c", _START, here], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        self.busy = False
        try:
            try:
                fcntl.fcntl(stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
            except (OSError, AttributeError):  # not Linux, or a lower limit: sending just waits for the reader
                pass
            self._requests = Connection(os.dup(stdin.fileno()), readable=False)
            self._answers = Connection(os.dup(stdout.fileno()), writable=False)
            stdin.close()
            stdout.close()
            if not self._answers.poll(_READY_SECONDS):
                raise OSError("the bulk writer process did not start")
            ready = self._answers.recv()
            if ready != (_PROTOCOL, _this_file()):
                raise OSError("the bulk writer process runs other code than this worker")
        except (OSError, EOFError) as exc:
            self.process.kill()
            self.process.wait()
            raise OSError(str(exc)) from None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    @staticmethod
    def encode(path: str, steps: Sequence[Step]) -> bytes:
        """A request, pickled ahead (by the thread that decides batches, not the one that waits)."""
        return pickle.dumps((path, steps), pickle.HIGHEST_PROTOCOL)

    def call(self, request: bytes, timeout: float | None = None) -> tuple[str, Any]:
        """Sends an encoded request and waits for its answer. Raises ConnectionError when the process is gone,
        or did not answer within `timeout` seconds: then it is killed, so that a stuck process cannot keep
        the database locked (its transaction dies with it); the job's checkpoint says what was written."""
        self.busy = True
        try:
            self._requests.send_bytes(request)
            if timeout is not None and not self._answers.poll(timeout):
                self.process.kill()
                self.process.wait()
                raise ConnectionError(f"the bulk writer process did not answer within {timeout:.0f}s and was stopped")
            answer: tuple[str, Any] = self._answers.recv()
        except (EOFError, OSError) as exc:
            raise ConnectionError(f"the bulk writer process is gone (exit {self.process.poll()})") from exc
        self.busy = False
        if answer[0] == ERROR:
            raise RuntimeError(f"bulk writer process: {answer[1]}")
        return answer

    def close(self, timeout: float = 5) -> None:
        for end in (self._requests, self._answers):
            end.close()  # the process reads EOF and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_idle: list[WriterProcess] = []
_lock = threading.Lock()


@contextmanager
def leased() -> Iterator[WriterProcess | None]:
    """A writer process for one job: an idle one, or a new one; None when none can be started (the job's
    batches are then written in the worker). It goes back to the pool after the job unless it died or was
    left in the middle of a request."""
    with _lock:
        writer = _idle.pop() if _idle else None
    if writer is not None and not writer.alive():
        writer.close(timeout=0)
        writer = None
    if writer is None:
        writer = _start()
        if writer is None:
            yield None
            return
    try:
        yield writer
    finally:
        if writer.busy or not writer.alive():
            writer.close(timeout=0)
        else:
            with _lock:
                kept = len(_idle) < _MAX_IDLE
                if kept:
                    _idle.append(writer)
            if not kept:
                writer.close()


def prestart() -> None:
    """Starts a writer process ahead of the first job (a worker that is about to poll)."""
    with _lock:
        if _idle:
            return
    writer = _start()
    if writer is not None:
        with _lock:
            kept = len(_idle) < _MAX_IDLE  # another thread may have started one meanwhile
            if kept:
                _idle.append(writer)
        if not kept:
            writer.close()


def idle_pids() -> list[int]:
    """The pooled writer processes' pids (bench/worker_child.py adds their memory and CPU to the worker's)."""
    with _lock:
        return [writer.pid for writer in _idle]


_failed_at: float | None = None


def _start() -> WriterProcess | None:
    global _failed_at
    if _failed_at is not None and time.monotonic() - _failed_at < _RETRY_SECONDS:
        return None
    try:
        writer = WriterProcess()
    except OSError as exc:  # e.g. no process slots left: the worker writes its batches itself
        if _failed_at is None:
            log.warning("the bulk writer process could not start (%s); batches are written in the worker", exc)
        _failed_at = time.monotonic()
        return None
    _failed_at = None
    return writer


def _this_file() -> str:
    return str(Path(__file__).resolve())


@atexit.register
def close_all() -> None:
    with _lock:
        writers = list(_idle)
        _idle.clear()
    for writer in writers:
        writer.close()


def _main() -> None:
    # The worker decides when this process ends (by closing its pipe), after its current batch: a Ctrl-C
    # in the terminal, or a service manager's SIGTERM to every process of the worker, must not cut a
    # batch short here while the worker itself stops gracefully.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The protocol has stdout to itself: anything printed goes to stderr.
    answers = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    answers.send((_PROTOCOL, _this_file()))
    serve(Connection(os.dup(0), writable=False), answers)


if __name__ == "__main__":
    _main()
