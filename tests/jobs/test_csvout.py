"""The formula-safe streaming CSV writer every CSV of Roster goes through (no database needed)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roster.csvout import content_disposition, safe_cell, stream_csv, to_csv


@pytest.mark.parametrize("value", ["=cmd()", "+1 6175551234", "-2+3", "@SUM(A1)", "\tx", "\rx", "\nx"])
def test_cells_that_a_spreadsheet_would_evaluate_get_a_leading_apostrophe(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["P-1", "a=b", "x@y.org", "", " =leading space"])
def test_ordinary_text_is_written_unchanged(value):
    assert safe_cell(value) == value


def test_numbers_and_none_are_written_plainly():
    assert [safe_cell(v) for v in (None, 7, -5, 1.5, True)] == ["", "7", "-5", "1.5", "true"]


def test_quoting_follows_rfc_4180_with_crlf_line_ends():
    data = to_csv([["a,b", 'say "hi"', "two\nlines", "plain"]], ["H1", "H2", "H3", "H4"])
    assert data == b'H1,H2,H3,H4\r\n"a,b","say ""hi""","two\nlines",plain\r\n'


def test_a_formula_cell_with_a_line_break_is_both_escaped_and_quoted():
    assert to_csv([["=1+1\n"]]) == b'"\'=1+1\n"\r\n'


def test_semicolon_delimiter_quotes_cells_holding_semicolons():
    assert to_csv([["a;b", "c,d"]], delimiter=";") == b'"a;b";c,d\r\n'


def test_rows_are_streamed_in_chunks_and_consumed_lazily():
    produced = 0

    def rows():
        nonlocal produced
        for i in range(10_000):
            produced += 1
            yield [i, "x" * 50]

    chunks = stream_csv(rows(), ["n", "text"], chunk_bytes=4096)
    first = next(chunks)
    assert 4096 <= len(first) < 4096 + 200
    assert produced < 200  # only what the first chunk needed was pulled
    rest = b"".join(chunks)
    parsed = list(csv.reader(io.StringIO((first + rest).decode())))
    assert len(parsed) == 10_001 and parsed[-1] == ["9999", "x" * 50]


def test_an_empty_table_is_just_the_header():
    assert b"".join(stream_csv([], ["A", "B"])) == b"A,B\r\n"


@given(st.lists(st.lists(st.text(), min_size=1, max_size=5), max_size=20))
def test_what_is_written_reads_back_as_the_same_cells_apart_from_the_escape(rows):
    text = to_csv(rows).decode("utf-8")
    back = list(csv.reader(io.StringIO(text, newline="")))
    expected = [["'" + c if c.startswith(("=", "+", "-", "@", "\t", "\r", "\n")) else c for c in row] for row in rows]
    # csv.reader gives [] for a row that is a single empty cell; compare cell content only.
    assert [r if r else [""] for r in back] == expected


def test_content_disposition_attachment_or_inline():
    assert content_disposition("report.csv") == 'attachment; filename="report.csv"'
    assert content_disposition("report.csv", inline=True) == 'inline; filename="report.csv"'


def test_content_disposition_drops_quotes_paths_and_control_characters():
    value = content_disposition('..\\evil"\r\nX-Injected: 1/name.csv')
    assert "\r" not in value and "\n" not in value and "\\" not in value and "/" not in value
    assert value.count('"') == 2


def test_content_disposition_keeps_a_non_ascii_name_as_rfc_5987():
    value = content_disposition("Müller-名簿.csv")
    assert value.startswith("attachment; filename=\"Muller-.csv\"; filename*=UTF-8''")
    assert "M%C3%BCller-%E5%90%8D%E7%B0%BF.csv" in value
    assert content_disposition("名簿.csv").startswith('attachment; filename="download.csv"')
