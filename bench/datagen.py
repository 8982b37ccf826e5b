"""Deterministic bulk-upload files for the benchmark, streamed to disk (never held in memory).

Two files per size N (both seeded, so every run measures the same bytes):

* ``seed`` file, N/2 rows: participants BP-0000001 .. BP-{N/2}, every row valid. Run 1 creates them.
* ``bulk`` file, N rows — the measured one. Row i uses ID BP-{i}: the first half of the file are
  participants of the seed file with changed contact fields (→ ``updated``), the second half are new
  IDs (→ ``created``). Every 20th row (i % 20 == 10) is broken instead, with an error picked by the
  seeded RNG from ERROR_KINDS (→ ``failed``): exactly 5 % failures, spread evenly through both halves.

``expected`` counts are returned so the harness can check the pipeline's counts after the run.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

HEADER = ["ParticipantID", "firstName", "lastName", "emailAddress", "mobileNumber", "identifier"]
SEED = 20240601

FIRST = [
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Elif",
    "Fatima",
    "George",
    "Hana",
    "Ibrahim",
    "Jürgen",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
    "Oscar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tomás",
    "Uma",
    "Victor",
    "Wen",
    "Xavier",
    "Yara",
    "Zoë",
    "Mary Ann",
    "Jean-Luc",
    "Siobhán",
    "李",
]
LAST = [
    "Smith",
    "O'Brien",
    "García",
    "Müller",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Yamamoto",
    "Okafor",
    "Andersson",
    "Dubois",
    "Papadopoulos",
    "Van der Berg",
    "Smith, Jr.",
    "Ødegaard",
    "Silva",
    "Cohen",
    "Haddad",
    "Ivanova",
    "Kim",
    "Lopez-Martinez",
    "MacDonald",
    "Nakamura",
    "王",
]
ASCII = str.maketrans({"é": "e", "ü": "u", "á": "a", "ë": "e", "ø": "o", "Ø": "O", "í": "i", "ó": "o"})

# Each kind makes the row fail with at least one rule of SPEC §5. Control characters are ones that
# no reader treats as a line break and that PostgreSQL's COPY accepts (no NUL: the inspector rejects it).
ERROR_KINDS = (
    "first_name_too_long",
    "last_name_too_long",
    "identifier_too_long",
    "bad_email",
    "bad_mobile",
    "mobile_too_long",
    "html_in_id",
    "id_too_long",
    "missing_id",
    "duplicate_in_file",
    "control_char",
    "ragged_more",
    "ragged_fewer",
)
CONTROL_CHARS = ("\x01", "\x07", "\x1b", "\x7f")
ERROR_EVERY = 20
ERROR_AT = 10


@dataclass
class Generated:
    path: Path
    rows: int
    size: int
    expected: dict[str, int] = field(default_factory=dict)


def pid(i: int) -> str:
    return f"BP-{i:07d}"


def _ascii(name: str) -> str:
    return "".join(c for c in name.translate(ASCII).lower() if c.isascii() and c.isalnum())


# Names as email local-part material, computed once (per row it was most of the generator's time).
FIRST_ASCII = [_ascii(n) for n in FIRST]
LAST_ASCII = [_ascii(n) for n in LAST]


def _valid(i: int, rng: random.Random, version: int) -> list[str]:
    f, la = rng.randrange(len(FIRST)), rng.randrange(len(LAST))
    first, last = FIRST[f], LAST[la]
    domain = "example.org" if version == 1 else "example.net"
    email = f"{FIRST_ASCII[f] or 'p'}.{LAST_ASCII[la] or 'p'}.{i}@{domain}"
    mobile = f"+{1 + i % 99} {6170000000 + i * 7 + version:d}"[:17]
    return [pid(i), first, last, email, mobile, f"MRN-{i:08d}"]


def _broken(i: int, rng: random.Random, kind: str) -> list[str]:
    row = _valid(i, rng, 2)
    if kind == "first_name_too_long":
        row[1] = "Maximiliana-Alexandrina-Konstantina"[:35] + "X"
    elif kind == "last_name_too_long":
        row[2] = "Wolfeschlegelsteinhausenbergerdorff" + "ë"
    elif kind == "identifier_too_long":
        row[5] = "MRN-" + "7" * 32
    elif kind == "bad_email":
        row[3] = row[3].replace("@", " at ")
    elif kind == "bad_mobile":
        row[4] = "617-555-0199"
    elif kind == "mobile_too_long":
        row[4] = "+1 61755501990000"[:16] + "12"
    elif kind == "html_in_id":
        row[0] = f"<b>{pid(i)}</b>"
    elif kind == "id_too_long":
        row[0] = pid(i) + "-" + "X" * 20
    elif kind == "missing_id":
        row[0] = ""
    elif kind == "duplicate_in_file":
        row[0] = pid(i - 1).lower()  # the previous row's ID in another case: still the same participant
    elif kind == "control_char":
        row[1] = row[1][:2] + CONTROL_CHARS[i % len(CONTROL_CHARS)] + row[1][2:]
    elif kind == "ragged_more":
        row.append("stray cell")
    elif kind == "ragged_fewer":
        row.pop()
    return row


def _write(path: Path, rows: int, make) -> int:
    """Writes via a temp file and rename, so an interrupted run never leaves a truncated cached file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")  # as spreadsheet programs save
        writer.writerow(HEADER)
        for i in range(1, rows + 1):
            writer.writerow(make(i))
    os.replace(tmp, path)
    return path.stat().st_size


