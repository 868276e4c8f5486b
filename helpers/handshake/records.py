"""The record layer: cut a byte stream into TLS records (introduced in notebook 06; capture: 01).

Every byte a TLS connection sends travels in a *record*: a five-byte header (content
type, legacy version, length) and a payload of at most 2**14 bytes of plaintext. The
content type says which protocol the payload belongs to: handshake (22), alert (21),
change_cipher_spec (20) or application_data (23), which is also the outer type of
*every* encrypted TLS 1.3 record.

TCP knows nothing of records: a ``recv()`` returns whatever has arrived, half a record
or three and a bit. So :class:`RecordParser` is fed bytes as they come and keeps an
incomplete record in a buffer until the rest arrives: bytes in, records out, no
sockets (the sans-IO idea of h11). It checks each header as soon as it can, so that
plain HTTP or garbage fails on the first byte instead of waiting forever for a length
that will never come. :func:`parse_records` is the one-shot version for a whole
direction of a saved capture.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..errors import ParseError
from .display import _Display, _hex
from .reader import _as_bytes
from .registry import CONTENT_TYPES, _name, version_name

__all__ = [
    "MAX_RECORD_LENGTH",
    "RECORD_HEADER",
    "Record",
    "RecordParser",
    "parse_records",
]


# RFC 8446 §5.1 (Record Layer):
#
#     enum {
#         invalid(0),
#         change_cipher_spec(20),
#         alert(21),
#         handshake(22),
#         application_data(23),
#         (255)
#     } ContentType;
#
#     struct {
#         ContentType type;
#         ProtocolVersion legacy_record_version;
#         uint16 length;
#         opaque fragment[TLSPlaintext.length];
#     } TLSPlaintext;
#
# RFC 5246 §6.2.1 (Fragmentation) has the same five-byte header:
#
#     struct {
#         uint8 major;
#         uint8 minor;
#     } ProtocolVersion;
#
#     struct {
#         ContentType type;
#         ProtocolVersion version;
#         uint16 length;
#         opaque fragment[TLSPlaintext.length];
#     } TLSPlaintext;
#
# "The length (in bytes) of the following TLSPlaintext.fragment. The length MUST NOT
#  exceed 2^14."  Encrypted records (TLSCiphertext) may be a little longer.

RECORD_HEADER = struct.Struct("!BHH")
MAX_RECORD_LENGTH = 2**14 + 2048  # RFC 5246 §6.2.3; RFC 8446 §5.2 allows 2**14 + 256


@dataclass(frozen=True, repr=False)
class Record(_Display):
    """One TLS record: a five-byte header and its payload (the fragment).

    ``offset`` is where the record header starts in the byte stream it was read from.
    """

    content_type: int
    version: int
    payload: bytes
    offset: int = 0

    @property
    def type_name(self) -> str:
        return _name(CONTENT_TYPES, self.content_type, 2)

    @property
    def version_name(self) -> str:
        return version_name(self.version)

    @property
    def length(self) -> int:
        return len(self.payload)

    @property
    def raw(self) -> bytes:
        """The record as it travelled: header + payload."""
        return RECORD_HEADER.pack(self.content_type, self.version, len(self.payload)) + self.payload

    def __repr__(self) -> str:
        return f"Record({self.type_name}, {self.version_name}, {self.length} bytes, offset={self.offset})"

    def _title(self) -> str:
        return f"Record: {self.type_name}"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("content type", f"{self.content_type} ({self.type_name})"),
            ("legacy version", f"0x{self.version:04x} ({self.version_name})"),
            ("length", self.length),
            ("offset", self.offset),
            ("payload", _hex(self.payload, 24)),
        ]


class RecordParser:
    """Cut a byte stream into :class:`Record` objects, keeping partial records between calls.

    >>> parser = RecordParser()
    >>> parser.feed(bytes.fromhex("16 03 01 00"))      # half a header: nothing yet
    []
    >>> parser.feed(bytes.fromhex("02 01 00"))         # rest of header + body
    [Record(handshake, TLSv1, 2 bytes, offset=0)]

    After a :class:`ParseError` the parser is broken and every later ``feed`` raises the
    same error: a stream that lost its framing cannot be resynchronised.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0  # stream offset of _buffer[0]
        self._error: ParseError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a record."""
        return len(self._buffer)

    @property
    def offset(self) -> int:
        """Bytes of the stream consumed so far (the offset of the next record)."""
        return self._offset

    def feed(self, data: bytes | bytearray | memoryview) -> list[Record]:
        """Add bytes; return every record that is now complete."""
        data = _as_bytes(data)
        if self._error is not None:
            raise self._error
        self._buffer += data
        records: list[Record] = []
        while len(self._buffer) >= RECORD_HEADER.size:
            content_type, version, length = RECORD_HEADER.unpack_from(self._buffer)
            try:
                self._check_header(content_type, version, length)
            except ParseError as exc:
                self._error = exc
                raise
            end = RECORD_HEADER.size + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[RECORD_HEADER.size : end])
            records.append(Record(content_type, version, payload, self._offset))
            del self._buffer[:end]
            self._offset += end
        if not records and self._buffer and self._buffer[0] not in CONTENT_TYPES:
            # Fail early on the first byte: plain HTTP should not wait for 5 bytes.
            try:
                self._check_header(self._buffer[0], 0x0303, 0)
            except ParseError as exc:
                self._error = exc
                raise
        return records

    def eof(self) -> None:
        """Declare the stream finished; raise ParseError if a partial record is left."""
        if self._buffer:
            raise ParseError(
                f"Expected a complete record but the stream ended inside one, "
                f"{len(self._buffer)} bytes into it",
                "The connection was cut mid-record.",
                offset=self._offset,
            )

    def _check_header(self, content_type: int, version: int, length: int) -> None:
        if content_type not in CONTENT_TYPES:
            hint = "These bytes are not a TLS record."
            if bytes(self._buffer[:4]) in (b"GET ", b"POST", b"HTTP", b"PUT ", b"HEAD"):
                hint = "These bytes look like plain HTTP, not TLS."
            elif content_type & 0x80:
                hint = "This may be an SSL 2.0-style hello, which this course does not decode."
            raise ParseError(
                f"Expected a TLS content type (20-24) but found {content_type} (0x{content_type:02x})",
                hint,
                offset=self._offset,
            )
        if version >> 8 != 3:
            raise ParseError(
                f"Expected a record version 0x03xx but found 0x{version:04x}",
                "Only SSL 3.0 and TLS 1.0-1.3 record headers are understood.",
                offset=self._offset + 1,
            )
        if length > MAX_RECORD_LENGTH:
            raise ParseError(
                f"Expected a record length of at most {MAX_RECORD_LENGTH} but found {length}",
                "A peer would answer with a record_overflow alert.",
                offset=self._offset + 3,
            )


def parse_records(
    data: bytes | bytearray | memoryview, *, allow_partial: bool = False
) -> list[Record]:
    """Parse a whole byte string into records (one direction of a connection).

    Raises :class:`ParseError` if the bytes end inside a record, unless ``allow_partial``.
    """
    parser = RecordParser()
    records = parser.feed(data)
    if not allow_partial:
        parser.eof()
    return records
