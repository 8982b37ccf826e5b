"""The upload inspector: SPEC §4 checks 10–15 on an upload while it streams in, in bounded memory.

Decisions (where the spec is silent):
- Check 11 (notSupportedFileFormat): the file name must end in `.csv` or `.xlsx` in any case (surrounding spaces
  ignored; no name fails). A `.xlsx` is checked as a workbook by roster.bulk.xlsx (checks 12 does not apply to it);
  the rest of this list is about CSV. The content is not text when it starts with a known binary or document
  signature (ZIP family incl. xlsx/docx/ods, OLE2 xls/doc, PDF, RTF, XML incl. SpreadsheetML, gzip, bzip2, xz, zstd,
  7z, RAR, PNG, JPEG, GIF, ELF) or holds a NUL byte anywhere.
- A UTF-16 or UTF-32 byte-order mark (what "Unicode text" exports produce) is text in another encoding:
  check 12 (invalidFileEncoding), not 11, although such files are full of NUL bytes.
- Checks 13–15 read the header and the first data row with the reader's own code, from the first
  HEAD_BYTES of the file; a header longer than that is not supported. A data row after that point is seen
  as any non-whitespace byte further on.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from typing import IO

from roster import codes
from roster.bulk import xlsx
from roster.bulk.csvreader import Header, parse_header
from roster.errors import DomainError

HEAD_BYTES = 1 << 20

BINARY_SIGNATURES: tuple[bytes, ...] = (
    b"PK\x03\x04",  # ZIP: xlsx, docx, ods, odt, zip
    b"PK\x05\x06",  # empty ZIP
    b"PK\x07\x08",  # spanned ZIP
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE2: xls, doc
    b"%PDF-",
    b"{\\rtf",
    b"<?xml",  # SpreadsheetML (Excel 2003 XML) and any other XML document
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2 (followed by a block-size digit and the block magic, checked below)
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstd
    b"7z\xbc\xaf\x27\x1c",  # 7-Zip
    b"Rar!\x1a\x07",  # RAR
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"\x7fELF",
)
UNICODE_BOMS: tuple[bytes, ...] = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_UTF8_BOM = codecs.BOM_UTF8
_WHITESPACE = b" \t\r\n\x0b\x0c"


@dataclass
class InspectedUpload:
    size: int
    sha256: str
    header: Header
    warnings: list[str]


class UploadInspector:
    """Feed the upload's bytes as they arrive, then call finish(). Raises the first failing check in SPEC order."""

    def __init__(self, filename: str | None, max_bytes: int) -> None:
        self.filename = filename
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._utf8 = True
        self._nul = False
        self._head = bytearray()
        self._content_after_head = False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise DomainError(
                codes.FILE_TOO_LARGE,
                413,
                {"maxBytes": self.max_bytes},
                detail=f"The file is larger than the upload limit of {self.max_bytes} bytes.",
            )
        self._hash.update(chunk)
        if not self._nul and b"\x00" in chunk:
            self._nul = True
        if self._utf8:
            try:
                self._decoder.decode(chunk)
            except UnicodeDecodeError:
                self._utf8 = False
        room = HEAD_BYTES - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk and not self._content_after_head and chunk.strip(_WHITESPACE):
            self._content_after_head = True

    def finish(self, file: IO[bytes] | None = None) -> InspectedUpload:
        """`file`: the whole upload, seekable; a workbook is read from it (a CSV needs only what was fed)."""
        head = bytes(self._head)
        name = (self.filename or "").strip()
        if name.lower().endswith(".xlsx"):
            if file is None:
                raise ValueError("a .xlsx upload is inspected from the whole file")
            header = xlsx.inspect_workbook(file, self.max_bytes)
            return InspectedUpload(size=self.size, sha256=self.sha256, header=header, warnings=header.warnings)
        if not name.lower().endswith(".csv"):
            raise DomainError(
                codes.NOT_SUPPORTED_FILE_FORMAT,
                400,
                {"reason": "name"},
                detail="The file name must end in .csv or .xlsx.",
            )
        other_unicode = head.startswith(UNICODE_BOMS)
        if not other_unicode and (self._nul or _binary_signature(head)):
            raise DomainError(
                codes.NOT_SUPPORTED_FILE_FORMAT,
                400,
                {"reason": "content"},
                detail="The file content is not CSV text (it looks like a spreadsheet, archive or other binary file).",
            )
        if other_unicode or not self._utf8 or not self._final_decode():
            raise DomainError(
                codes.INVALID_FILE_ENCODING, 400, detail="The file is not UTF-8 text; save it as CSV UTF-8."
            )
        truncated = self.size > len(head)
        if truncated:
            head = _whole_characters(head)
        header = parse_header([head], more_rows=truncated and self._content_after_head)
        return InspectedUpload(size=self.size, sha256=self.sha256, header=header, warnings=header.warnings)

    def _final_decode(self) -> bool:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
        return True


def _binary_signature(head: bytes) -> bool:
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :]
    for signature in BINARY_SIGNATURES:
        if head.startswith(signature):
            # "BZh" could begin a header cell: require bzip2's block-size digit and block magic.
            return signature != b"BZh" or (head[3:4].isdigit() and head[4:10] == b"1AY&SY")
    return False


def _whole_characters(data: bytes) -> bytes:
    """`data` without a UTF-8 sequence cut at its end (the head of a longer, already validated file)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    decoder.decode(data, final=False)
    cut = len(decoder.getstate()[0])
    return data[: len(data) - cut] if cut else data
