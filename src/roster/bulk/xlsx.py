"""Excel workbooks (.xlsx) as bulk uploads (SPEC §4 check 11, §11.4): the container checks and a streaming
row reader that hands the importer exactly what the CSV reader does (a csvreader.Header and Entries).

Decisions (where the spec is silent):
- A workbook is a ZIP whose `[Content_Types].xml` names the SpreadsheetML workbook part
  (`…spreadsheetml.sheet.main+xml`) and at least one worksheet part. A macro-enabled main part or a
  `vbaProject.bin` anywhere (an .xlsm renamed) is refused like `.xlsm` itself; so are templates and ODF.
- The zip-bomb limits are read from the central directory before any member is opened; a member stored
  with zero compressed bytes but a non-zero size counts as over the ratio.
- Cell text: strings as they are; whole numbers without `.0`; other numbers in Python's shortest form
  (`0.1`); dates `YYYY-MM-DD` (with ` HH:MM:SS` when the cell holds a time of day too); times `HH:MM:SS`;
  booleans `TRUE`/`FALSE` (as Excel shows them and writes them to CSV); errors as shown (`#N/A`); a formula
  as its cached result (what Excel shows; none cached = empty).
- Rows: a row whose cells are all empty (or only spaces) is skipped and gets no row number, like a blank
  CSV line. Trailing empty cells are dropped; a data row with a non-empty cell right of the header's last
  non-empty cell is malformed (the CSV rule "a different number of cells than the header"); shorter rows
  are padded, so failedRows has the header's width.
- Memory: the sheet is read row by row and each row dropped once read (roster.bulk.xlsx_sheet). The
  shared-strings table is held whole, as every xlsx reader must: it is bounded by the zip-bomb limits.
"""

from __future__ import annotations

import datetime
import math
import tempfile
import zipfile
from collections.abc import Generator, Iterable, Iterator
from itertools import chain
from typing import IO
from xml.etree import ElementTree

from roster import codes
from roster.bulk.csvreader import MAX_CELLS, MAX_FIELD_CHARS, Entry, Header, build_header
from roster.bulk.xlsx_sheet import Sheet, open_first_sheet, sheet_rows
from roster.errors import DomainError

ZIP_MAGIC = b"PK\x03\x04"
EXPANSION_FACTOR = 10  # total uncompressed size may be 10 × MAX_UPLOAD_BYTES
MAX_RATIO = 100  # no member compressed more than 100:1
_CONTENT_TYPES = "[Content_Types].xml"
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_WORKBOOK_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
_WORKSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_MACRO_TYPE = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
_MIDNIGHT = datetime.time()


def not_a_workbook(reason: str, detail: str) -> DomainError:
    return DomainError(codes.NOT_SUPPORTED_FILE_FORMAT, 400, {"reason": reason}, detail=detail)


def check_container(file: IO[bytes], max_bytes: int) -> None:
    """Check 11 for a `.xlsx` upload, and the zip-bomb limits (413 fileTooLarge) before anything is expanded."""
    file.seek(0)
    if file.read(4) != ZIP_MAGIC:
        raise not_a_workbook("content", "The file is not an Excel workbook (.xlsx).")
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            _check_sizes(members, max_bytes)
            names = {m.filename for m in members}
            if _CONTENT_TYPES not in names:
                raise not_a_workbook("content", "The file is not an Excel workbook (.xlsx).")
            if any(name.rsplit("/", 1)[-1].lower() == "vbaproject.bin" for name in names):
                raise not_a_workbook("macros", "Workbooks with macros are not accepted; save it as .xlsx.")
            types = _content_types(archive.read(_CONTENT_TYPES))
            sheets = types.get(_WORKSHEET_TYPE, set())
            missing = not sheets or any(part.lstrip("/") not in names for part in sheets)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ElementTree.ParseError, EOFError, OSError):
        raise not_a_workbook("content", "The file is not a readable Excel workbook (.xlsx).") from None
    if _MACRO_TYPE in types:
        raise not_a_workbook("macros", "Workbooks with macros are not accepted; save it as .xlsx.")
    if _WORKBOOK_TYPE not in types or missing:
        raise not_a_workbook("content", "The file is not an Excel workbook (.xlsx) with a worksheet.")


