"""The upload inspector: SPEC §4 checks 10–15, their codes, statuses and order, on a streamed upload."""

from __future__ import annotations

import hashlib
import io

import pytest

from roster import codes
from roster.bulk import inspect
from roster.bulk.csvreader import read_csv
from roster.bulk.inspect import InspectedUpload, UploadInspector
from roster.errors import DomainError
from tests.reader.helpers import chunked

GOOD = b"ParticipantID,firstName,Notes\r\nP1,Ann,x\r\n"


def inspect_upload(
    data: bytes, name: str | None = "participants.csv", *, max_bytes: int = 10**9, size: int | None = 7
) -> InspectedUpload:
    inspector = UploadInspector(name, max_bytes)
    for chunk in chunked(data, size):
        inspector.feed(chunk)
    return inspector.finish(io.BytesIO(data))


def failure(data: bytes, name: str | None = "participants.csv", **kw) -> DomainError:
    with pytest.raises(DomainError) as info:
        inspect_upload(data, name, **kw)
    return info.value


def test_a_good_upload_gives_size_sha256_header_and_warnings():
    result = inspect_upload(GOOD, size=3)
    assert result.size == len(GOOD)
    assert result.sha256 == hashlib.sha256(GOOD).hexdigest()
    assert result.header.columns == {"ParticipantID": 0, "firstName": 1}
    assert result.header.unknown == ["Notes"]
    assert result.warnings == ["Unknown column ignored: Notes"]


def test_inspector_and_reader_read_the_same_header():
    data = b"\xef\xbb\xbf\n Participantid ;FirstName;Other\nP1;a;b\n"
    assert inspect_upload(data).header == read_csv([data])[0]


def test_size_is_checked_as_the_bytes_arrive_with_413():
    inspector = UploadInspector("a.csv", 10)
    inspector.feed(b"0123456789")  # exactly the limit is fine
    with pytest.raises(DomainError) as info:
        inspector.feed(b"x")
    assert (info.value.code, info.value.status) == (codes.FILE_TOO_LARGE, 413)


def test_file_too_large_comes_before_every_content_check():
    exc = failure(b"PK\x03\x04" + b"\x00" * 100, "sheet.xlsx", max_bytes=50)
    assert (exc.code, exc.status) == (codes.FILE_TOO_LARGE, 413)


@pytest.mark.parametrize("name", ["participants.CSV", "a.Csv", " spaced.csv ", "C:\\Users\\me\\list.csv", ".csv"])
def test_any_name_ending_in_csv_in_any_case_is_accepted(name):
    assert inspect_upload(GOOD, name).size == len(GOOD)


@pytest.mark.parametrize("name", ["participants.txt", "participants.csv.xlsx", "participants", "", None, "csv"])
def test_a_name_not_ending_in_csv_is_not_supported_file_format(name):
    exc = failure(GOOD, name)
    assert (exc.code, exc.status) == (codes.NOT_SUPPORTED_FILE_FORMAT, 400)


@pytest.mark.parametrize(
    "content",
    [
        b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml",  # xlsx / docx
        b"PK\x05\x06" + b"\x00" * 18,
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8,  # xls
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"\x1f\x8b\x08\x00",
        b"7z\xbc\xaf\x27\x1c\x00\x04",
        b"Rar!\x1a\x07\x01\x00",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"GIF89a\x01\x00\x01\x00",
        b"BZh91AY&SY",
        b"\xfd7zXZ\x00\x00",
        b"\x7fELF\x02\x01\x01",
        b'<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">',
        b"{\\rtf1\\ansi ParticipantID",
        b"\xef\xbb\xbfPK\x03\x04",
        GOOD + b"P2,\x00,y\r\n",  # a NUL byte anywhere
    ],
)
def test_binary_spreadsheet_archive_or_document_content_is_not_supported_file_format(content):
    exc = failure(content)
    assert (exc.code, exc.status) == (codes.NOT_SUPPORTED_FILE_FORMAT, 400)


