"""Shared helpers of the reader tests (pure: no database)."""

from __future__ import annotations

from roster.bulk.csvreader import Entry, Header, read_csv
from roster.errors import DomainError


def chunked(data: bytes, size: int | None = None) -> list[bytes]:
    if not size:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def read(data: bytes, size: int | None = None) -> tuple[Header, list[Entry]]:
    header, entries = read_csv(chunked(data, size))
    return header, list(entries)


def rows(data: bytes, size: int | None = None) -> list[tuple[int, int, list[str], bool]]:
    return [(e.row, e.line, e.cells, e.malformed) for e in read(data, size)[1]]


def error_of(data: bytes) -> DomainError:
    try:
        read(data)
    except DomainError as exc:
        return exc
    raise AssertionError("no DomainError raised")
