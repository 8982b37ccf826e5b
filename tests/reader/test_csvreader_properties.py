"""Property-based tests of the CSV reader: it never fails on any bytes, and it round-trips what csv.writer wrote."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roster.bulk.csvreader import read_csv
from roster.errors import DomainError

CSVISH = st.binary(max_size=600) | st.lists(
    st.sampled_from(
        [
            b'"',
            b",",
            b";",
            b"\r",
            b"\n",
            b"\r\n",
            b" ",
            b"\t",
            b"a",
            b"P1",
            b"\x00",
            b"\xff",
            b"\xc3",
            b"\xa9",
            b"\xef\xbb\xbf",
        ]
    ),
    max_size=120,
).map(b"".join)
HEADERISH = st.sampled_from(
    [
        b"",
        b"ParticipantID\n",
        b"ParticipantID,firstName\n",
        b"ParticipantID;x;y\r\n",
        b"\xef\xbb\xbfparticipantid , a\r",
    ]
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=HEADERISH, body=CSVISH, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
def test_any_bytes_give_rows_or_a_domain_error_never_anything_else(head, body, cuts):
    data = head + body
    try:
        header, entries = read_csv(_split(data, cuts))
        result = list(entries)
    except DomainError:
        return
    assert [e.row for e in result] == list(range(1, len(result) + 1))
    lines = [e.line for e in result]
    assert lines == sorted(set(lines))
    physical = len(io.StringIO(data.decode("utf-8-sig"), newline="").readlines())
    assert all(2 <= line <= physical for line in lines)
    assert all(isinstance(c, str) for e in result for c in e.cells)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.text(alphabet=st.sampled_from("ab,; \t1é"), max_size=12),
        min_size=1,
        max_size=30,
    ),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_without_quotes_every_non_blank_line_is_exactly_one_row_at_its_own_line(lines, eol):
    lines = ["P0,first", *lines]  # at least one data row
    text = "ParticipantID,firstName" + eol + eol.join(lines) + eol
    header, entries = read_csv([text.encode()])
    result = list(entries)
    expected = [(i + 2, line) for i, line in enumerate(lines) if line.strip()]
    assert [(e.line, e.cells) for e in result] == [(n, line.split(",")) for n, line in expected]
    assert [e.malformed for e in result] == [line.count(",") != 1 for _, line in expected]


CELL = st.text(max_size=20)  # any Unicode but surrogates: quotes, delimiters, CR/LF, NUL, emoji...


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    ncols=st.integers(min_value=2, max_value=4),
    delimiter=st.sampled_from([",", ";"]),
    eol=st.sampled_from(["\r\n", "\n", "\r"]),
    bom=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=100_000), max_size=8),
)
def test_every_row_written_by_csv_writer_comes_back_once_in_order_with_its_cells(
    data, ncols, delimiter, eol, bom, cuts
):
    table = data.draw(st.lists(st.lists(CELL, min_size=ncols, max_size=ncols), min_size=1, max_size=25))
    blanks = data.draw(st.lists(st.sampled_from(["", "  ", "\t"]), min_size=len(table), max_size=len(table)))
    blank_before = data.draw(st.lists(st.booleans(), min_size=len(table), max_size=len(table)))
    header = ["ParticipantID", "firstName", "c3", "c4"][:ncols]

    out = io.StringIO()
    expected_lines = []
    line = 1 + 1  # the header is line 1
    out.write(delimiter.join(header) + eol)
    for cells, blank, before in zip(table, blanks, blank_before, strict=True):
        if before:
            out.write(blank + eol)
            line += 1
        record = io.StringIO()
        # csv.writer quotes a cell only for the characters of its own lineterminator: with "\n" it would leave
        # a lone "\r" unquoted. Write with "\r\n" (quotes both) and then end the record with `eol`.
        csv.writer(record, delimiter=delimiter, lineterminator="\r\n").writerow(cells)
        text = record.getvalue()[:-2] + eol
        expected_lines.append(line)
        line += len(io.StringIO(text, newline="").readlines())
        out.write(text)
    raw = (("\ufeff" if bom else "") + out.getvalue()).encode()

    parsed_header, entries = read_csv(_split(raw, cuts))
    result = list(entries)
    assert parsed_header.delimiter == delimiter
    assert [e.cells for e in result] == table
    assert [e.row for e in result] == list(range(1, len(table) + 1))
    assert [e.line for e in result] == expected_lines
    assert not any(e.malformed for e in result)
