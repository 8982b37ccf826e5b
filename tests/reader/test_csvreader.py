"""The streaming CSV reader: dialect, numbering, malformed rows and header-level codes (SPEC §4, §5)."""

from __future__ import annotations

import itertools

import pytest

from roster import codes
from roster.bulk import csvreader
from roster.bulk.csvreader import read_csv
from roster.errors import DomainError
from tests.reader.helpers import error_of, read, rows

HEADER = b"ParticipantID,firstName\n"


def test_utf8_bom_is_dropped_from_the_first_header_name():
    header, entries = read(b"\xef\xbb\xbfParticipantID,firstName\nP1,Ann\n")
    assert header.names == ["ParticipantID", "firstName"]
    assert header.columns == {"ParticipantID": 0, "firstName": 1}
    assert [e.cells for e in entries] == [["P1", "Ann"]]


@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r"])
def test_every_line_end_style_is_accepted(eol):
    data = eol.join([b"ParticipantID,firstName", b"P1,Ann", b"P2,Bob", b""])
    assert rows(data) == [(1, 2, ["P1", "Ann"], False), (2, 3, ["P2", "Bob"], False)]


def test_mixed_line_ends_in_one_file_count_one_line_each():
    data = b"ParticipantID,firstName\r\nP1,Ann\nP2,Bob\rP3,Cy\r\nP4,Di"
    assert [(r, line, cells) for r, line, cells, _ in rows(data)] == [
        (1, 2, ["P1", "Ann"]),
        (2, 3, ["P2", "Bob"]),
        (3, 4, ["P3", "Cy"]),
        (4, 5, ["P4", "Di"]),
    ]


def test_quoted_delimiters_quotes_and_line_breaks_are_honoured_and_later_line_numbers_stay_right():
    data = (
        b"ParticipantID,firstName\r\n"
        b'P1,"Smith, Ann"\r\n'
        b'P2,"say ""hi"""\r\n'
        b'P3,"two\r\nlines"\r\n'
        b'P4,"three\nmixed\rbreaks"\r\n'
        b"P5,Eve\r\n"
    )
    assert rows(data) == [
        (1, 2, ["P1", "Smith, Ann"], False),
        (2, 3, ["P2", 'say "hi"'], False),
        (3, 4, ["P3", "two\r\nlines"], False),
        (4, 6, ["P4", "three\nmixed\rbreaks"], False),
        (5, 9, ["P5", "Eve"], False),
    ]


def test_semicolon_file_is_recognised_from_its_header_line():
    data = b'ParticipantID;firstName;lastName\nP1;"Ann; Jr";"Smith, Jones"\nP2;Bob;Lee\n'
    header, entries = read(data)
    assert header.delimiter == ";"
    assert [e.cells for e in entries] == [["P1", "Ann; Jr", "Smith, Jones"], ["P2", "Bob", "Lee"]]
    assert not any(e.malformed for e in entries)


def test_comma_file_whose_unknown_column_names_hold_one_semicolon_stays_comma():
    header, entries = read(b"ParticipantID,Notes;extra\nP1,a;b\n")
    assert header.delimiter == ","
    assert entries[0].cells == ["P1", "a;b"]


def test_semicolons_inside_quoted_header_names_do_not_count():
    assert csvreader.sniff_delimiter('ParticipantID,"a;b;c",x\n') == ","
    assert csvreader.sniff_delimiter('ParticipantID;"a,b,c";x\n') == ";"


def test_header_is_matched_case_and_space_insensitively_and_reports_names_as_written():
    header, _ = read(b" participantid ,FIRSTNAME,  LastName,EmailAddress,MOBILENUMBER,Identifier \nP1,a,b,c,d,e\n")
    assert header.columns == {
        "ParticipantID": 0,
        "firstName": 1,
        "lastName": 2,
        "emailAddress": 3,
        "mobileNumber": 4,
        "identifier": 5,
    }
    assert header.written["ParticipantID"] == "participantid"
    assert header.written["lastName"] == "LastName"
    assert header.names[0] == "participantid"
    assert header.unknown == []


