"""A job's `warnings`, bounded (issue 13): the web page polls the job list every second, so one header of
thousands of unknown columns, or of one 1 MiB name, must not make every answer megabytes long.

Bounded where they are made (a few names per warning, each cut short, then "and N more"; a few warnings
per job) and again where they are read, for rows stored before the bound existed. A warning names header
cells only, never data: a header cell is shown up to its first line break, so a quoted header cell that
ran on into the data lines shows none of them.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

MAX_NAMES = 10  # names listed in one warning
MAX_NAME_CHARS = 100  # characters of one name shown
MAX_WARNINGS = 10  # warnings kept per job
# A listing of MAX_NAMES cut names with its words fits; longer text (an old row) is cut to this on read.
MAX_WARNING_CHARS = 80 + MAX_NAMES * (MAX_NAME_CHARS + 3)
CUT = "…"


def shown_name(name: str) -> str:
    """The name up to its first control character (a line break) and at most MAX_NAME_CHARS, marked when cut."""
    return _cut(name, MAX_NAME_CHARS)


def listing(one: str, many: str, names: Sequence[str]) -> list[str]:
    """One warning naming at most MAX_NAMES of `names`, then how many more: `one` is its subject for a
    single name (`Unknown column ignored`), `many` for several. No names, no warning."""
    if not names:
        return []
    shown = ", ".join(shown_name(n) for n in names[:MAX_NAMES])
    rest = len(names) - MAX_NAMES
    more = f" and {rest:,} more" if rest > 0 else ""
    return [f"{one if len(names) == 1 else many}: {shown}{more}"]


def bounded(warnings: Iterable[Any] | None) -> list[str]:
    """At most MAX_WARNINGS warnings of at most MAX_WARNING_CHARS each; the last says how many were left out."""
    items = list(warnings or ())
    kept = items if len(items) <= MAX_WARNINGS else items[: MAX_WARNINGS - 1]
    out = [_cut(w if isinstance(w, str) else json.dumps(w, ensure_ascii=False), MAX_WARNING_CHARS) for w in kept]
    if len(kept) < len(items):
        out.append(f"and {len(items) - len(kept):,} more warnings")
    return out


def _cut(text: str, limit: int) -> str:
    # Also on read: a row stored before this bound may hold a header cell that ran on into data lines.
    end = next((i for i, ch in enumerate(text[: limit + 1]) if unicodedata.category(ch) == "Cc"), None)
    if end is not None:
        return text[:end] + CUT
    return text if len(text) <= limit else text[:limit] + CUT
