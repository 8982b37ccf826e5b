"""The benchmark's input files are what bench/README.md says they are: deterministic, exactly 5 % broken
rows that the real reader and rules reject, half updates and half new participants."""

from __future__ import annotations

import sys
from pathlib import Path

from roster.bulk.csvreader import ID_COLUMN, read_csv
from roster.participants.rules import check_record

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import datagen  # noqa: E402

N = 2000


def _entries(path: Path):
    header, entries = read_csv([path.read_bytes()])
    return header, list(entries)


def test_files_are_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert datagen.bulk_file(a, N).path.read_bytes() == datagen.bulk_file(b, N).path.read_bytes()
    assert datagen.seed_file(a, N).path.read_bytes() == datagen.seed_file(b, N).path.read_bytes()


def test_seed_rows_are_all_valid_and_the_first_half_of_the_bulk_file(tmp_path: Path) -> None:
    header, seed = _entries(datagen.seed_file(tmp_path, N).path)
    assert len(seed) == N // 2
    assert not any(
        e.malformed or check_record(header.values(e.cells), header.written, id_method="manual") for e in seed
    )
    _header, bulk = _entries(datagen.bulk_file(tmp_path, N).path)
    seed_ids = {e.cells[0] for e in seed}
    valid_ids = [e.cells[0] for e in bulk if e.row % datagen.ERROR_EVERY != datagen.ERROR_AT]
    assert set(valid_ids[: len(valid_ids) // 2]) <= seed_ids
    assert not set(valid_ids[len(valid_ids) // 2 :]) & seed_ids


def test_exactly_the_broken_rows_fail_the_field_rules_or_the_duplicate_check(tmp_path: Path) -> None:
    gen = datagen.bulk_file(tmp_path, N)
    header, entries = _entries(gen.path)
    assert len(entries) == N == gen.expected["rows"]
    seen: set[str] = set()
    failing = []
    for e in entries:
        values = header.values(e.cells)
        errors = e.malformed or check_record(values, header.written, id_method="manual")
        key = values[ID_COLUMN].casefold()
        if key and key in seen:
            errors = True
        seen.add(key)
        if errors:
            failing.append(e.row)
    assert failing == [i for i in range(1, N + 1) if i % datagen.ERROR_EVERY == datagen.ERROR_AT]
    assert gen.expected["failed"] == len(failing) == N // 20
    assert gen.expected["created"] + gen.expected["updated"] + gen.expected["failed"] == N