def test_columns_may_come_in_any_order_and_values_are_trimmed():
    header, entries = read(b"lastName,Notes,ParticipantID\n  Smith , n ,\tP1 \n")
    assert header.columns == {"lastName": 0, "ParticipantID": 2}
    assert header.values(entries[0].cells) == {"lastName": "Smith", "ParticipantID": "P1"}
    assert entries[0].cells == ["  Smith ", " n ", "\tP1 "]


def test_values_of_a_short_row_read_missing_cells_as_empty():
    header, _ = read(b"ParticipantID,firstName,lastName\nP1,a,b\n")
    assert header.values(["P9"]) == {"ParticipantID": "P9", "firstName": "", "lastName": ""}
    header_one, _ = read(b"ParticipantID\nP1\n")
    assert header_one.values([" P1 "]) == {"ParticipantID": "P1"}


def test_unknown_columns_are_listed_as_written_and_become_warnings():
    header, entries = read(b"ParticipantID,Notes,Site Name,\nP1,x,y,\n")
    assert header.unknown == ["Notes", "Site Name"]
    assert header.warnings == ["Unknown columns ignored: Notes, Site Name"]
    assert entries[0].malformed is False


def test_unknown_column_warnings_are_bounded_and_name_no_data_line():
    # A quoted header cell that runs on into the data lines: the warning stops at its first line break.
    many = ",".join(f"Extra{i}" for i in range(25))
    header, _ = read(f'ParticipantID,{"N" * 500},"Notes\nP0,Jane Doe,jane@example.org",{many}\nP1\n'.encode())
    (warning,) = header.warnings
    assert (
        warning
        == "Unknown columns ignored: "
        + "N" * 100
        + "…, Notes…, "
        + ", ".join(f"Extra{i}" for i in range(8))
        + " and 17 more"
    )


def test_blank_lines_are_skipped_and_do_not_shift_row_numbers_but_do_count_as_lines():
    data = b"\n  \nParticipantID,firstName\n\nP1,Ann\n \t \n\r\nP2,Bob\n\n"
    assert rows(data) == [(1, 5, ["P1", "Ann"], False), (2, 8, ["P2", "Bob"], False)]


def test_a_line_of_delimiters_or_a_quoted_empty_value_is_a_row_not_a_blank_line():
    data = b'ParticipantID,firstName\n,\n"",""\n'
    assert rows(data) == [(1, 2, ["", ""], False), (2, 3, ["", ""], False)]
    single = b'ParticipantID\n""\n   \n" "\n'
    assert rows(single) == [(1, 2, [""], False), (2, 4, [" "], False)]


def test_ragged_rows_are_malformed_and_still_numbered():
    data = HEADER + b"P1\nP2,Bob,extra\nP3,Cy\nP4,Di,\n"
    assert rows(data) == [
        (1, 2, ["P1"], True),
        (2, 3, ["P2", "Bob", "extra"], True),
        (3, 4, ["P3", "Cy"], False),
        (4, 5, ["P4", "Di", ""], True),
    ]


def test_a_row_of_more_cells_than_any_header_keeps_only_the_first_max_cells_and_is_malformed():
    wide = b"P1" + b"," * (3 * csvreader.MAX_CELLS) + b"\n"
    data = HEADER + wide + b"P2,Bob\n"
    (first, second) = rows(data)
    assert first[:2] == (1, 2) and first[3] is True
    assert len(first[2]) == csvreader.MAX_CELLS and first[2][0] == "P1"
    assert second == (2, 3, ["P2", "Bob"], False)


def test_a_header_of_exactly_max_cells_does_not_hide_a_wider_row():
    header = ",".join(["ParticipantID", *(f"x{i}" for i in range(csvreader.MAX_CELLS - 1))]).encode() + b"\n"
    exact = b"P1" + b"," * (csvreader.MAX_CELLS - 1) + b"\n"
    wider = b"P2" + b"," * (2 * csvreader.MAX_CELLS) + b"\n"
    assert [(r[0], len(r[2]), r[3]) for r in rows(header + exact + wider)] == [
        (1, csvreader.MAX_CELLS, False),
        (2, csvreader.MAX_CELLS, True),
    ]


