"""Handshake framing: reassemble handshake messages from records (introduced in notebook 06).

The handshake protocol speaks in *messages* (ClientHello, ServerHello, Certificate,
...), each with a four-byte header: a type and a 24-bit length. They travel inside
handshake records, but the two framings are independent:

* *fragmentation*: one message may be split across several records (a certificate
  chain easily exceeds 16 KiB, and a peer may also split small messages);
* *coalescing*: one record may carry several messages (a TLS 1.2 server usually sends
  ServerHello, Certificate, ServerKeyExchange and ServerHelloDone in one record).

So :class:`HandshakeParser` does for messages what
:class:`~helpers.handshake.RecordParser` does for records: it is fed the payload of
each plaintext handshake record in turn and keeps an incomplete message in a buffer
until the records that complete it arrive. A :class:`HandshakeMessage` is still only a
type and a body; :func:`decode_message`, at the bottom, hands the body to the parser
for its type, found in the modules that follow in the package's reading order
(``hellos``, ``authentication``, ``tls12``, ``server_params``, ``tickets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ParseError
from .authentication import (
    parse_certificate,
    parse_certificate_verify,
    parse_compressed_certificate,
    parse_finished,
)
from .display import _Display, _hex
from .hellos import ServerHello, parse_client_hello, parse_server_hello
from .reader import _as_bytes
from .registry import HANDSHAKE_TYPES, HRR_RANDOM, VERSIONS, _name, key_exchange_of
from .server_params import parse_certificate_request, parse_encrypted_extensions
from .tickets import parse_new_session_ticket
from .tls12 import (
    parse_client_key_exchange,
    parse_server_hello_done,
    parse_server_key_exchange,
)

__all__ = [
    "HandshakeMessage",
    "HandshakeParser",
    "parse_handshake_messages",
    "decode_message",
]


# RFC 8446 §4 (Handshake Protocol):
#
#     enum {
#         client_hello(1),
#         server_hello(2),
#         new_session_ticket(4),
#         end_of_early_data(5),
#         encrypted_extensions(8),
#         certificate(11),
#         certificate_request(13),
#         certificate_verify(15),
#         finished(20),
#         key_update(24),
#         message_hash(254),
#         (255)
#     } HandshakeType;
#
#     struct {
#         HandshakeType msg_type;    /* handshake type */
#         uint24 length;             /* remaining bytes in message */
#         select (Handshake.msg_type) {
#             case client_hello:          ClientHello;
#             case server_hello:          ServerHello;
#             ...
#         };
#     } Handshake;
#
# RFC 5246 §7.4 adds server_key_exchange(12), server_hello_done(14) and
# client_key_exchange(16) to the same enum, with the same four-byte header.


@dataclass(frozen=True, repr=False)
class HandshakeMessage(_Display):
    """One handshake message: type, body, and where it starts in the handshake stream."""

    msg_type: int
    body: bytes
    offset: int = 0

    @property
    def type_name(self) -> str:
        if self.msg_type == 2 and self.body[2:34] == HRR_RANDOM:
            return "HelloRetryRequest"  # a ServerHello in disguise (RFC 8446 §4.1.3)
        return _name(HANDSHAKE_TYPES, self.msg_type, 2)

    @property
    def length(self) -> int:
        return len(self.body)

    @property
    def raw(self) -> bytes:
        """Header + body: the bytes that enter the transcript hash."""
        return bytes([self.msg_type]) + len(self.body).to_bytes(3, "big") + self.body

    def decode(
        self,
        *,
        tls13: bool | None = None,
        key_exchange: str | None = None,
        version: str | int | None = None,
    ) -> Any:
        """Decode the body (see :func:`decode_message`)."""
        return decode_message(self, tls13=tls13, key_exchange=key_exchange, version=version)

    def __repr__(self) -> str:
        return f"HandshakeMessage({self.type_name}, {self.length} bytes, offset={self.offset})"

    def _title(self) -> str:
        return f"Handshake message: {self.type_name}"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("type", f"{self.msg_type} ({self.type_name})"),
            ("length", self.length),
            ("offset", self.offset),
            ("body", _hex(self.body, 24)),
        ]


class HandshakeParser:
    """Reassemble handshake messages from the payloads of handshake records.

    Feed it the ``payload`` of every *plaintext* handshake record of one direction, in
    order. A message split across records comes out when its last piece arrives; a
    record carrying several messages yields them all. Offsets count bytes of the
    handshake stream (payloads concatenated), not of the TCP stream.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message waiting for the next record."""
        return len(self._buffer)

    @property
    def pending_type(self) -> int | None:
        """The type of the incomplete message in the buffer, if its header has begun."""
        return self._buffer[0] if self._buffer else None

    def feed(self, payload: bytes | bytearray | memoryview) -> list[HandshakeMessage]:
        """Add one record's payload; return every message that is now complete."""
        self._buffer += _as_bytes(payload)
        messages: list[HandshakeMessage] = []
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[1:4], "big")
            if len(self._buffer) < 4 + length:
                break
            messages.append(
                HandshakeMessage(self._buffer[0], bytes(self._buffer[4 : 4 + length]), self._offset)
            )
            del self._buffer[: 4 + length]
            self._offset += 4 + length
        return messages


def parse_handshake_messages(
    data: bytes | bytearray | memoryview, *, allow_partial: bool = False
) -> list[HandshakeMessage]:
    """Split concatenated handshake messages (e.g. one record's payload).

    Raises :class:`ParseError` if the bytes end inside a message, unless ``allow_partial``.
    """
    parser = HandshakeParser()
    messages = parser.feed(data)
    if parser.buffered and not allow_partial:
        raise ParseError(
            f"Expected a complete handshake message but {parser.buffered} bytes of one are missing their end",
            "The message continues in a record that was not included.",
            offset=parser._offset,
        )
    return messages


