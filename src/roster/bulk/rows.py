"""The upload's data rows as the importer takes them: read (roster.bulk.csvreader), checked against the
field rules (SPEC §5) and batched, in file order, skipping the rows an earlier attempt applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from roster import codes
from roster.bulk.csvreader import ID_COLUMN, Entry, Header
from roster.csvout import unescape_cell
from roster.participants.models import participant_key
from roster.participants.rules import RuleError, check_record, rule_error


@dataclass(slots=True)
class Row:
    """One data row, read and checked. A row that passed the checks goes to the writer as it is
    (participants.records.RecordLike): one object less per row than building a Record."""

    entry: Entry
    participant_id: str  # trimmed; "" when the cell is empty or missing
    key: str | None
    errors: list[RuleError]
    fields: dict[str, str] | None
    duplicate: bool = False  # an earlier row of the file had the same ID


def batches(header: Header, entries: Iterable[Entry], *, done: int, size: int, id_method: str) -> Iterator[list[Row]]:
    """The rows after row `done`, checked and in batches of `size`. The reader's DomainError (an
    unreadable file) comes through as it is."""
    batch: list[Entry] = []
    for entry in entries:
        if entry.row <= done:
            continue  # applied and logged by an earlier attempt
        batch.append(entry)
        if len(batch) >= size:
            yield prepare(header, batch, id_method)
            batch = []
    if batch:
        yield prepare(header, batch, id_method)


def prepare(header: Header, batch: list[Entry], id_method: str) -> list[Row]:
    id_index = header.columns[ID_COLUMN]
    written = header.written
    malformed = rule_error(codes.MALFORMED_ROW, "")
    rows = []
    for entry in batch:
        if entry.malformed:
            cells = entry.cells
            # Read as Header.values reads it, so that the in-file duplicate check sees the same ID.
            pid = unescape_cell(cells[id_index].strip()) if id_index < len(cells) else ""
            rows.append(Row(entry, pid, participant_key(pid) if pid else None, [malformed], None))
            continue
        values = header.values(entry.cells)
        errors = check_record(values, written, id_method=id_method)
        pid = values.pop(ID_COLUMN)
        # Empty cells stay in: the writer reads them as "keep the stored value".
        rows.append(Row(entry, pid, participant_key(pid) if pid else None, errors, values))
    return rows