def test_unterminated_quote_running_to_eof_makes_one_malformed_row_and_swallows_nothing():
    data = HEADER + b'P1,"Ann\nP2,Bob\nP3,Cy\n'
    assert rows(data) == [
        (1, 2, ["P1", "Ann"], True),
        (2, 3, ["P2", "Bob"], False),
        (3, 4, ["P3", "Cy"], False),
    ]


def test_text_after_a_closing_quote_is_broken_quoting():
    data = HEADER + b'P1,"Ann"x\nP2,"Bob" \nP3,Cy\n'
    assert rows(data) == [
        (1, 2, ["P1", "Annx"], True),
        (2, 3, ["P2", "Bob "], True),
        (3, 4, ["P3", "Cy"], False),
    ]


def test_stray_quote_closed_lines_later_gives_back_the_lines_in_between():
    data = HEADER + b'"P1,Ann\nP2,Bob\n"P3",Cy\nP4,Di\n'
    result = rows(data)
    assert [r[:2] for r in result] == [(1, 2), (2, 3), (3, 4), (4, 5)]
    assert result[0][3] is True
    assert result[1] == (2, 3, ["P2", "Bob"], False)
    assert result[2] == (3, 4, ["P3", "Cy"], False)
    assert result[3] == (4, 5, ["P4", "Di"], False)


def test_a_quote_inside_an_unquoted_value_is_kept_literally():
    assert rows(HEADER + b'P1,O"Neil\n') == [(1, 2, ["P1", 'O"Neil'], False)]


def test_file_ending_without_a_newline_keeps_its_last_row():
    assert rows(HEADER + b"P1,Ann\nP2,Bob") == [(1, 2, ["P1", "Ann"], False), (2, 3, ["P2", "Bob"], False)]
    assert rows(HEADER + b'P1,"Ann\nSmith"') == [(1, 2, ["P1", "Ann\nSmith"], False)]


def test_a_huge_single_cell_is_read_whole():
    big = "é" * (csvreader.MAX_FIELD_CHARS - 1)
    data = HEADER + f'P1,"{big}"\nP2,Bob\n'.encode()
    assert rows(data, 65536) == [(1, 2, ["P1", big], False), (2, 3, ["P2", "Bob"], False)]


def test_a_cell_past_the_field_limit_is_a_malformed_row_and_reading_goes_on():
    data = HEADER + b"P1," + b"x" * (csvreader.MAX_FIELD_CHARS + 10) + b"\nP2,Bob\n"
    result = rows(data)
    assert [(r, line, bad) for r, line, _, bad in result] == [(1, 2, True), (2, 3, False)]
    assert result[1][2] == ["P2", "Bob"]


def test_an_over_long_physical_line_is_one_malformed_row_without_holding_the_line():
    long_line = b"P1," + b"y," * csvreader.MAX_LINE_CHARS + b"z\n"
    data = HEADER + long_line + b"P2,Bob\n"
    result = rows(data, 1 << 16)
    assert [(r, line, bad) for r, line, _, bad in result] == [(1, 2, True), (2, 3, False)]
    assert result[1][2] == ["P2", "Bob"]


def test_a_record_spanning_too_many_lines_is_broken_and_its_lines_read_again():
    many = b"\n".join(b"P%d,x" % i for i in range(2, csvreader.MAX_RECORD_LINES + 5))
    data = HEADER + b'P1,"never closed\n' + many + b"\n"
    result = rows(data)
    assert result[0][3] is True
    assert [r[2] for r in result[1:]] == [[f"P{i}", "x"] for i in range(2, csvreader.MAX_RECORD_LINES + 5)]
    assert [r[1] for r in result] == list(range(2, csvreader.MAX_RECORD_LINES + 5 + 1))


def test_a_broken_header_is_read_leniently_and_the_next_lines_are_rows():
    header, entries = read(b'ParticipantID,"firstName\nP1,Ann\n')
    assert header.columns == {"ParticipantID": 0, "firstName": 1}
    assert [(e.row, e.line, e.cells) for e in entries] == [(1, 2, ["P1", "Ann"])]


