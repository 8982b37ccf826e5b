"""The first worksheet of an `.xlsx`, row by row, through openpyxl's public pieces only.

openpyxl's own read-only loop keeps every parsed <row> (and `load_workbook` parses a whole sheet into a tree
when it has no <dimension>), so the rows are read here with ElementTree's iterparse and dropped once read.
Cells are decoded as openpyxl's worksheet reader decodes them in data-only mode: shared and inline strings,
numbers (int unless written with a point or exponent), booleans, errors, ISO dates, a formula's cached
value, and numbers whose style is a date or time format as datetimes (`from_excel`, the workbook's epoch).
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO
from xml.etree import ElementTree

_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _SHEET_DATA, _VALUE, _INLINE = (_MAIN_NS + tag for tag in ("row", "sheetData", "v", "is"))
_STYLES_PART = "xl/styles.xml"


@dataclass(frozen=True)
class Sheet:
    """What decoding the first worksheet's cells needs from the rest of the workbook."""

    archive: zipfile.ZipFile
    part: str  # the worksheet's name in the archive
    shared_strings: list[str]
    date_styles: frozenset[int]
    duration_styles: frozenset[int]
    epoch: object  # openpyxl's WINDOWS_EPOCH or MAC_EPOCH (datetime)


def open_first_sheet(file: IO[bytes]) -> Sheet:
    """The first worksheet (not a chartsheet) of the workbook in `file`; the caller closes `archive`."""
    # Imported on first use: CSV-only workers never load openpyxl.
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.styles.stylesheet import Stylesheet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Workbook contains no default style": not the uploader's concern
        reader = ExcelReader(file, read_only=True, data_only=True)
        try:
            reader.read_manifest()
            reader.read_strings()
            reader.read_workbook()
            part = next(
                rel.target
                for _sheet, rel in reader.parser.find_sheets()
                if rel.target in reader.valid_files and "chartsheet" not in rel.Type
            )
            date_styles: frozenset[int] = frozenset()
            duration_styles: frozenset[int] = frozenset()
            if _STYLES_PART in reader.valid_files:
                styles = Stylesheet.from_tree(ElementTree.fromstring(reader.archive.read(_STYLES_PART)))
                date_styles, duration_styles = frozenset(styles.date_formats), frozenset(styles.timedelta_formats)
        except BaseException:
            reader.archive.close()
            raise
    return Sheet(reader.archive, part, list(reader.shared_strings), date_styles, duration_styles, reader.wb.epoch)


def _row_number(given: str) -> int:
    value = float(given)
    if not value.is_integer():
        raise ValueError("a row number that is not whole")
    return int(value)


def sheet_rows(sheet: Sheet, source: IO[bytes]) -> Iterator[tuple[int, list[object]]]:
    """(worksheet row number, cell values by column from A) per <row>, each dropped once decoded."""
    from openpyxl.cell.text import Text
    from openpyxl.utils.cell import coordinate_to_tuple
    from openpyxl.utils.datetime import from_excel, from_ISO8601

    def value_of(cell: ElementTree.Element) -> object:
        kind = cell.get("t", "n")
        if kind == "inlineStr":
            inline = cell.find(_INLINE)
            return None if inline is None else Text.from_tree(inline).content
        text = cell.findtext(_VALUE) or None
        if text is None:
            return None
        if kind == "n":
            number: int | float = float(text) if "." in text or "e" in text or "E" in text else int(text)
            style = int(cell.get("s", 0))
            if style in sheet.date_styles:
                try:
                    return from_excel(number, sheet.epoch, timedelta=style in sheet.duration_styles)
                except (OverflowError, ValueError):
                    return "#VALUE!"  # a date style on a serial outside the calendar: what Excel shows
            return number
        if kind == "s":
            return sheet.shared_strings[int(text)]
        if kind == "b":
            return bool(int(text))
        if kind == "d":
            return from_ISO8601(text)
        return text  # "str" (a formula's text result) and "e" (an error such as #N/A)

    sheet_data = None
    number = 0
    for event, element in ElementTree.iterparse(source, events=("start", "end")):
        if event == "start":
            if element.tag == _SHEET_DATA:
                sheet_data = element
            continue
        if element.tag != _ROW:
            continue
        given = element.get("r")
        number = _row_number(given) if given else number + 1
        values: list[object] = []
        column = 0
        for cell in element:
            reference = cell.get("r")
            column = coordinate_to_tuple(reference)[1] if reference else column + 1
            if column > len(values):
                values.extend([None] * (column - 1 - len(values)))
                values.append(value_of(cell))
            elif column > 0:
                values[column - 1] = value_of(cell)
        if sheet_data is not None:
            del sheet_data[:]  # drop the rows read so far: memory stays flat
        yield number, values
