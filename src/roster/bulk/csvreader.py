"""Streaming CSV reader for bulk uploads (SPEC §4 checks 12–15, §5).

Decisions (where the spec is silent):
- A *completely blank line* is a physical line holding nothing but whitespace: no delimiter, no quote.
  It is skipped and gets no row number. `,,,` is a row of empty cells; `""` is a row with one empty cell.
  Blank lines before the header are skipped too.
- Delimiter: `;` when the first non-blank line has more semicolons than commas outside quotes, else `,`.
- A quote inside an unquoted field is kept literally (`O"Neil`), as spreadsheet programs read it.
- Broken quoting (text after a closing quote, a quote never closed) makes the record's FIRST physical line
  one malformed row; the record's other lines are read again as rows of their own, so a stray quote never
  swallows the rows after it. Each line is read at most a bounded number of times, so this stays linear.
- Bounds that keep memory flat whatever the file: a cell of more than MAX_FIELD_CHARS characters, a physical
  line of more than MAX_LINE_CHARS characters, or a record spanning more than MAX_RECORD_LINES lines is a
  malformed row (no legitimate participant value comes near these).
- Empty header cells (e.g. a trailing delimiter in the header) are neither unknown columns nor duplicates.
"""

from __future__ import annotations

import csv
import io
import operator
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain

from roster import codes
from roster.bulk.job_warnings import listing
from roster.csvout import unescape_cell
from roster.errors import DomainError
from roster.participants import fields

ID_COLUMN = fields.PARTICIPANT_ID.name
CANONICAL = tuple(f.name for f in fields.BULK)
# header name, case-folded -> canonical name (roster.participants.fields)
_CANONICAL_BY_KEY = {header.casefold(): f.name for f in fields.BULK for header in f.headers}

# Read from the csv module, never changed: it is process-wide state.
MAX_FIELD_CHARS = csv.field_size_limit()
MAX_LINE_CHARS = 1 << 20
MAX_RECORD_LINES = 100
# Cells kept of one record. A 1 MiB line of commas is a million cells; a batch of such rows would hold
# gigabytes. A wider row is malformed anyway (no header has that many columns), so its cells are cut here.
MAX_CELLS = 1024
_READ_CHUNK = 1 << 16
_LINE_ENDS = ("\n", "\r")