@pytest.mark.parametrize(
    "data",
    [b"", b"\xef\xbb\xbf", b"\n\n  \r\n", b"ParticipantID\n", b"ParticipantID,firstName\r\n\r\n   \r\n"],
    ids=["empty", "bom-only", "blank-lines", "header-only", "header-and-blank-lines"],
)
def test_no_header_or_no_data_row_is_blank_file(data):
    exc = error_of(data)
    assert (exc.code, exc.status) == (codes.BLANK_FILE, 400)


@pytest.mark.parametrize(
    "data", [b"firstName,lastName\na,b\n", b"Participant ID,x\na,b\n", b"ParticipantID,participantid \na,b\n"]
)
def test_header_needs_exactly_one_participant_id_column(data):
    exc = error_of(data)
    assert (exc.code, exc.status) == (codes.MISSING_PARTICIPANT_ID_COLUMN, 400)
    assert exc.params["column"] == "ParticipantID"


def test_two_participant_id_columns_answer_check_14_before_check_15():
    exc = error_of(b"ParticipantID,firstName,PARTICIPANTID,FirstName\na,b,c,d\n")
    assert exc.code == codes.MISSING_PARTICIPANT_ID_COLUMN
    assert exc.params["count"] == 2


@pytest.mark.parametrize(
    ("data", "column"),
    [
        (b"ParticipantID,firstName,FIRSTNAME\na,b,c\n", "FIRSTNAME"),
        (b"ParticipantID,Notes, notes \na,b,c\n", "notes"),
    ],
)
def test_a_column_named_twice_is_duplicate_column_naming_it(data, column):
    exc = error_of(data)
    assert (exc.code, exc.status) == (codes.DUPLICATE_COLUMN, 400)
    assert exc.params == {"column": column}


def test_empty_header_cells_are_neither_unknown_nor_duplicates():
    header, entries = read(b"ParticipantID,,firstName,,\nP1,,Ann,,\n")
    assert header.unknown == []
    assert header.columns == {"ParticipantID": 0, "firstName": 2}
    assert entries[0].malformed is False


@pytest.mark.parametrize(
    "data",
    [
        "ParticipantID,firstName\nP1,Zoë\n".encode("latin-1"),
        b"Participant\xffID\nP1\n",
        b"ParticipantID\nP1,\xc3",  # a multi-byte character cut by the end of the file
    ],
    ids=["latin-1", "bad-byte-in-header", "truncated-at-eof"],
)
def test_non_utf8_is_invalid_file_encoding(data):
    exc = error_of(data)
    assert (exc.code, exc.status) == (codes.INVALID_FILE_ENCODING, 400)


def test_bad_encoding_after_the_first_row_surfaces_as_domain_error_while_iterating():
    data = HEADER + b"P1,Ann\n" + b"P2,Bob\n" * 50_000 + b"P3,\xff\n"
    header, entries = read_csv([data])
    with pytest.raises(DomainError) as info:
        list(entries)
    assert (info.value.code, info.value.status) == (codes.INVALID_FILE_ENCODING, 400)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_chunk_boundaries_anywhere_do_not_change_the_result(size):
    data = ('\ufeffParticipantID;firstName\r\nÄ1;"Zoë; ""Z""\r\nÅngström"\r\n\r\nP2;李\rP3;😀\n').encode()
    assert rows(data, size) == rows(data)
    assert rows(data) == [
        (1, 2, ["Ä1", 'Zoë; "Z"\r\nÅngström'], False),
        (2, 5, ["P2", "李"], False),
        (3, 6, ["P3", "😀"], False),
    ]


def test_reading_is_lazy_so_memory_does_not_grow_with_the_file():
    consumed = 0

    def endless():
        nonlocal consumed
        yield HEADER
        for i in itertools.count():
            consumed += 1
            yield b"".join(b"P%d,name\n" % (i * 1000 + j) for j in range(1000))

    header, entries = read_csv(endless())
    first = list(itertools.islice(entries, 5000))
    assert [e.row for e in first] == list(range(1, 5001))
    assert consumed < 100  # a few 64 KiB reads ahead at most, never the whole (endless) stream


def test_empty_chunks_and_bytes_like_chunks_are_fine():
    header, entries = read_csv([b"", b"Participant", b"", bytearray(b"ID\n"), memoryview(b"P1\n"), b""])
    assert header.names == ["ParticipantID"]
    assert [e.cells for e in entries] == [["P1"]]