def _check_sizes(members: list[zipfile.ZipInfo], max_bytes: int) -> None:
    limit = EXPANSION_FACTOR * max_bytes
    total = sum(m.file_size for m in members)
    over_ratio = next((m for m in members if m.file_size > MAX_RATIO * m.compress_size), None)
    if total > limit or over_ratio is not None:
        reason = "uncompressedSize" if total > limit else "compressionRatio"
        raise DomainError(
            codes.FILE_TOO_LARGE,
            413,
            {"maxBytes": max_bytes, "reason": reason},
            detail=f"The workbook expands to more than {EXPANSION_FACTOR} times the upload limit or a part of it is "
            f"compressed more than {MAX_RATIO}:1; it is not read.",
        )


def _content_types(xml: bytes) -> dict[str, set[str]]:
    """Content type -> the part names it is declared for (a Default, by extension, names no part)."""
    types: dict[str, set[str]] = {}
    for el in ElementTree.fromstring(xml):
        if el.tag in (_CT_NS + "Override", _CT_NS + "Default"):
            parts = types.setdefault(el.get("ContentType", ""), set())
            if el.tag == _CT_NS + "Override":
                parts.add(el.get("PartName", ""))
    return types


def inspect_workbook(file: IO[bytes], max_bytes: int) -> Header:
    """Checks 10–15 on a whole `.xlsx` upload: the container, then the header and a first data row."""
    check_container(file, max_bytes)
    entries = _entries(file, close=False)
    try:
        return _start(entries)[0]
    finally:
        entries.close()  # closes the workbook; the upload's spool stays open for storing


def read_xlsx(chunks: Iterable[bytes]) -> tuple[Header, Iterator[Entry]]:
    """The stored upload as header and data rows. ZIP needs random access: the (compressed) workbook is
    copied to an anonymous temporary file first, never expanded."""
    spool = tempfile.TemporaryFile(prefix="roster-xlsx-")
    try:
        for chunk in chunks:
            spool.write(chunk)
        return open_rows(spool)
    except BaseException:
        spool.close()
        raise


def open_rows(file: IO[bytes], *, close: bool = True) -> tuple[Header, Iterator[Entry]]:
    """Header and data rows of the first worksheet, as read_csv gives them (blankFile and the header checks
    raised here). `close`: the file is closed when the rows are done or dropped."""
    entries = _entries(file, close)
    try:
        header, first = _start(entries)
    except BaseException:
        entries.close()
        raise
    return header, chain((first,), entries)


def _start(entries: Iterator[Entry]) -> tuple[Header, Entry]:
    """The header (checks 14–15) and the first data row; blankFile (check 13) when either is missing."""
    header = next(entries, None)
    first = next(entries, None) if header is not None else None
    if header is None or first is None:
        raise DomainError(codes.BLANK_FILE, 400)
    return build_header(header.cells, ","), first


def _entries(file: IO[bytes], close: bool) -> Generator[Entry]:
    """The header row (row 0), then the data rows numbered from 1; `line` is the worksheet row number."""
    archive = None
    try:
        try:
            file.seek(0)
            sheet = open_first_sheet(file)
            archive = sheet.archive
            source = archive.open(sheet.part)
        except Exception:
            raise not_a_workbook("content", "The workbook cannot be read.") from None
        with source:
            row = -1
            width = 0
            for line, values in _rows(sheet, source):
                cells = [cell_text(v) for v in values]
                while cells and not cells[-1].strip():
                    cells.pop()
                if not cells:
                    continue
                row += 1
                malformed = len(cells) > MAX_CELLS or any(len(c) > MAX_FIELD_CHARS for c in cells)
                if malformed:
                    cells = [c[:MAX_FIELD_CHARS] for c in cells[:MAX_CELLS]]
                if not row:
                    width = len(cells)
                    yield Entry(0, line, cells, False)
                    continue
                if len(cells) > width:
                    malformed = True
                else:
                    cells.extend([""] * (width - len(cells)))
                yield Entry(row, line, cells, malformed)
    finally:
        if archive is not None:
            archive.close()
        if close:
            file.close()


def _rows(sheet: Sheet, source: IO[bytes]) -> Iterator[tuple[int, list[object]]]:
    try:
        yield from sheet_rows(sheet, source)
    except (ElementTree.ParseError, ValueError, KeyError, IndexError, zipfile.BadZipFile, EOFError) as exc:
        raise not_a_workbook("content", f"The worksheet cannot be read ({type(exc).__name__}).") from None


def cell_text(value: object) -> str:
    """A cell's value as the text a CSV of the sheet would hold (module docstring)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime.datetime):
        if value.time() == _MIDNIGHT:
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.isoformat(timespec="seconds")
    return str(value)