def seed_file(out: Path, n: int, seed: int = SEED) -> Generated:
    rows = n // 2
    path = out / f"seed_{n}_{seed}.csv"
    rng = random.Random(seed)
    if not path.exists():
        _write(path, rows, lambda i: _valid(i, rng, 1))
    return Generated(
        path, rows, path.stat().st_size, {"rows": rows, "created": rows, "updated": 0, "unchanged": 0, "failed": 0}
    )


def bulk_file(out: Path, n: int, seed: int = SEED) -> Generated:
    path = out / f"bulk_{n}_{seed}.csv"
    rng = random.Random(seed + 1)
    half = n // 2
    failed = sum(1 for i in range(1, n + 1) if i % ERROR_EVERY == ERROR_AT)
    failed_first_half = sum(1 for i in range(1, half + 1) if i % ERROR_EVERY == ERROR_AT)
    expected = {
        "rows": n,
        "created": (n - half) - (failed - failed_first_half),
        "updated": half - failed_first_half,
        "unchanged": 0,
        "failed": failed,
    }

    def make(i: int) -> list[str]:
        if i % ERROR_EVERY == ERROR_AT:
            return _broken(i, rng, ERROR_KINDS[rng.randrange(len(ERROR_KINDS))])
        return _valid(i, rng, 2)

    if not path.exists():
        _write(path, n, make)
    return Generated(path, n, path.stat().st_size, expected)


def workbook_file(out: Path, n: int, seed: int = SEED) -> Generated:
    """The bulk file's rows as an .xlsx (every cell text, first sheet), with the same expected counts. Two
    broken kinds cannot be written as they are: XML holds no control characters, and a short row is
    padded in a sheet (not malformed). Such rows are written with a stray cell right of the header
    instead: still malformed, so still failed."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    source = bulk_file(out, n, seed)
    path = out / f"bulk_{n}_{seed}.xlsx"
    if not path.exists():
        wb = Workbook(write_only=True)
        ws = wb.create_sheet()

        def text(value: str) -> WriteOnlyCell:
            cell = WriteOnlyCell(ws, value=value)
            cell.data_type = "s"  # never a formula or a number: the CSV's text as it is
            return cell

        with open(source.path, encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.reader(fh)):
                if i and (len(row) < len(HEADER) or any(c in cell for cell in row for c in CONTROL_CHARS)):
                    row = [
                        *(cell.translate({ord(c): None for c in CONTROL_CHARS}) for cell in row),
                        *[""] * (len(HEADER) - len(row)),
                        "stray cell",
                    ]
                ws.append([text(cell) for cell in row])
        tmp = path.with_suffix(".tmp")
        wb.save(tmp)
        os.replace(tmp, path)
    return Generated(path, source.rows, path.stat().st_size, source.expected)
