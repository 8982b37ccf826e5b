"""Process-wide tunings for a standalone worker process (`roster worker`, bench/worker_child.py), measured
with bench/bulk.py (figures in bench/HISTORY.md). They change the whole interpreter — its garbage
collector, thread switching, the C allocator, sqlite3's adapters — so `roster serve` does not apply them
to its embedded workers, whose process also answers requests.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading

from roster import sqliteconn

# The batch writer thread wakes for every database reply and should not wait CPython's default 5 ms for
# the GIL each time, longer than the database took.
SWITCH_INTERVAL = 0.0002
# Allocations between two collections of the youngest generation (CPython's default is 700). A job makes
# millions of short-lived containers that reference counting frees; a larger threshold collects less
# often, and a much larger one lets peak memory grow with the file.
GC_THRESHOLDS = (10_000, 10, 10)
_M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
_MMAP_THRESHOLD = 128 * 1024  # glibc's initial value

_prepared = threading.Event()


def prepare_process() -> None:
    """Once per worker process, before its first job; later calls do nothing."""
    if _prepared.is_set():
        return
    _prepared.set()
    # What the process holds before its first job (modules, SQLAlchemy's caches) goes out of the
    # collector's sight, so that collections of the oldest generation do not walk it again and again.
    # After a collection, so that no garbage is frozen with it.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
    sqliteconn.bind_none_cheaply()
    _fixed_mmap_threshold()


def _fixed_mmap_threshold() -> None:
    """glibc raises its mmap threshold every time a large block is freed, after which a batch's payloads
    and result sets come from the heap, fragment it, and RSS creeps up over a long job. A fixed threshold
    keeps them mapped and unmapped on free."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): its allocator, its behaviour
        pass
