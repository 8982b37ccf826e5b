"""Streams a multipart/form-data upload (SPEC §4 checks 9–15) without holding it in memory.

The request body is pushed through python-multipart's streaming parser as it arrives; the bytes of
the part named `file` go through the upload inspector (size cap, CSV/UTF-8/workbook/header checks) and into a
spool that stays in memory up to one chunk and on disk beyond. Only when the whole body has arrived and
passed the checks is it written to the database, chunk by chunk, in one short transaction: on SQLite a
write transaction locks the whole database, and holding it while a slow client sends 100 MiB would stall
the worker and every other writer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from roster import codes
from roster.bulk.inspect import InspectedUpload, UploadInspector
from roster.errors import DomainError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # a TypedDict defined for type checkers only

FILE_FIELD = "file"
# Stored chunk size: big enough that a 100 MiB upload is ~100 rows, small enough to stream.
CHUNK_BYTES = 1 << 20
# Multipart framing and small form fields around the file may add this much to the body.
BODY_OVERHEAD = 64 * 1024


def missing_file() -> DomainError:
    return DomainError(codes.MISSING_FILE, 400, {"part": FILE_FIELD})


def malformed(exc: Exception) -> DomainError:
    # The parser's own words ("Maximum header size exceeded") say what is wrong; they quote no content.
    return DomainError(
        codes.MALFORMED_MULTIPART,
        400,
        {"reason": str(exc)[:200]},
        detail=f"The multipart/form-data body is malformed: {str(exc)[:200]}.",
    )


def _decode(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


@dataclass
class ReceivedUpload:
    file_name: str
    inspected: InspectedUpload
    spool: tempfile.SpooledTemporaryFile[bytes]

    def chunks(self) -> Iterator[bytes]:
        self.spool.seek(0)
        while data := self.spool.read(CHUNK_BYTES):
            yield data

    def close(self) -> None:
        self.spool.close()


class _FilePart:
    """Callback state of the multipart parser: finds the `file` part and collects its bytes."""

    def __init__(self) -> None:
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.disposition = b""
        self.in_file = False
        self.found = False
        self.ended = False
        self.file_name: str | None = None
        self.data: list[bytes] = []

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda data, start, end: self.header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self.header_value.extend(data[start:end]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.disposition = b""

    def on_header_end(self) -> None:
        if bytes(self.header_name).strip().lower() == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _kind, options = parse_options_header(self.disposition)
        # The first part named `file` is the upload; any later one is ignored.
        self.in_file = not self.found and options.get(b"name") == FILE_FIELD.encode()
        if self.in_file:
            self.found = True
            name = options.get(b"filename")
            self.file_name = _decode(name) if name is not None else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.data.append(data[start:end])

    def on_part_end(self) -> None:
        if self.in_file:
            self.ended = True
            self.in_file = False


async def receive_upload(request: Request, max_bytes: int) -> ReceivedUpload:
    """Reads the body; raises the first failing check of 9–15. The caller closes the result."""
    kind, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise missing_file()
    part = _FilePart()
    try:
        parser = MultipartParser(boundary, part.callbacks())
    except (FormParserError, ValueError):
        raise missing_file() from None
    inspector: UploadInspector | None = None
    spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES, prefix="roster-upload-")
    pending = bytearray()
    received = 0
    body_limit = max_bytes + BODY_OVERHEAD
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise DomainError(codes.FILE_TOO_LARGE, 413, {"maxBytes": max_bytes})
            try:
                parser.write(chunk)
            except FormParserError as exc:
                raise malformed(exc) from None
            if part.found and inspector is None:
                inspector = UploadInspector(part.file_name, max_bytes)
            if part.data:
                assert inspector is not None, "data follows the part's headers"
                for data in part.data:
                    inspector.feed(data)
                    pending += data
                part.data.clear()
                if len(pending) >= CHUNK_BYTES:
                    # Disk writes off the event loop.
                    await run_in_threadpool(spool.write, bytes(pending))
                    pending.clear()
        parser.finalize()
        if inspector is None or not part.ended:
            raise missing_file()
        if pending:
            spool.write(bytes(pending))
        inspected = await run_in_threadpool(inspector.finish, spool)
        return ReceivedUpload(part.file_name or "", inspected, spool)
    except ClientDisconnect:
        spool.close()
        raise missing_file() from None
    except BaseException:
        spool.close()
        raise
