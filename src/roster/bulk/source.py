"""The one place that picks the reader for a stored upload: every consumer (importer, failedRows) asks
`read_upload` and gets a csvreader.Header and its Entries, whatever the file kind.

The kind is told by the first bytes: the upload inspector refuses a `.csv` that starts with the ZIP
signature (check 11) and accepts a `.xlsx` only when it is a ZIP workbook, so a stored upload starting with
it is a workbook and anything else is CSV text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain

from roster.bulk.csvreader import Entry, Header, read_csv
from roster.bulk.xlsx import ZIP_MAGIC, read_xlsx


def read_upload(chunks: Iterable[bytes]) -> tuple[Header, Iterator[Entry]]:
    chunks = iter(chunks)
    head = b""
    for chunk in chunks:  # stored chunks are large; this loops more than once only for a tiny first one
        head += chunk
        if len(head) >= len(ZIP_MAGIC):
            break
    rest = chain((head,), chunks)
    return read_xlsx(rest) if head.startswith(ZIP_MAGIC) else read_csv(rest)
