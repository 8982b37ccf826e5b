"""The one CSV writer: every CSV Roster writes goes through here (SPEC §6).

- Formula-safe: a text cell that begins with `=`, `+`, `-`, `@`, tab, CR or LF gets a leading `'`, so a
  spreadsheet shows it as text instead of evaluating it (CSV injection). This applies to every text cell,
  participant IDs and mobile numbers included (`+1 6175551234` is written `'+1 6175551234`).
- RFC 4180: minimal quoting, quotes doubled, CRLF line ends.
- Streaming: rows go out in chunks of about `chunk_bytes`; memory does not grow with the number of rows.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import quote

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
_FORMULA_START = frozenset("".join(FORMULA_PREFIXES))
CHUNK_BYTES = 64 * 1024
MEDIA_TYPE = "text/csv; charset=utf-8"


def safe_cell(value: object) -> str:
    """The cell as written: None is empty; text that a spreadsheet would run as a formula is neutralised.
    Numbers are written as they are: `-5` as a number is data, not a formula."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return safe_cell(str(value))


def unescape_cell(value: str) -> str:
    """The inverse of safe_cell for a trimmed cell read back from a file (e.g. a fixed failedRows download):
    `'+1 6175551234` is the mobile number `+1 6175551234`, not a number with a quote in front."""
    if len(value) > 1 and value[0] == "'" and value[1] in _FORMULA_START:
        return value[1:].strip()
    return value


class CsvWriter:
    """Accumulates formula-safe rows; `take()` hands out what has been written so far as UTF-8 bytes."""

    def __init__(self, delimiter: str = ",") -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")

    def row(self, cells: Iterable[object]) -> None:
        # Plain text that needs no escape is the common case: test it inline, call safe_cell for the rest.
        self._writer.writerow(
            [c if c.__class__ is str and not c.startswith(FORMULA_PREFIXES) else safe_cell(c) for c in cells]
        )

    def pending(self) -> int:
        """Characters written and not yet taken (a cheap size estimate for chunking)."""
        return self._buffer.tell()

    def take(self) -> bytes:
        data = self._buffer.getvalue().encode("utf-8")
        self._buffer.seek(0)
        self._buffer.truncate()
        return data


def stream_csv(
    rows: Iterable[Sequence[object]],
    header: Sequence[str] | None = None,
    *,
    delimiter: str = ",",
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[bytes]:
    """Yields the CSV (header first, when given) in chunks of about `chunk_bytes`; consumes `rows` lazily."""
    out = CsvWriter(delimiter)
    if header is not None:
        out.row(header)
    for cells in rows:
        out.row(cells)
        if out.pending() >= chunk_bytes:
            yield out.take()
    tail = out.take()
    if tail:
        yield tail


def to_csv(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None, *, delimiter: str = ",") -> bytes:
    """The whole CSV at once, for small outputs."""
    return b"".join(stream_csv(rows, header, delimiter=delimiter))


_UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/;:*?<>|]+')


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """`attachment` (or `inline`) with an ASCII fallback name and the exact name as RFC 5987 `filename*`.
    Path separators, quotes and control characters are dropped: the name comes from the uploader."""
    name = _UNSAFE_IN_FILENAME.sub("_", filename).strip(" .") or "download.csv"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem = ascii_name.rsplit(".", 1)[0] if "." in ascii_name else ascii_name
    ascii_name = ascii_name.strip(" .") if any(c.isalnum() for c in stem) else "download.csv"
    kind = "inline" if inline else "attachment"
    if ascii_name == name:
        return f'{kind}; filename="{name}"'
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