def test_a_nul_byte_far_past_the_head_is_still_found():
    data = GOOD + b"P2,Bob,y\r\n" * (inspect.HEAD_BYTES // 10 + 10) + b"P3,\x00,z\r\n"
    assert failure(data, size=65536).code == codes.NOT_SUPPORTED_FILE_FORMAT


def test_header_names_that_merely_start_like_a_signature_are_text():
    result = inspect_upload(b"BZh,ParticipantID\nx,P1\n")
    assert result.header.columns == {"ParticipantID": 1}


@pytest.mark.parametrize(
    "data",
    [
        "ParticipantID,firstName\nP1,Zoë\n".encode("latin-1"),
        "ParticipantID,firstName\nP1,Zoë\n".encode("cp1252"),
        b"ParticipantID,firstName\nP1,\xc3",  # cut in the middle of a character at the end
        "ParticipantID,firstName\nP1,Zoë\n".encode("utf-16"),  # BOM + NUL bytes: an encoding problem
        "ParticipantID,firstName\nP1,Zoë\n".encode("utf-16-be").join([b"\xfe\xff", b""]),
        "ParticipantID,firstName\nP1,Zoë\n".encode("utf-32"),
    ],
    ids=["latin-1", "cp1252", "truncated", "utf-16", "utf-16-be", "utf-32"],
)
def test_text_that_is_not_utf8_is_invalid_file_encoding(data):
    exc = failure(data)
    assert (exc.code, exc.status) == (codes.INVALID_FILE_ENCODING, 400)


def test_bad_utf8_far_past_the_head_is_still_found():
    data = GOOD + b"P2,Bob,y\r\n" * (inspect.HEAD_BYTES // 10 + 10) + b"P3,Zo\xeb,z\r\n"
    assert failure(data, size=65536).code == codes.INVALID_FILE_ENCODING


@pytest.mark.parametrize("size", [1, 2, 3])
def test_chunk_boundaries_splitting_multibyte_characters_are_fine(size):
    data = "\ufeffParticipantID,firstName\nP1,Zoë 李 😀\n".encode()
    result = inspect_upload(data, size=size)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xef\xbb\xbf", b"\r\n\r\n  \n", b"ParticipantID,firstName\r\n", b"ParticipantID\n\n \n"],
    ids=["empty", "bom-only", "blank-lines", "header-only", "header-then-blank"],
)
def test_no_header_or_no_data_row_is_blank_file(data):
    exc = failure(data)
    assert (exc.code, exc.status) == (codes.BLANK_FILE, 400)


def test_missing_participant_id_column():
    exc = failure(b"firstName,lastName\nAnn,Lee\n")
    assert (exc.code, exc.status) == (codes.MISSING_PARTICIPANT_ID_COLUMN, 400)


def test_duplicate_column_names_it():
    exc = failure(b"ParticipantID,lastName,LASTNAME\nP1,a,b\n")
    assert (exc.code, exc.status, exc.params) == (codes.DUPLICATE_COLUMN, 400, {"column": "LASTNAME"})


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"Participant\xffID\nP1\n", "list.txt", codes.NOT_SUPPORTED_FILE_FORMAT),  # 11 before 12
        (b"\xff\x00\xfe", "list.csv", codes.NOT_SUPPORTED_FILE_FORMAT),  # NUL (11) before bad UTF-8 (12)
        (b"", "list.txt", codes.NOT_SUPPORTED_FILE_FORMAT),  # 11 before 13
        (b"firstName\n\xff\n", "list.csv", codes.INVALID_FILE_ENCODING),  # 12 before 14
        (b"\xff", "list.csv", codes.INVALID_FILE_ENCODING),  # 12 before 13
        (b"firstName\n", "list.csv", codes.BLANK_FILE),  # 13 before 14
        (b"ParticipantID,a,A\n", "list.csv", codes.BLANK_FILE),  # 13 before 15
        (b"a,A\nx,y\n", "list.csv", codes.MISSING_PARTICIPANT_ID_COLUMN),  # 14 before 15
    ],
)
def test_the_first_failing_check_in_spec_order_answers(data, name, code):
    assert failure(data, name).code == code


def test_a_data_row_after_a_megabyte_of_blank_lines_still_counts():
    data = b"ParticipantID,firstName\n" + b"   \n" * (inspect.HEAD_BYTES // 4 + 100) + b"P1,Ann\n"
    result = inspect_upload(data, size=65536)
    assert result.header.columns == {"ParticipantID": 0, "firstName": 1}


def test_only_blank_lines_after_the_header_for_more_than_the_head_is_still_blank_file():
    data = b"ParticipantID,firstName\n" + b" \r\n" * (inspect.HEAD_BYTES // 3 + 100)
    assert failure(data, size=65536).code == codes.BLANK_FILE


def test_a_head_cut_inside_a_multibyte_character_is_not_an_encoding_error():
    row = "P1,é\n".encode()
    data = b"ParticipantID,firstName\n" + row * (inspect.HEAD_BYTES // len(row) + 5)
    for offset in range(3):  # shift the data so the head's last byte lands on each byte of "é"
        shifted = b"\n" * offset + data
        assert inspect_upload(shifted, size=65536).header.columns["firstName"] == 1


def test_memory_is_bounded_by_the_head_whatever_the_file_size():
    inspector = UploadInspector("big.csv", 10**9)
    inspector.feed(b"ParticipantID,firstName\n")
    row = b"P1,Ann\n" * 10_000
    for _ in range(40):  # ~2.8 MB
        inspector.feed(row)
    assert len(inspector._head) == inspect.HEAD_BYTES
    assert inspector.finish().size == 24 + 40 * len(row)