@dataclass(slots=True)
class Header:
    names: list[str]  # header cells as written, trimmed
    delimiter: str  # "," or ";"
    columns: dict[str, int]  # canonical name -> cell index
    written: dict[str, str]  # canonical name -> the header name as the file wrote it
    unknown: list[str]  # unknown column names as written
    _pairs: tuple[tuple[str, int], ...] = field(default=(), init=False, repr=False, compare=False)
    _need: int = field(default=0, init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)
    _pick: Callable[[list[str]], Sequence[str]] = field(default=tuple, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._pairs = tuple(self.columns.items())
        self._need = max(self.columns.values(), default=-1) + 1
        self._names = tuple(self.columns)
        indexes = tuple(self.columns.values())
        # itemgetter of one index returns the cell itself, not a 1-tuple.
        self._pick = (
            (lambda cells: (cells[indexes[0]],))
            if len(indexes) == 1
            else operator.itemgetter(*indexes)
            if indexes
            else (lambda cells: ())
        )

    def values(self, cells: list[str]) -> dict[str, str]:
        """Canonical name -> trimmed cell, for every known column (a missing cell reads as empty).
        A leading `'` that Roster's own formula escaping added (see csvout) is taken off again."""
        if len(cells) >= self._need:
            # The per-row hot path: C-level picking, trimming and zipping (the bulk worker calls this per row).
            out = dict(zip(self._names, map(str.strip, self._pick(cells)), strict=True))
        else:
            n = len(cells)
            out = {name: (cells[i].strip() if i < n else "") for name, i in self._pairs}
        if "'" in "".join(out.values()):  # rare, and a C-level test; an O'Brien just takes the loop
            for name, value in out.items():
                if value[:1] == "'":
                    out[name] = unescape_cell(value)
        return out

    @property
    def warnings(self) -> list[str]:
        return listing("Unknown column ignored", "Unknown columns ignored", self.unknown)


@dataclass(slots=True)
class Entry:
    row: int  # 1-based data-row number (blank lines are not counted)
    line: int  # 1-based physical line where the record starts
    cells: list[str]  # cells as parsed, not trimmed
    malformed: bool  # cell count differs from the header's, or broken quoting


def read_csv(chunks: Iterable[bytes]) -> tuple[Header, Iterator[Entry]]:
    """Header and the data rows of an upload, streamed. Raises DomainError (400) for the header-level checks:
    invalidFileEncoding, blankFile, missingParticipantIDColumn, duplicateColumn; nothing else for any bytes.
    The header and the first data row are read at once (so blankFile is raised here); the rest lazily."""
    parser = _Parser(chunks)
    entries = parser.entries()
    header_cells, first = _start(entries, more_rows=False)
    header = build_header(header_cells, parser.delimiter)
    return header, chain((first,), entries)  # type: ignore[arg-type]  # _start raised blankFile if None


def parse_header(chunks: Iterable[bytes], *, more_rows: bool = False) -> Header:
    """Checks 13–15 on the start of a file, with the same code as read_csv (the upload inspector's use).
    `more_rows`: the caller saw non-blank content after these chunks, so no data row here is not blankFile."""
    parser = _Parser(chunks)
    header_cells, _ = _start(parser.entries(), more_rows=more_rows)
    return build_header(header_cells, parser.delimiter)


def _start(entries: Iterator[Entry], *, more_rows: bool) -> tuple[list[str], Entry | None]:
    """The header cells and the first data row; blankFile (check 13) when either is missing."""
    header = next(entries, None)
    first = next(entries, None) if header is not None else None
    if header is None or (first is None and not more_rows):
        raise DomainError(codes.BLANK_FILE, 400)
    return header.cells, first


def build_header(cells: list[str], delimiter: str) -> Header:
    """Checks 14 and 15 on header cells; the one place that maps header names to canonical columns."""
    names = [cell.strip() for cell in cells]
    columns: dict[str, int] = {}
    written: dict[str, str] = {}
    unknown: list[str] = []
    seen: dict[str, str] = {}
    id_count = 0
    duplicate: str | None = None
    for index, name in enumerate(names):
        if not name:
            continue
        key = name.casefold()
        if key in seen:
            duplicate = duplicate or name
            if _CANONICAL_BY_KEY.get(key) == ID_COLUMN:
                id_count += 1
            continue
        seen[key] = name
        canonical = _CANONICAL_BY_KEY.get(key)
        if canonical is None:
            unknown.append(name)
            continue
        if canonical == ID_COLUMN:
            id_count += 1
        columns[canonical] = index
        written[canonical] = name
    if id_count != 1:
        raise DomainError(
            codes.MISSING_PARTICIPANT_ID_COLUMN,
            400,
            {"column": ID_COLUMN, "count": id_count},
            detail=f"The header must have exactly one {ID_COLUMN} column; it has {id_count}.",
        )
    if duplicate is not None:
        raise DomainError(
            codes.DUPLICATE_COLUMN,
            400,
            {"column": duplicate},
            detail=f"The column {duplicate!r} is named twice in the header.",
        )
    return Header(names=names, delimiter=delimiter, columns=columns, written=written, unknown=unknown)


def sniff_delimiter(line: str) -> str:
    """`;` when the header line has more semicolons than commas outside quotes."""
    if ";" not in line:
        return ","
    if "," not in line and '"' not in line:
        return ";"
    commas = semicolons = 0
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            if ch == ",":
                commas += 1
            elif ch == ";":
                semicolons += 1
    return ";" if semicolons > commas else ","


class _ChunkStream(io.RawIOBase):
    """Raw stream over an iterable of byte chunks (so TextIOWrapper can decode and split lines in C)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # what io passes
        view = self._view
        while not view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            view = memoryview(chunk).cast("B")
        n = min(len(buffer), len(view))
        buffer[:n] = view[:n]
        self._view = view[n:]
        return n


class _Overlong(str):
    """A physical line cut at MAX_LINE_CHARS (its rest was discarded): always a malformed row."""


class _Broken(Exception):
    """Raised through the csv reader when a record grows past the bounds."""


class _Parser:
    """Records of a text stream with the recovery described in the module docstring.

    `pending` holds the physical lines of the record being read; a broken record's lines after its first go
    back into `pushback` and are read again."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        raw = io.BufferedReader(_ChunkStream(chunks), _READ_CHUNK)
        # newline="": lines keep their own ends (CRLF, LF, CR), so quoted line breaks survive as written.
        self._text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        self._text._CHUNK_SIZE = _READ_CHUNK  # type: ignore[attr-defined]
        self._pending: list[str] = []
        self._pushback: deque[str] = deque()
        self.delimiter = ","

    def _readline(self) -> str:
        """One physical line, cut at MAX_LINE_CHARS (the rest of an over-long line is read and dropped)."""
        line = self._text.readline(MAX_LINE_CHARS)
        if len(line) >= MAX_LINE_CHARS and not line.endswith(_LINE_ENDS):
            self._discard_rest(line)
            return _Overlong(line)
        return line

    def _lines(self) -> Iterator[str]:
        pending = self._pending
        append = pending.append
        pushback = self._pushback
        while pushback:
            line = pushback.popleft()
            append(line)
            if type(line) is _Overlong or len(pending) > MAX_RECORD_LINES:
                raise _Broken
            yield line
        readline = self._text.readline
        while True:
            line = readline(MAX_LINE_CHARS)
            if not line:
                return
            if len(line) >= MAX_LINE_CHARS and not line.endswith(_LINE_ENDS):
                self._discard_rest(line)
                append(_Overlong(line))
                raise _Broken
            append(line)
            if len(pending) > MAX_RECORD_LINES:
                raise _Broken
            yield line

    def _discard_rest(self, line: str) -> None:
        while len(line) >= MAX_LINE_CHARS and not line.endswith(_LINE_ENDS):
            line = self._text.readline(MAX_LINE_CHARS)

    def _first_line(self) -> int:
        """Skips blank lines before the header, picks the delimiter; returns how many lines were skipped."""
        skipped = 0
        while True:
            line = self._readline()
            if not line:
                return skipped
            if line.strip() or type(line) is _Overlong:
                self.delimiter = sniff_delimiter(line)
                self._pushback.append(line)
                return skipped
            skipped += 1

    def entries(self) -> Iterator[Entry]:
        """The header record first (row 0), then every non-blank record as a data row numbered from 1."""
        try:
            base = self._first_line()
            delimiter = self.delimiter
            pending = self._pending
            row = -1
            ncols = -1
            while True:
                reader = csv.reader(self._lines(), delimiter=delimiter, strict=True)
                start = base + 1
                try:
                    for cells in reader:
                        end = base + reader.line_num
                        if len(cells) <= 1 and (not cells or (not cells[0].strip() and '"' not in pending[0])):
                            pending.clear()
                            start = end + 1
                            continue
                        pending.clear()
                        row += 1
                        count = len(cells)
                        if count > MAX_CELLS:
                            del cells[MAX_CELLS:]
                        if row:
                            yield Entry(row, start, cells, count != ncols)
                        else:
                            ncols = count
                            yield Entry(0, start, cells, False)
                        start = end + 1
                    return
                except (csv.Error, _Broken):
                    lines = pending[:]
                    pending.clear()
                    if not lines:
                        return
                    cells = _lenient(lines[0], delimiter)
                    row += 1
                    if not row:
                        ncols = len(cells)
                    yield Entry(row, start, cells, True)
                    # The record's other lines are read again; the next reader's line 1 is physical line start+1.
                    self._pushback.extendleft(reversed(lines[1:]))
                    base = start
        except UnicodeDecodeError:
            raise DomainError(codes.INVALID_FILE_ENCODING, 400) from None


def _lenient(line: str, delimiter: str) -> list[str]:
    """Best-effort cells of one broken line (kept in the log for failedRows)."""
    text = line.rstrip("\r\n")
    try:
        cells = next(csv.reader([text], delimiter=delimiter), [""])
    except csv.Error:
        cells = text.split(delimiter, MAX_CELLS)
    del cells[MAX_CELLS:]
    return cells