# ---------------------------------------------------------------------------
# One entry point for any message
# ---------------------------------------------------------------------------


# Why decoding needs the negotiated version: the same message type has a different
# layout in different versions. The one that bites on old servers is the signature of a
# ServerKeyExchange (see tls12.py for the whole message).
#
# RFC 5246 §4.7 (TLS 1.2), a digitally-signed element:
#
#     struct {
#         SignatureAndHashAlgorithm algorithm;
#         opaque signature<0..2^16-1>;
#     } DigitallySigned;
#
# RFC 4346 §4.7 (TLS 1.1, and RFC 2246 §4.7, TLS 1.0): no algorithm field; the hash is
# implied by the certificate's key (MD5 and SHA-1 concatenated for RSA, SHA-1 for DSA,
# and RFC 4492 §5.4 for ECDSA), so the signature vector follows the parameters:
#
#     digitally-signed struct {
#         opaque client_random[32];
#         opaque server_random[32];
#         ServerDHParams params;
#     } signed_params;          /* RFC 4346 §7.4.3: just opaque signature<0..2^16-1> */
#
# Read a TLS 1.0 message with the TLS 1.2 layout and the first two bytes of the length
# become an "algorithm", the next two a nonsense length: a ParseError. Nothing in the
# message says which layout it has; the ServerHello of the same connection does.

_OLD_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1")


def _version_name(version: str | int | None) -> str | None:
    if version is None or isinstance(version, str):
        return version
    return VERSIONS.get(version, f"unknown (0x{version:04x})")


def decode_message(
    message: HandshakeMessage,
    *,
    tls13: bool | None = None,
    key_exchange: str | None = None,
    version: str | int | None = None,
) -> Any:
    """Decode a handshake message into its dataclass, or return None for unknown types.

    ``version`` is the negotiated version, from the ServerHello (``"TLSv1"``, or the wire
    value ``0x0301``): it picks the ServerKeyExchange signature layout (TLS 1.0/1.1 have
    no SignatureAndHashAlgorithm) and, for ``"TLSv1.3"``, the TLS 1.3 layouts.
    :func:`decode_messages` finds it for you in a list of messages.
    ``tls13`` picks the layout of Certificate, CertificateRequest and NewSessionTicket
    (by default: from ``version``; without one, TLS 1.2 for the first two, which are
    plaintext only in TLS 1.2, and a guess from the length fields for NewSessionTicket).
    ``key_exchange`` ("ECDHE"/"DHE"/"RSA", :func:`key_exchange_of` of the suite) helps
    the TLS 1.2 key exchange messages.
    """
    name = _version_name(version)
    if tls13 is None and name is not None:
        tls13 = name == "TLSv1.3"
    body, offset, t = message.body, message.offset + 4, message.msg_type
    if t == 1:
        return parse_client_hello(body, offset=offset)
    if t == 2:
        return parse_server_hello(body, offset=offset)
    if t == 4:
        if tls13 is None:  # a TLS 1.2 ticket is lifetime + one opaque<0..2^16-1>, exactly
            tls13 = not (len(body) >= 6 and 6 + int.from_bytes(body[4:6], "big") == len(body))
        return parse_new_session_ticket(body, tls13=tls13, offset=offset)
    if t == 8:
        return parse_encrypted_extensions(body, offset=offset)
    if t == 11:
        return parse_certificate(body, tls13=bool(tls13), offset=offset)
    if t == 12:
        kex = key_exchange if key_exchange in ("ECDHE", "DHE") else None
        legacy = name in _OLD_VERSIONS
        try:
            return parse_server_key_exchange(body, key_exchange=kex, offset=offset, legacy=legacy)
        except ParseError as error:
            if name is not None:
                raise
            raise ParseError(
                error.what.split(" (at byte offset")[0],
                "Its layout depends on the negotiated version, which this call was not told: "
                "TLS 1.0 and 1.1 put no SignatureAndHashAlgorithm before the signature. Pass "
                "version= (the ServerHello's .version), or use decode_messages().",
                offset=error.offset,
            ) from None
    if t == 13:
        return parse_certificate_request(body, tls13=bool(tls13), offset=offset)
    if t == 14:
        return parse_server_hello_done(body, offset=offset)
    if t == 15:
        return parse_certificate_verify(body, offset=offset)
    if t == 16:
        return parse_client_key_exchange(body, key_exchange=key_exchange, offset=offset)
    if t == 20:
        return parse_finished(body, offset=offset)
    if t == 25:  # RFC 8879, TLS 1.3 only; OpenSSL 3.2+ sends it
        return parse_compressed_certificate(body, offset=offset)
    return None


def decode_messages(
    messages: list[HandshakeMessage], *, server_hello: ServerHello | None = None
) -> list[Any]:
    """Decode plaintext handshake messages of one connection, as the ServerHello says.

    The ServerHello fixes the version and the cipher suite, and with them the layout of
    what follows (:func:`decode_message`'s ``version`` and ``key_exchange``). It is taken
    from ``messages`` (the server's flight) or given as ``server_hello`` (to decode the
    client's messages, e.g. ``capture.server_hello``). Messages before it are decoded
    without that knowledge (ClientHello and HelloRetryRequest need none).
    """
    version: str | None = None
    kex: str | None = None
    if server_hello is not None and not server_hello.is_hello_retry_request:
        version, kex = server_hello.version, key_exchange_of(server_hello.cipher_suite)
    decoded = []
    for message in messages:
        value = decode_message(message, key_exchange=kex, version=version)
        if isinstance(value, ServerHello) and not value.is_hello_retry_request:
            version, kex = value.version, key_exchange_of(value.cipher_suite)
        decoded.append(value)
    return decoded
