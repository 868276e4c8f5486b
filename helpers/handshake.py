"""TLS records and handshake messages, decoded sans-IO (introduced in notebook 06 (capture: 01)).

Theory of operation
-------------------
TLS is two protocols stacked on top of each other.

The **record layer** cuts the byte stream into *records*. Each record starts with a
five-byte header: a content type (handshake, alert, change_cipher_spec,
application_data), a legacy version number and a length. The payload follows.
A record never carries more than 2**14 bytes of plaintext.

The **handshake protocol** speaks in *messages* (ClientHello, ServerHello,
Certificate, ...), each with a four-byte header: a type and a 24-bit length. Handshake
messages travel inside handshake records, but the two framings are independent:

* *fragmentation*: one message may be split across several records (a certificate
  chain easily exceeds 16 KiB, and a peer may also split small messages);
* *coalescing*: one record may carry several messages (a TLS 1.2 server usually sends
  ServerHello, Certificate, ServerKeyExchange and ServerHelloDone in one record).

And TCP adds a third framing of its own: a ``recv()`` call returns whatever bytes have
arrived, which may be half a record or three records and a bit. So a parser that is
fed bytes as they arrive must **keep a buffer**: :class:`RecordParser` holds on to an
incomplete record until the rest arrives, and :class:`HandshakeParser` holds on to an
incomplete message until the records that complete it arrive. That is the whole trick
behind h11 and every other sans-IO parser: *bytes in, events out, no sockets*. The
parser never reads from the network, so it can be tested by feeding it bytes one at a
time, and the same code decodes a live relay, a MemoryBIO pair or a saved capture.

What can you read? **TLS 1.2** sends the whole handshake in plaintext except the two
Finished messages: everything a record carries after a ChangeCipherSpec in that
direction is encrypted. **TLS 1.3** encrypts everything after ServerHello: the server's
EncryptedExtensions, Certificate, CertificateVerify and Finished travel in records
whose outer type says application_data (23). A ChangeCipherSpec may still appear, as a
meaningless plaintext record kept for middleboxes (RFC 8446 appendix D.4). So in a
TLS 1.3 capture the only decodable handshake messages are ClientHello and ServerHello
(and a HelloRetryRequest); :mod:`helpers.tls13` decrypts the rest with a key log.

Every parse function here raises exactly one exception type for malformed input:
:class:`helpers.errors.ParseError`, naming the byte offset and what was expected.
"""

from __future__ import annotations

import html
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ParseError

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from cryptography import x509

__all__ = [
    "CONTENT_TYPES",
    "HANDSHAKE_TYPES",
    "CIPHER_SUITES",
    "EXTENSION_TYPES",
    "NAMED_GROUPS",
    "SIGNATURE_SCHEMES",
    "ALERT_DESCRIPTIONS",
    "HRR_RANDOM",
    "Record",
    "HandshakeMessage",
    "RecordParser",
    "HandshakeParser",
    "Extension",
    "KeyShareEntry",
    "ClientHello",
    "ServerHello",
    "Certificate",
    "ServerKeyExchange",
    "ServerHelloDone",
    "ClientKeyExchange",
    "Finished",
    "EncryptedExtensions",
    "CertificateVerify",
    "CertificateRequest",
    "NewSessionTicket",
    "ChangeCipherSpec",
    "Alert",
    "parse_records",
    "parse_handshake_messages",
    "parse_extensions",
    "parse_client_hello",
    "parse_server_hello",
    "parse_certificate",
    "parse_server_key_exchange",
    "parse_server_hello_done",
    "parse_client_key_exchange",
    "parse_finished",
    "parse_encrypted_extensions",
    "parse_certificate_verify",
    "parse_certificate_request",
    "parse_new_session_ticket",
    "parse_change_cipher_spec",
    "parse_alert",
    "decode_message",
    "version_name",
    "cipher_suite_name",
    "group_name",
    "signature_scheme_name",
    "extension_name",
    "alert_name",
    "is_grease",
    "key_exchange_of",
]

# ---------------------------------------------------------------------------
# Names: the IANA registries, for the values a learner meets in practice
# ---------------------------------------------------------------------------

#: RFC 8446 §5.1 ContentType (and RFC 6520 heartbeat).
CONTENT_TYPES: dict[int, str] = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
}

#: RFC 8446 §4 and RFC 5246 §7.4 HandshakeType, by the name of the struct each carries.
HANDSHAKE_TYPES: dict[int, str] = {
    0: "HelloRequest",
    1: "ClientHello",
    2: "ServerHello",
    3: "HelloVerifyRequest",
    4: "NewSessionTicket",
    5: "EndOfEarlyData",
    8: "EncryptedExtensions",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
    22: "CertificateStatus",
    24: "KeyUpdate",
    25: "CompressedCertificate",
    254: "MessageHash",
}

#: Protocol versions, spelled the way :meth:`ssl.SSLSocket.version` spells them.
VERSIONS: dict[int, str] = {
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}

#: IANA TLS Cipher Suites registry: the suites a current client or server offers.
CIPHER_SUITES: dict[int, str] = {
    # TLS 1.3 (RFC 8446 §B.4): AEAD + hash only; key exchange is negotiated separately.
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    # TLS 1.2 ECDHE (RFC 8422, RFC 5289, RFC 7905)
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC007: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC0AC: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
    0xC0AD: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    0xC0AE: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
    0xC0AF: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
    # TLS 1.2 finite-field DHE (RFC 5246, RFC 5288, RFC 7905)
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x00A2: "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256",
    0x00A3: "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
    0x0032: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
    0x0038: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
    0xC09E: "TLS_DHE_RSA_WITH_AES_128_CCM",
    0xC09F: "TLS_DHE_RSA_WITH_AES_256_CCM",
    # TLS 1.2 static RSA key transport (no forward secrecy; RFC 5246, RFC 5288)
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0xC09C: "TLS_RSA_WITH_AES_128_CCM",
    0xC09D: "TLS_RSA_WITH_AES_256_CCM",
    0x0000: "TLS_NULL_WITH_NULL_NULL",
    0x0001: "TLS_RSA_WITH_NULL_MD5",
    0x0002: "TLS_RSA_WITH_NULL_SHA",
    0x003B: "TLS_RSA_WITH_NULL_SHA256",
    # Pre-shared keys (RFC 4279, RFC 5487, RFC 7905)
    0x008C: "TLS_PSK_WITH_AES_128_CBC_SHA",
    0x008D: "TLS_PSK_WITH_AES_256_CBC_SHA",
    0x00A8: "TLS_PSK_WITH_AES_128_GCM_SHA256",
    0x00A9: "TLS_PSK_WITH_AES_256_GCM_SHA384",
    0xCCAB: "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAC: "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAD: "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    # Signalling values, not real suites
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",  # RFC 5746
    0x5600: "TLS_FALLBACK_SCSV",  # RFC 7507
}

#: IANA TLS ExtensionType Values (RFC 8446 §4.2 and the RFCs it names).
EXTENSION_TYPES: dict[int, str] = {
    0: "server_name",
    1: "max_fragment_length",
    5: "status_request",
    10: "supported_groups",
    11: "ec_point_formats",
    13: "signature_algorithms",
    14: "use_srtp",
    15: "heartbeat",
    16: "application_layer_protocol_negotiation",
    17: "status_request_v2",
    18: "signed_certificate_timestamp",
    19: "client_certificate_type",
    20: "server_certificate_type",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    27: "compress_certificate",
    28: "record_size_limit",
    35: "session_ticket",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    47: "certificate_authorities",
    48: "oid_filters",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    57: "quic_transport_parameters",
    13172: "next_protocol_negotiation",
    17513: "application_settings",
    65037: "encrypted_client_hello",
    65281: "renegotiation_info",
}

#: IANA TLS Supported Groups (RFC 8446 §4.2.7, RFC 7919, draft-ietf-tls-ecdhe-mlkem).
NAMED_GROUPS: dict[int, str] = {
    23: "secp256r1",
    24: "secp384r1",
    25: "secp521r1",
    29: "x25519",
    30: "x448",
    256: "ffdhe2048",
    257: "ffdhe3072",
    258: "ffdhe4096",
    259: "ffdhe6144",
    260: "ffdhe8192",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
    0x6399: "X25519Kyber768Draft00",
}

#: IANA TLS SignatureScheme (RFC 8446 §4.2.3), plus the TLS 1.2 hash/signature pairs
#: (RFC 5246 §7.4.1.4.1) that are not also TLS 1.3 code points.
SIGNATURE_SCHEMES: dict[int, str] = {
    0x0401: "rsa_pkcs1_sha256",
    0x0501: "rsa_pkcs1_sha384",
    0x0601: "rsa_pkcs1_sha512",
    0x0403: "ecdsa_secp256r1_sha256",
    0x0503: "ecdsa_secp384r1_sha384",
    0x0603: "ecdsa_secp521r1_sha512",
    0x0804: "rsa_pss_rsae_sha256",
    0x0805: "rsa_pss_rsae_sha384",
    0x0806: "rsa_pss_rsae_sha512",
    0x0807: "ed25519",
    0x0808: "ed448",
    0x0809: "rsa_pss_pss_sha256",
    0x080A: "rsa_pss_pss_sha384",
    0x080B: "rsa_pss_pss_sha512",
    0x081A: "ecdsa_brainpoolP256r1tls13_sha256",
    0x081B: "ecdsa_brainpoolP384r1tls13_sha384",
    0x081C: "ecdsa_brainpoolP512r1tls13_sha512",
    0x0201: "rsa_pkcs1_sha1",
    0x0203: "ecdsa_sha1",
    0x0202: "dsa_sha1",
    0x0301: "rsa_pkcs1_sha224",
    0x0302: "dsa_sha224",
    0x0303: "ecdsa_sha224",
    0x0402: "dsa_sha256",
    0x0502: "dsa_sha384",
    0x0602: "dsa_sha512",
}

#: RFC 8446 §6 AlertDescription (with the TLS 1.2-only values of RFC 5246 §7.2).
ALERT_DESCRIPTIONS: dict[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}

ALERT_LEVELS: dict[int, str] = {1: "warning", 2: "fatal"}
PSK_MODES: dict[int, str] = {0: "psk_ke", 1: "psk_dhe_ke"}
EC_POINT_FORMATS: dict[int, str] = {
    0: "uncompressed",
    1: "ansiX962_compressed_prime",
    2: "ansiX962_compressed_char2",
}
COMPRESSION_METHODS: dict[int, str] = {0: "null", 1: "DEFLATE"}
CERT_COMPRESSION: dict[int, str] = {1: "zlib", 2: "brotli", 3: "zstd"}

# RFC 8446 §4.1.3: "For reasons of backward compatibility with middleboxes (see
# Appendix D.4), the HelloRetryRequest message uses the same structure as the
# ServerHello, but with Random set to the special value of the SHA-256 of
# "HelloRetryRequest":
#   CF 21 AD 74 E5 9A 61 11 BE 1D 8C 02 1E 65 B8 91
#   C2 A2 11 16 7A BB 8C 5E 07 9E 09 E2 C8 A8 33 9C"
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

# RFC 8446 §4.1.3: a TLS 1.3 server that negotiates TLS 1.2 (or below) sets the last
# eight bytes of its random to "DOWNGRD" + 01 (or 00): a downgrade-attack tripwire.
DOWNGRADE_TLS12 = b"DOWNGRD\x01"
DOWNGRADE_TLS11 = b"DOWNGRD\x00"

MAX_RECORD_LENGTH = 2**14 + 2048  # RFC 5246 §6.2.3; RFC 8446 §5.2 allows 2**14 + 256


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE values (0x0A0A, 0x1A1A, ... 0xFAFA): reserved nonsense a client
    sprinkles into its lists so that servers which choke on unknown values get caught."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def _name(table: dict[int, str], value: int, width: int = 4) -> str:
    if value in table:
        return table[value]
    if width == 4 and is_grease(value):
        return f"GREASE (0x{value:04x})"
    return f"unknown (0x{value:0{width}x})"


def version_name(value: int) -> str:
    """``0x0304`` → ``"TLSv1.3"`` (GREASE and unknown values are named too)."""
    return _name(VERSIONS, value)


def cipher_suite_name(value: int) -> str:
    """``0x1301`` → ``"TLS_AES_128_GCM_SHA256"``."""
    return _name(CIPHER_SUITES, value)


def group_name(value: int) -> str:
    """``29`` → ``"x25519"``."""
    return _name(NAMED_GROUPS, value)


def signature_scheme_name(value: int) -> str:
    """``0x0804`` → ``"rsa_pss_rsae_sha256"``."""
    return _name(SIGNATURE_SCHEMES, value)


def extension_name(value: int) -> str:
    """``0`` → ``"server_name"``."""
    return _name(EXTENSION_TYPES, value)


def alert_name(value: int) -> str:
    """``20`` → ``"bad_record_mac"``."""
    return _name(ALERT_DESCRIPTIONS, value, 2)


def key_exchange_of(cipher_suite: int) -> str | None:
    """The TLS 1.2 key exchange a suite implies: ``"ECDHE"``, ``"DHE"``, ``"RSA"``, ``"PSK"``.

    ``None`` for TLS 1.3 suites (key exchange is negotiated by key_share there) and for
    suites this module does not know.
    """
    name = CIPHER_SUITES.get(cipher_suite, "")
    if "_WITH_" not in name:
        return None
    kex = name[len("TLS_") : name.index("_WITH_")]
    if kex.startswith("ECDHE"):
        return "ECDHE"
    if kex.startswith("DHE"):
        return "DHE"
    if kex.startswith("RSA"):
        return "RSA"
    if kex.startswith("PSK"):
        return "PSK"
    return None


# ---------------------------------------------------------------------------
# A bounds-checked reader: the only place that slices bytes
# ---------------------------------------------------------------------------


class _Reader:
    """Reads big-endian integers and length-prefixed vectors, or raises ParseError.

    ``base`` is the offset of ``data[0]`` in the caller's coordinates, so that errors
    name a position a learner can find in a hex dump of the whole message.
    """

    __slots__ = ("data", "pos", "end", "base")

    def __init__(self, data: bytes, base: int = 0, start: int = 0, end: int | None = None):
        self.data = data
        self.pos = start
        self.end = len(data) if end is None else end
        self.base = base

    @property
    def offset(self) -> int:
        return self.base + self.pos

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _need(self, n: int, what: str) -> None:
        if n > self.remaining:
            raise ParseError(
                f"Expected {what} ({n} byte{'s' if n != 1 else ''}) but only "
                f"{self.remaining} byte{'s' if self.remaining != 1 else ''} remain",
                "The bytes are truncated or are not the TLS structure this function parses.",
                offset=self.offset,
            )

    def uint(self, size: int, what: str) -> int:
        self._need(size, what)
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return value

    def u8(self, what: str) -> int:
        return self.uint(1, what)

    def u16(self, what: str) -> int:
        return self.uint(2, what)

    def u24(self, what: str) -> int:
        return self.uint(3, what)

    def u32(self, what: str) -> int:
        return self.uint(4, what)

    def take(self, n: int, what: str) -> bytes:
        self._need(n, what)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def rest(self) -> bytes:
        chunk = self.data[self.pos : self.end]
        self.pos = self.end
        return bytes(chunk)

    def vector(
        self, length_size: int, what: str, minimum: int = 0, maximum: int | None = None
    ) -> _Reader:
        """Read a ``<minimum..maximum>`` vector's length prefix; return a reader over its body."""
        start = self.offset
        length = self.uint(length_size, f"the length of {what}")
        if length < minimum or (maximum is not None and length > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f"at least {minimum}"
            raise ParseError(
                f"Expected the length of {what} to be {bound} bytes but it is {length}",
                "The RFC grammar gives every vector a range; this one is outside it.",
                offset=start,
            )
        self._need(length, what)
        sub = _Reader(self.data, self.base, self.pos, self.pos + length)
        self.pos += length
        return sub

    def opaque(
        self, length_size: int, what: str, minimum: int = 0, maximum: int | None = None
    ) -> bytes:
        return self.vector(length_size, what, minimum, maximum).rest()

    def list_of(self, item_size: int, what: str) -> list[int]:
        if self.remaining % item_size:
            raise ParseError(
                f"Expected {what} to be a whole number of {item_size}-byte values but "
                f"{self.remaining} bytes remain",
                offset=self.offset,
            )
        return [self.uint(item_size, what) for _ in range(self.remaining // item_size)]

    def done(self, what: str) -> None:
        if self.remaining:
            raise ParseError(
                f"Expected the end of {what} but {self.remaining} more bytes follow",
                "Trailing bytes mean a length field and the data disagree.",
                offset=self.offset,
            )


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")


# ---------------------------------------------------------------------------
# Display helpers: every decoded object has a readable repr and a small HTML table
# ---------------------------------------------------------------------------


def _hex(data: bytes, limit: int = 16) -> str:
    text = data[:limit].hex(" ")
    return text + (" …" if len(data) > limit else "")


def _html_table(title: str, rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return (
        "<table class='tls-table'>"
        f"<caption style='text-align:left;font-weight:bold'>{html.escape(title)}</caption>"
        f"{body}</table>"
    )


class _Display:
    """Mixin: ``_rows()`` feeds both ``__repr__``-friendly and HTML views."""

    def _title(self) -> str:
        return type(self).__name__

    def _rows(self) -> list[tuple[str, Any]]:  # pragma: no cover - overridden
        return []

    def _repr_html_(self) -> str:
        return _html_table(self._title(), self._rows())


# ---------------------------------------------------------------------------
# The record layer
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Handshake messages
# ---------------------------------------------------------------------------

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

    def decode(self, *, tls13: bool | None = None, key_exchange: str | None = None) -> Any:
        """Decode the body (see :func:`decode_message`)."""
        return decode_message(self, tls13=tls13, key_exchange=key_exchange)

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
# Extensions
# ---------------------------------------------------------------------------

# RFC 8446 §4.2 (Extensions):
#
#     struct {
#         ExtensionType extension_type;
#         opaque extension_data<0..2^16-1>;
#     } Extension;
#
#     enum {
#         server_name(0),                             /* RFC 6066 */
#         max_fragment_length(1),                     /* RFC 6066 */
#         status_request(5),                          /* RFC 6066 */
#         supported_groups(10),                       /* RFC 8422, 7919 */
#         signature_algorithms(13),                   /* RFC 8446 */
#         use_srtp(14),                               /* RFC 5764 */
#         heartbeat(15),                              /* RFC 6520 */
#         application_layer_protocol_negotiation(16), /* RFC 7301 */
#         signed_certificate_timestamp(18),           /* RFC 6962 */
#         client_certificate_type(19),                /* RFC 7250 */
#         server_certificate_type(20),                /* RFC 7250 */
#         padding(21),                                /* RFC 7685 */
#         pre_shared_key(41),                         /* RFC 8446 */
#         early_data(42),                             /* RFC 8446 */
#         supported_versions(43),                     /* RFC 8446 */
#         cookie(44),                                 /* RFC 8446 */
#         psk_key_exchange_modes(45),                 /* RFC 8446 */
#         certificate_authorities(47),                /* RFC 8446 */
#         oid_filters(48),                            /* RFC 8446 */
#         post_handshake_auth(49),                    /* RFC 8446 */
#         signature_algorithms_cert(50),              /* RFC 8446 */
#         key_share(51),                              /* RFC 8446 */
#         (65535)
#     } ExtensionType;
#
# The same extension number means different structures in different messages (a
# client offers a list of versions, a server answers with one), so decoding takes the
# message it came from as ``context``.


@dataclass(frozen=True, repr=False)
class KeyShareEntry:
    """RFC 8446 §4.2.8: ``struct { NamedGroup group; opaque key_exchange<1..2^16-1>; }``."""

    group: int
    key_exchange: bytes

    @property
    def group_name(self) -> str:
        return group_name(self.group)

    @property
    def key_length(self) -> int:
        return len(self.key_exchange)

    def __repr__(self) -> str:
        return f"KeyShareEntry({self.group_name}, {self.key_length} bytes)"


@dataclass(frozen=True, repr=False)
class Extension(_Display):
    """One extension: its number, raw ``data`` and a decoded ``value`` (None if unknown).

    ``value`` is plain Python: a list of names for name lists, a string for SNI, a
    :class:`KeyShareEntry` list for a client's key_share, and so on.
    """

    type: int
    data: bytes
    value: Any = None
    offset: int = 0

    @property
    def name(self) -> str:
        return extension_name(self.type)

    @property
    def known(self) -> bool:
        return self.type in EXTENSION_TYPES

    def __repr__(self) -> str:
        if self.value is None:
            return f"Extension({self.name}, {len(self.data)} bytes)"
        return f"Extension({self.name}={self.value!r})"

    def _title(self) -> str:
        return f"Extension: {self.name}"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("type", f"{self.type} ({self.name})"),
            ("length", len(self.data)),
            ("value", _describe(self.value) if self.value is not None else _hex(self.data, 24)),
        ]


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_describe(v) for v in value) if value else "(empty)"
    if isinstance(value, bytes):
        return _hex(value, 24) if value else "(empty)"
    if isinstance(value, bool):
        return "present" if value else "absent"
    return str(value)


def _text(data: bytes) -> str:
    return data.decode("ascii", "backslashreplace")


def _decode_extension(ext_type: int, r: _Reader, context: str) -> Any:
    """Decode one extension_data body; ``r`` spans exactly that body."""
    hello = context == "client_hello"
    if ext_type == 0:
        # RFC 6066 §3:
        #     struct {
        #         NameType name_type;
        #         select (name_type) { case host_name: HostName; } name;
        #     } ServerName;
        #     enum { host_name(0), (255) } NameType;
        #     opaque HostName<1..2^16-1>;
        #     struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
        # A server acknowledges SNI with an *empty* server_name extension.
        if not r.remaining and not hello:
            return True
        names = []
        lst = r.vector(2, "server_name_list", 1)
        while lst.remaining:
            name_type = lst.u8("a server name type")
            name = lst.opaque(2, "a HostName", 1)
            if name_type == 0:
                names.append(_text(name))
        r.done("server_name")
        return names[0] if len(names) == 1 else names
    if ext_type == 16:
        # RFC 7301 §3.1:
        #     opaque ProtocolName<1..2^8-1>;
        #     struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList;
        lst = r.vector(2, "protocol_name_list", 2)
        protocols = []
        while lst.remaining:
            protocols.append(_text(lst.opaque(1, "a ProtocolName", 1)))
        r.done("application_layer_protocol_negotiation")
        return protocols
    if ext_type == 43:
        # RFC 8446 §4.2.1:
        #     struct {
        #         select (Handshake.msg_type) {
        #             case client_hello:
        #                  ProtocolVersion versions<2..254>;
        #             case server_hello: /* and HelloRetryRequest */
        #                  ProtocolVersion selected_version;
        #         };
        #     } SupportedVersions;
        if hello:
            versions = r.vector(1, "supported versions", 2, 254).list_of(2, "supported versions")
            r.done("supported_versions")
            return [version_name(v) for v in versions]
        value = r.u16("selected_version")
        r.done("supported_versions")
        return version_name(value)
    if ext_type == 10:
        # RFC 8446 §4.2.7:
        #     struct { NamedGroup named_group_list<2..2^16-1>; } NamedGroupList;
        groups = r.vector(2, "named_group_list", 2).list_of(2, "named groups")
        r.done("supported_groups")
        return [group_name(g) for g in groups]
    if ext_type in (13, 50):
        # RFC 8446 §4.2.3:
        #     struct {
        #         SignatureScheme supported_signature_algorithms<2..2^16-2>;
        #     } SignatureSchemeList;
        schemes = r.vector(2, "supported_signature_algorithms", 2).list_of(2, "signature schemes")
        r.done(extension_name(ext_type))
        return [signature_scheme_name(s) for s in schemes]
    if ext_type == 51:
        # RFC 8446 §4.2.8:
        #     struct {
        #         NamedGroup group;
        #         opaque key_exchange<1..2^16-1>;
        #     } KeyShareEntry;
        #     struct { KeyShareEntry client_shares<0..2^16-1>; } KeyShareClientHello;
        #     struct { NamedGroup selected_group; } KeyShareHelloRetryRequest;
        #     struct { KeyShareEntry server_share; } KeyShareServerHello;
        if context == "hello_retry_request":
            value = r.u16("selected_group")
            r.done("key_share")
            return group_name(value)
        if hello:
            shares = r.vector(2, "client_shares")
            entries = []
            while shares.remaining:
                group = shares.u16("a key share group")
                entries.append(KeyShareEntry(group, shares.opaque(2, "key_exchange", 1)))
            r.done("key_share")
            return entries
        group = r.u16("the server's key share group")
        entry = KeyShareEntry(group, r.opaque(2, "key_exchange", 1))
        r.done("key_share")
        return entry
    if ext_type == 45:
        # RFC 8446 §4.2.9:
        #     enum { psk_ke(0), psk_dhe_ke(1), (255) } PskKeyExchangeMode;
        #     struct { PskKeyExchangeMode ke_modes<1..255>; } PskKeyExchangeModes;
        modes = r.vector(1, "ke_modes", 1).list_of(1, "PSK modes")
        r.done("psk_key_exchange_modes")
        return [_name(PSK_MODES, m, 2) for m in modes]
    if ext_type == 11:
        # RFC 8422 §5.1.2: struct { ECPointFormat ec_point_format_list<1..2^8-1> } ECPointFormatList;
        formats = r.vector(1, "ec_point_format_list", 1).list_of(1, "point formats")
        r.done("ec_point_formats")
        return [_name(EC_POINT_FORMATS, f, 2) for f in formats]
    if ext_type == 65281:
        # RFC 5746 §3.2: struct { opaque renegotiated_connection<0..255>; } RenegotiationInfo;
        value = r.opaque(1, "renegotiated_connection")
        r.done("renegotiation_info")
        return value
    if ext_type == 28:
        # RFC 8449 §4: uint16 RecordSizeLimit;
        value = r.u16("the record size limit")
        r.done("record_size_limit")
        return value
    if ext_type == 1:
        # RFC 6066 §4: enum { 2^9(1), 2^10(2), 2^11(3), 2^12(4), (255) } MaxFragmentLength;
        value = r.u8("the max fragment length code")
        r.done("max_fragment_length")
        return 2 ** (8 + value) if 1 <= value <= 4 else f"invalid ({value})"
    if ext_type == 27:
        # RFC 8879 §3: CertificateCompressionAlgorithm algorithms<2..2^8-2>;
        algorithms = r.vector(1, "compression algorithms", 2).list_of(2, "compression algorithms")
        r.done("compress_certificate")
        return [_name(CERT_COMPRESSION, a) for a in algorithms]
    if ext_type == 5 and hello:
        # RFC 6066 §8: struct { CertificateStatusType status_type; ... } CertificateStatusRequest;
        status_type = r.u8("status_type")
        r.rest()
        return "ocsp" if status_type == 1 else f"type {status_type}"
    if ext_type == 41:
        # RFC 8446 §4.2.11: a client sends identities and binders; the server picks one.
        #     struct { opaque identity<1..2^16-1>; uint32 obfuscated_ticket_age; } PskIdentity;
        #     opaque PskBinderEntry<32..255>;
        #     struct { PskIdentity identities<7..2^16-1>; PskBinderEntry binders<33..2^16-1>; } OfferedPsks;
        #     select: case client_hello: OfferedPsks; case server_hello: uint16 selected_identity;
        if hello:
            identities = r.vector(2, "PSK identities", 7)
            count = 0
            while identities.remaining:
                identities.opaque(2, "a PSK identity", 1)
                identities.u32("obfuscated_ticket_age")
                count += 1
            r.vector(2, "PSK binders", 33)
            r.done("pre_shared_key")
            return f"{count} identit{'y' if count == 1 else 'ies'}"
        value = r.u16("selected_identity")
        r.done("pre_shared_key")
        return f"selected identity {value}"
    if ext_type == 44:
        # RFC 8446 §4.2.2: struct { opaque cookie<1..2^16-1>; } Cookie;
        value = r.opaque(2, "cookie", 1)
        r.done("cookie")
        return value
    if ext_type == 21:
        # RFC 7685: zero bytes that pad a ClientHello to a size middleboxes like.
        return f"{len(r.rest())} bytes"
    if ext_type in (22, 23, 49) or (ext_type in (18, 35, 42) and not r.remaining):
        r.done(extension_name(ext_type))
        return True  # an empty "I support this" flag
    return None


def parse_extensions(
    data: bytes | bytearray | memoryview, context: str = "client_hello", *, offset: int = 0
) -> list[Extension]:
    """Parse an ``Extension extensions<0..2^16-1>`` vector (length prefix included).

    ``context`` is the message the vector came from: ``"client_hello"``,
    ``"server_hello"``, ``"hello_retry_request"``, ``"encrypted_extensions"``,
    ``"certificate"``, ``"certificate_request"`` or ``"new_session_ticket"``.
    """
    r = _Reader(_as_bytes(data), offset)
    extensions = _read_extensions(r, context)
    r.done("the extensions")
    return extensions


def _read_extensions(r: _Reader, context: str) -> list[Extension]:
    block = r.vector(2, "the extensions block")
    extensions = []
    while block.remaining:
        start = block.offset
        ext_type = block.u16("an extension type")
        body = block.vector(2, f"the {extension_name(ext_type)} extension")
        raw = bytes(body.data[body.pos : body.end])
        value = _decode_extension(ext_type, body, context)
        extensions.append(Extension(ext_type, raw, value, start))
    return extensions


class _HasExtensions(_Display):
    extensions: list[Extension]

    def extension(self, name_or_type: str | int) -> Extension | None:
        """The first extension with this name or number, or None."""
        for ext in self.extensions:
            if ext.type == name_or_type or ext.name == name_or_type:
                return ext
        return None

    def _value(self, ext_type: int) -> Any:
        ext = self.extension(ext_type)
        return None if ext is None else ext.value

    @property
    def extension_names(self) -> list[str]:
        return [ext.name for ext in self.extensions]


# ---------------------------------------------------------------------------
# ClientHello
# ---------------------------------------------------------------------------

# RFC 8446 §4.1.2 (Client Hello):
#
#     uint16 ProtocolVersion;
#     opaque Random[32];
#
#     uint8 CipherSuite[2];    /* Cryptographic suite selector */
#
#     struct {
#         ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
#         Random random;
#         opaque legacy_session_id<0..32>;
#         CipherSuite cipher_suites<2..2^16-2>;
#         opaque legacy_compression_methods<1..2^8-1>;
#         Extension extensions<8..2^16-1>;
#     } ClientHello;
#
# (RFC 5246 §7.4.1.2 is the same shape; there the extensions block is optional.)


@dataclass(frozen=True, repr=False)
class ClientHello(_HasExtensions):
    """A decoded ClientHello: what the client offers."""

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: list[int]
    compression_methods: list[int]
    extensions: list[Extension] = field(default_factory=list)

    @property
    def cipher_suite_names(self) -> list[str]:
        return [cipher_suite_name(c) for c in self.cipher_suites]

    @property
    def server_name(self) -> str | None:
        """SNI: the host name the client asks for (sent in clear in TLS 1.2 and 1.3)."""
        value = self._value(0)
        if isinstance(value, list):
            return value[0] if value else None
        return value if isinstance(value, str) else None

    @property
    def alpn(self) -> list[str]:
        return list(self._value(16) or [])

    @property
    def supported_versions(self) -> list[str]:
        """Versions offered in supported_versions (empty for a pre-1.3 client)."""
        return list(self._value(43) or [])

    @property
    def versions(self) -> list[str]:
        """Every version offered: supported_versions if present, else the legacy version."""
        return self.supported_versions or [version_name(self.legacy_version)]

    @property
    def highest_version(self) -> str:
        known = [v for v in self.versions if v in VERSIONS.values()]
        order = list(VERSIONS.values())
        return max(known, key=order.index) if known else version_name(self.legacy_version)

    @property
    def supported_groups(self) -> list[str]:
        return list(self._value(10) or [])

    @property
    def signature_algorithms(self) -> list[str]:
        return list(self._value(13) or [])

    @property
    def key_shares(self) -> list[KeyShareEntry]:
        value = self._value(51)
        return list(value) if isinstance(value, list) else []

    @property
    def psk_modes(self) -> list[str]:
        return list(self._value(45) or [])

    @property
    def grease(self) -> bool:
        """Did the client sprinkle GREASE values (RFC 8701)?"""
        return any(is_grease(c) for c in self.cipher_suites) or any(
            is_grease(e.type) for e in self.extensions
        )

    def __repr__(self) -> str:
        return (
            f"ClientHello({'/'.join(self.versions)}, sni={self.server_name!r}, "
            f"alpn={self.alpn}, {len(self.cipher_suites)} cipher suites, "
            f"{len(self.extensions)} extensions)"
        )

    def _rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            (
                "legacy_version",
                f"0x{self.legacy_version:04x} ({version_name(self.legacy_version)})",
            ),
            ("supported_versions", _describe(self.supported_versions)),
            ("random", _hex(self.random, 32)),
            ("session id", _hex(self.session_id, 32) if self.session_id else "(empty)"),
            ("cipher suites", _describe(self.cipher_suite_names)),
            (
                "compression",
                _describe([_name(COMPRESSION_METHODS, m, 2) for m in self.compression_methods]),
            ),
            ("server name (SNI)", self.server_name or "(none)"),
            ("ALPN", _describe(self.alpn)),
            ("supported groups", _describe(self.supported_groups)),
            ("signature algorithms", _describe(self.signature_algorithms)),
            (
                "key shares",
                _describe([f"{k.group_name} ({k.key_length} bytes)" for k in self.key_shares]),
            ),
            ("PSK modes", _describe(self.psk_modes)),
        ]
        rows += [
            (
                f"ext {e.type}",
                f"{e.name}: {_describe(e.value) if e.value is not None else _hex(e.data)}",
            )
            for e in self.extensions
        ]
        return rows


def parse_client_hello(body: bytes | bytearray | memoryview, *, offset: int = 0) -> ClientHello:
    """Decode a ClientHello *body* (the handshake message without its 4-byte header)."""
    r = _Reader(_as_bytes(body), offset)
    legacy_version = r.u16("legacy_version")
    random = r.take(32, "the 32-byte random")
    session_id = r.opaque(1, "legacy_session_id", 0, 32)
    suites = r.vector(2, "cipher_suites", 2, 2**16 - 2).list_of(2, "cipher suites")
    compression = list(r.opaque(1, "legacy_compression_methods", 1))
    extensions = _read_extensions(r, "client_hello") if r.remaining else []
    r.done("the ClientHello")
    return ClientHello(legacy_version, random, session_id, suites, compression, extensions)


# ---------------------------------------------------------------------------
# ServerHello (and HelloRetryRequest)
# ---------------------------------------------------------------------------

# RFC 8446 §4.1.3 (Server Hello):
#
#     struct {
#         ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
#         Random random;
#         opaque legacy_session_id_echo<0..32>;
#         CipherSuite cipher_suite;
#         uint8 legacy_compression_method = 0;
#         Extension extensions<6..2^16-1>;
#     } ServerHello;
#
# "For reasons of backward compatibility with middleboxes (see Appendix D.4), the
#  HelloRetryRequest message uses the same structure as the ServerHello, but with
#  Random set to the special value of the SHA-256 of "HelloRetryRequest"" (HRR_RANDOM).


@dataclass(frozen=True, repr=False)
class ServerHello(_HasExtensions):
    """A decoded ServerHello (or HelloRetryRequest): what the server chose."""

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: list[Extension] = field(default_factory=list)

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HRR_RANDOM

    @property
    def version(self) -> str:
        """The negotiated version: supported_versions if present, else legacy_version."""
        selected = self._value(43)
        return selected if isinstance(selected, str) else version_name(self.legacy_version)

    @property
    def cipher_suite_name(self) -> str:
        return cipher_suite_name(self.cipher_suite)

    @property
    def alpn(self) -> str | None:
        """The chosen ALPN protocol (TLS 1.2 only: TLS 1.3 moves it into EncryptedExtensions)."""
        value = self._value(16)
        return value[0] if value else None

    @property
    def key_share(self) -> KeyShareEntry | None:
        value = self._value(51)
        return value if isinstance(value, KeyShareEntry) else None

    @property
    def selected_group(self) -> str | None:
        value = self._value(51)
        if isinstance(value, KeyShareEntry):
            return value.group_name
        return value if isinstance(value, str) else None

    @property
    def downgrade_sentinel(self) -> str | None:
        """``"TLSv1.2"``/``"TLSv1.1"`` if the random ends with a downgrade sentinel."""
        tail = self.random[-8:]
        if tail == DOWNGRADE_TLS12:
            return "TLSv1.2"
        if tail == DOWNGRADE_TLS11:
            return "TLSv1.1"
        return None

    def _title(self) -> str:
        return "HelloRetryRequest" if self.is_hello_retry_request else "ServerHello"

    def __repr__(self) -> str:
        group = f", group={self.selected_group}" if self.selected_group else ""
        alpn = f", alpn={self.alpn!r}" if self.alpn else ""
        return f"{self._title()}({self.version}, {self.cipher_suite_name}{group}{alpn}, {len(self.extensions)} extensions)"

    def _rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            (
                "legacy_version",
                f"0x{self.legacy_version:04x} ({version_name(self.legacy_version)})",
            ),
            ("negotiated version", self.version),
            (
                "random",
                _hex(self.random, 32)
                + (" (HelloRetryRequest)" if self.is_hello_retry_request else ""),
            ),
            ("session id echo", _hex(self.session_id, 32) if self.session_id else "(empty)"),
            ("cipher suite", f"0x{self.cipher_suite:04x} {self.cipher_suite_name}"),
            ("compression", _name(COMPRESSION_METHODS, self.compression_method, 2)),
            ("key share", self.selected_group or "(none)"),
            ("ALPN", self.alpn or "(none)"),
        ]
        rows += [
            (
                f"ext {e.type}",
                f"{e.name}: {_describe(e.value) if e.value is not None else _hex(e.data)}",
            )
            for e in self.extensions
        ]
        return rows


def parse_server_hello(body: bytes | bytearray | memoryview, *, offset: int = 0) -> ServerHello:
    """Decode a ServerHello (or HelloRetryRequest) body."""
    r = _Reader(_as_bytes(body), offset)
    legacy_version = r.u16("legacy_version")
    random = r.take(32, "the 32-byte random")
    session_id = r.opaque(1, "legacy_session_id_echo", 0, 32)
    suite = r.u16("cipher_suite")
    compression = r.u8("legacy_compression_method")
    context = "hello_retry_request" if random == HRR_RANDOM else "server_hello"
    extensions = _read_extensions(r, context) if r.remaining else []
    r.done("the ServerHello")
    return ServerHello(legacy_version, random, session_id, suite, compression, extensions)


# ---------------------------------------------------------------------------
# Certificate
# ---------------------------------------------------------------------------

# RFC 5246 §7.4.2 (Server Certificate), TLS 1.2:
#
#     opaque ASN.1Cert<1..2^24-1>;
#
#     struct {
#         ASN.1Cert certificate_list<0..2^24-1>;
#     } Certificate;
#
# RFC 8446 §4.4.2 (Certificate), TLS 1.3 (always encrypted):
#
#     struct {
#         select (certificate_type) {
#             case RawPublicKey: opaque ASN1_subjectPublicKeyInfo<1..2^24-1>;
#             case X509: opaque cert_data<1..2^24-1>;
#         };
#         Extension extensions<0..2^16-1>;
#     } CertificateEntry;
#
#     struct {
#         opaque certificate_request_context<0..2^8-1>;
#         CertificateEntry certificate_list<0..2^24-1>;
#     } Certificate;


@dataclass(frozen=True, repr=False)
class Certificate(_Display):
    """The certificate chain a peer sent: DER bytes, leaf first."""

    certificates: list[bytes]
    request_context: bytes | None = None  # TLS 1.3 only
    entry_extensions: list[list[Extension]] = field(default_factory=list)  # TLS 1.3 only

    def x509(self) -> list[x509.Certificate]:
        """Load every certificate with ``cryptography`` (ParseError if one is not DER)."""
        from cryptography import x509 as _x509

        loaded = []
        for index, der in enumerate(self.certificates):
            try:
                loaded.append(_x509.load_der_x509_certificate(der))
            except ValueError as exc:
                raise ParseError(
                    f"Expected certificate {index} of the chain to be DER X.509 but cryptography refused it ({exc})",
                    offset=None,
                ) from None
        return loaded

    def _subjects(self) -> list[str]:
        try:
            return [c.subject.rfc4514_string() for c in self.x509()]
        except (ParseError, ValueError):
            return [f"{len(c)} bytes" for c in self.certificates]

    def __repr__(self) -> str:
        return f"Certificate({len(self.certificates)} certificates: {', '.join(self._subjects())})"

    def _rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = []
        if self.request_context is not None:
            rows.append(("request context", _hex(self.request_context) or "(empty)"))
        for i, (der, subject) in enumerate(zip(self.certificates, self._subjects(), strict=True)):
            rows.append((f"certificate {i}", f"{subject} ({len(der)} bytes DER)"))
        return rows


def parse_certificate(
    body: bytes | bytearray | memoryview, *, tls13: bool = False, offset: int = 0
) -> Certificate:
    """Decode a Certificate body (TLS 1.2 layout unless ``tls13``)."""
    r = _Reader(_as_bytes(body), offset)
    context = r.opaque(1, "certificate_request_context") if tls13 else None
    chain = r.vector(3, "certificate_list")
    certificates: list[bytes] = []
    entry_extensions: list[list[Extension]] = []
    while chain.remaining:
        certificates.append(chain.opaque(3, "a certificate (ASN.1Cert)", 1))
        if tls13:
            entry_extensions.append(_read_extensions(chain, "certificate"))
    r.done("the Certificate message")
    return Certificate(certificates, context, entry_extensions)


# ---------------------------------------------------------------------------
# ServerKeyExchange (TLS 1.2)
# ---------------------------------------------------------------------------

# RFC 5246 §7.4.3 (Server Key Exchange Message):
#
#     struct {
#         opaque dh_p<1..2^16-1>;
#         opaque dh_g<1..2^16-1>;
#         opaque dh_Ys<1..2^16-1>;
#     } ServerDHParams;     /* Ephemeral DH parameters */
#
#     struct {
#         select (KeyExchangeAlgorithm) {
#             case dh_anon:
#                 ServerDHParams params;
#             case dhe_dss:
#             case dhe_rsa:
#                 ServerDHParams params;
#                 digitally-signed struct {
#                     opaque client_random[32];
#                     opaque server_random[32];
#                     ServerDHParams params;
#                 } signed_params;
#             case rsa:
#             case dh_dss:
#             case dh_rsa:
#                 struct {} ;
#                /* message is omitted for rsa, dh_dss, and dh_rsa */
#         };
#     } ServerKeyExchange;
#
# RFC 5246 §4.7: a digitally-signed element is
#     struct { SignatureAndHashAlgorithm algorithm; opaque signature<0..2^16-1>; }
# TLS 1.0/1.1 (RFC 2246 §7.4.3, RFC 4346 §7.4.3) have no algorithm field: the hash was
# fixed (MD5+SHA-1 for RSA, SHA-1 for DSA/ECDSA), so the signature follows the params.
#
# RFC 8422 §5.4 adds the ECDHE case:
#     enum { named_curve(3), (255) } ECCurveType;
#     struct { ECCurveType curve_type; NamedCurve namedcurve; } ECParameters;
#     struct { opaque point<1..2^8-1>; } ECPoint;
#     struct { ECParameters curve_params; ECPoint public; } ServerECDHParams;
#     ... case ec_diffie_hellman: ServerECDHParams params; Signature signed_params;


@dataclass(frozen=True, repr=False)
class ServerKeyExchange(_Display):
    """The server's ephemeral (EC)DH share and its signature over both randoms."""

    key_exchange: str  # "ECDHE" or "DHE"
    public: bytes
    group: int | None = None  # named curve (ECDHE)
    dh_p: bytes | None = None  # prime (DHE)
    dh_g: bytes | None = None  # generator (DHE)
    signature_algorithm: int | None = None
    signature: bytes = b""

    @property
    def group_name(self) -> str:
        if self.group is not None:
            return group_name(self.group)
        bits = 8 * len((self.dh_p or b"").lstrip(b"\x00"))
        return f"{bits}-bit finite-field group"

    @property
    def signature_algorithm_name(self) -> str | None:
        if self.signature_algorithm is None:
            return None
        return signature_scheme_name(self.signature_algorithm)

    def __repr__(self) -> str:
        return (
            f"ServerKeyExchange({self.key_exchange}, {self.group_name}, public {len(self.public)} bytes, "
            f"signed with {self.signature_algorithm_name})"
        )

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("key exchange", self.key_exchange),
            ("group", self.group_name),
            ("public value", f"{len(self.public)} bytes: {_hex(self.public)}"),
            ("signature algorithm", self.signature_algorithm_name or "(none)"),
            ("signature", f"{len(self.signature)} bytes: {_hex(self.signature)}"),
        ]


def parse_server_key_exchange(
    body: bytes | bytearray | memoryview,
    *,
    key_exchange: str | None = None,
    offset: int = 0,
    legacy: bool = False,
) -> ServerKeyExchange:
    """Decode a TLS 1.2 ServerKeyExchange body.

    ``key_exchange`` is ``"ECDHE"`` or ``"DHE"`` (see :func:`key_exchange_of`); when
    omitted, a first byte of 3 (named_curve) means ECDHE, anything else DHE.
    ``legacy=True`` reads the TLS 1.0/1.1 layout, whose signature has no
    SignatureAndHashAlgorithm in front (``signature_algorithm`` is then None).
    """
    data = _as_bytes(body)
    r = _Reader(data, offset)
    if key_exchange is None:
        key_exchange = "ECDHE" if data[:1] == b"\x03" else "DHE"
    if key_exchange == "ECDHE":
        curve_type = r.u8("curve_type")
        if curve_type != 3:
            raise ParseError(
                f"Expected curve_type named_curve (3) but found {curve_type}",
                "Explicit curves were removed by RFC 8422.",
                offset=r.offset - 1,
            )
        group = r.u16("namedcurve")
        public = r.opaque(1, "the ECPoint", 1)
        dh_p = dh_g = None
    elif key_exchange == "DHE":
        group = None
        dh_p = r.opaque(2, "dh_p", 1)
        dh_g = r.opaque(2, "dh_g", 1)
        public = r.opaque(2, "dh_Ys", 1)
    else:
        raise ValueError(f"key_exchange must be 'ECDHE' or 'DHE', not {key_exchange!r}")
    algorithm = None
    signature = b""
    if r.remaining:  # absent only for anonymous suites
        if not legacy:
            algorithm = r.u16("the SignatureAndHashAlgorithm")
        signature = r.opaque(2, "the signature")
    r.done("the ServerKeyExchange")
    return ServerKeyExchange(key_exchange, public, group, dh_p, dh_g, algorithm, signature)


# ---------------------------------------------------------------------------
# ServerHelloDone, ClientKeyExchange, Finished (TLS 1.2)
# ---------------------------------------------------------------------------

# RFC 5246 §7.4.5 (Server Hello Done):
#
#     struct { } ServerHelloDone;


@dataclass(frozen=True, repr=False)
class ServerHelloDone(_Display):
    """An empty message: "my half of the hello phase is over, your turn"."""

    def __repr__(self) -> str:
        return "ServerHelloDone()"

    def _rows(self) -> list[tuple[str, Any]]:
        return [("body", "(empty)")]


def parse_server_hello_done(
    body: bytes | bytearray | memoryview, *, offset: int = 0
) -> ServerHelloDone:
    r = _Reader(_as_bytes(body), offset)
    r.done("the ServerHelloDone (it has no body)")
    return ServerHelloDone()


# RFC 5246 §7.4.7 (Client Key Exchange Message):
#
#     struct {
#         select (KeyExchangeAlgorithm) {
#             case rsa:
#                 EncryptedPreMasterSecret;
#             case dhe_dss:
#             case dhe_rsa:
#             case dh_dss:
#             case dh_rsa:
#             case dh_anon:
#                 ClientDiffieHellmanPublic;
#         } exchange_keys;
#     } ClientKeyExchange;
#
# §7.4.7.1: struct { public-key-encrypted PreMasterSecret pre_master_secret; }
#           EncryptedPreMasterSecret;   (a 2-byte length, then the RSA ciphertext)
# §7.4.7.2: struct { select (PublicValueEncoding) { case implicit: struct { };
#           case explicit: opaque dh_Yc<1..2^16-1>; } dh_public; } ClientDiffieHellmanPublic;
# RFC 8422 §5.7: struct { ... ECPoint ecdh_Yc; } ClientECDiffieHellmanPublic;
#           (a 1-byte length, then the point)


@dataclass(frozen=True, repr=False)
class ClientKeyExchange(_Display):
    """The client's (EC)DH public value, or its RSA-encrypted premaster secret."""

    key_exchange: str  # "ECDHE", "DHE" or "RSA"
    exchange_keys: bytes

    def __repr__(self) -> str:
        return f"ClientKeyExchange({self.key_exchange}, {len(self.exchange_keys)} bytes)"

    def _rows(self) -> list[tuple[str, Any]]:
        what = "encrypted premaster secret" if self.key_exchange == "RSA" else "public value"
        return [
            ("key exchange", self.key_exchange),
            (what, f"{len(self.exchange_keys)} bytes: {_hex(self.exchange_keys)}"),
        ]


def parse_client_key_exchange(
    body: bytes | bytearray | memoryview, *, key_exchange: str | None = None, offset: int = 0
) -> ClientKeyExchange:
    """Decode a TLS 1.2 ClientKeyExchange body.

    Without ``key_exchange``, the length prefix decides: a 1-byte prefix that covers the
    body is an ECDH point; a 2-byte one is DHE or RSA (reported as ``"DHE/RSA"``).
    """
    data = _as_bytes(body)
    r = _Reader(data, offset)
    if key_exchange is None:
        if data and data[0] + 1 == len(data):
            key_exchange = "ECDHE"
        else:
            key_exchange = "DHE/RSA"
    if key_exchange == "ECDHE":
        value = r.opaque(1, "ecdh_Yc", 1)
    else:
        value = r.opaque(2, "the exchange keys", 1)
    r.done("the ClientKeyExchange")
    return ClientKeyExchange(key_exchange, value)


# RFC 5246 §7.4.9 (Finished) and RFC 8446 §4.4.4:
#
#     struct {
#         opaque verify_data[verify_data_length];
#     } Finished;
#
# In both versions Finished is encrypted on the wire; you see it only after decryption.


@dataclass(frozen=True, repr=False)
class Finished(_Display):
    """``verify_data``: a MAC over the whole transcript, proving nobody tampered with it."""

    verify_data: bytes

    def __repr__(self) -> str:
        return f"Finished({len(self.verify_data)} bytes)"

    def _rows(self) -> list[tuple[str, Any]]:
        return [("verify_data", _hex(self.verify_data, 48))]


def parse_finished(body: bytes | bytearray | memoryview, *, offset: int = 0) -> Finished:
    r = _Reader(_as_bytes(body), offset)
    if not r.remaining:
        raise ParseError(
            "Expected verify_data in the Finished message but it is empty", offset=offset
        )
    return Finished(r.rest())


# ---------------------------------------------------------------------------
# TLS 1.3 messages that travel encrypted (for helpers.tls13, after decryption)
# ---------------------------------------------------------------------------

# RFC 8446 §4.3.1 (Encrypted Extensions):
#
#     struct {
#         Extension extensions<0..2^16-1>;
#     } EncryptedExtensions;


@dataclass(frozen=True, repr=False)
class EncryptedExtensions(_HasExtensions):
    """The TLS 1.3 server's extensions that need not be in clear (ALPN lives here)."""

    extensions: list[Extension] = field(default_factory=list)

    @property
    def alpn(self) -> str | None:
        value = self._value(16)
        return value[0] if value else None

    def __repr__(self) -> str:
        return f"EncryptedExtensions({', '.join(self.extension_names) or 'none'})"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            (e.name, _describe(e.value) if e.value is not None else _hex(e.data))
            for e in self.extensions
        ]


def parse_encrypted_extensions(
    body: bytes | bytearray | memoryview, *, offset: int = 0
) -> EncryptedExtensions:
    r = _Reader(_as_bytes(body), offset)
    extensions = _read_extensions(r, "encrypted_extensions")
    r.done("the EncryptedExtensions")
    return EncryptedExtensions(extensions)


# RFC 8446 §4.4.3 (Certificate Verify):
#
#     struct {
#         SignatureScheme algorithm;
#         opaque signature<0..2^16-1>;
#     } CertificateVerify;


@dataclass(frozen=True, repr=False)
class CertificateVerify(_Display):
    """A signature over the transcript hash with the certificate's private key."""

    algorithm: int
    signature: bytes

    @property
    def algorithm_name(self) -> str:
        return signature_scheme_name(self.algorithm)

    def __repr__(self) -> str:
        return f"CertificateVerify({self.algorithm_name}, {len(self.signature)} bytes)"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("algorithm", self.algorithm_name),
            ("signature", f"{len(self.signature)} bytes: {_hex(self.signature)}"),
        ]


def parse_certificate_verify(
    body: bytes | bytearray | memoryview, *, offset: int = 0
) -> CertificateVerify:
    r = _Reader(_as_bytes(body), offset)
    algorithm = r.u16("the SignatureScheme")
    signature = r.opaque(2, "the signature")
    r.done("the CertificateVerify")
    return CertificateVerify(algorithm, signature)


# RFC 8446 §4.3.2 (Certificate Request):
#
#     struct {
#         opaque certificate_request_context<0..2^8-1>;
#         Extension extensions<2..2^16-1>;
#     } CertificateRequest;
#
# RFC 5246 §7.4.4 (TLS 1.2):
#
#     struct {
#         ClientCertificateType certificate_types<1..2^8-1>;
#         SignatureAndHashAlgorithm supported_signature_algorithms<2^16-1>;
#         DistinguishedName certificate_authorities<0..2^16-1>;
#     } CertificateRequest;


@dataclass(frozen=True, repr=False)
class CertificateRequest(_HasExtensions):
    """The server asks the client for a certificate (mutual TLS)."""

    request_context: bytes | None = None  # TLS 1.3
    extensions: list[Extension] = field(default_factory=list)  # TLS 1.3
    certificate_types: list[int] = field(default_factory=list)  # TLS 1.2
    signature_algorithms: list[str] = field(default_factory=list)  # TLS 1.2 (1.3: extension)
    certificate_authorities: list[bytes] = field(default_factory=list)  # TLS 1.2, DER names

    def __repr__(self) -> str:
        algorithms = self.signature_algorithms or self._value(13) or []
        return f"CertificateRequest({len(algorithms)} signature algorithms)"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("signature algorithms", _describe(self.signature_algorithms or self._value(13) or [])),
            ("extensions", _describe(self.extension_names)),
            ("certificate authorities", len(self.certificate_authorities)),
        ]


def parse_certificate_request(
    body: bytes | bytearray | memoryview, *, tls13: bool = False, offset: int = 0
) -> CertificateRequest:
    r = _Reader(_as_bytes(body), offset)
    if tls13:
        context = r.opaque(1, "certificate_request_context")
        extensions = _read_extensions(r, "certificate_request")
        r.done("the CertificateRequest")
        return CertificateRequest(request_context=context, extensions=extensions)
    types = list(r.opaque(1, "certificate_types", 1))
    algorithms = r.vector(2, "supported_signature_algorithms").list_of(2, "signature algorithms")
    names = r.vector(2, "certificate_authorities")
    authorities = []
    while names.remaining:
        authorities.append(names.opaque(2, "a DistinguishedName", 1))
    r.done("the CertificateRequest")
    return CertificateRequest(
        certificate_types=types,
        signature_algorithms=[signature_scheme_name(a) for a in algorithms],
        certificate_authorities=authorities,
    )


# RFC 8446 §4.6.1 (New Session Ticket Message):
#
#     struct {
#         uint32 ticket_lifetime;
#         uint32 ticket_age_add;
#         opaque ticket_nonce<0..255>;
#         opaque ticket<1..2^16-1>;
#         Extension extensions<0..2^16-2>;
#     } NewSessionTicket;
#
# RFC 5077 §3.3 (TLS 1.2):
#
#     struct {
#         uint32 ticket_lifetime_hint;
#         opaque ticket<0..2^16-1>;
#     } NewSessionTicket;


@dataclass(frozen=True, repr=False)
class NewSessionTicket(_HasExtensions):
    """A resumption ticket: an opaque blob only the server can read."""

    lifetime: int
    ticket: bytes
    age_add: int | None = None  # TLS 1.3
    nonce: bytes | None = None  # TLS 1.3
    extensions: list[Extension] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"NewSessionTicket(lifetime={self.lifetime}s, ticket {len(self.ticket)} bytes)"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("lifetime (s)", self.lifetime),
            ("ticket", f"{len(self.ticket)} bytes: {_hex(self.ticket)}"),
            ("nonce", _hex(self.nonce) if self.nonce is not None else "(TLS 1.2)"),
        ]


def parse_new_session_ticket(
    body: bytes | bytearray | memoryview, *, tls13: bool = True, offset: int = 0
) -> NewSessionTicket:
    r = _Reader(_as_bytes(body), offset)
    lifetime = r.u32("ticket_lifetime")
    if not tls13:
        ticket = r.opaque(2, "ticket")
        r.done("the NewSessionTicket")
        return NewSessionTicket(lifetime, ticket)
    age_add = r.u32("ticket_age_add")
    nonce = r.opaque(1, "ticket_nonce")
    ticket = r.opaque(2, "ticket", 1)
    extensions = _read_extensions(r, "new_session_ticket")
    r.done("the NewSessionTicket")
    return NewSessionTicket(lifetime, ticket, age_add, nonce, extensions)


# ---------------------------------------------------------------------------
# Records that are not handshake: ChangeCipherSpec and Alert
# ---------------------------------------------------------------------------

# RFC 5246 §7.1 (Change Cipher Spec Protocol):
#
#     struct {
#         enum { change_cipher_spec(1), (255) } type;
#     } ChangeCipherSpec;
#
# In TLS 1.3 it is a dummy record for middlebox compatibility (RFC 8446 §D.4).


@dataclass(frozen=True, repr=False)
class ChangeCipherSpec(_Display):
    """ "From my next record on, I encrypt" (TLS 1.2); a no-op in TLS 1.3."""

    value: int = 1

    def __repr__(self) -> str:
        return "ChangeCipherSpec()"

    def _rows(self) -> list[tuple[str, Any]]:
        return [("type", f"{self.value} (change_cipher_spec)")]


def parse_change_cipher_spec(
    payload: bytes | bytearray | memoryview, *, offset: int = 0
) -> ChangeCipherSpec:
    r = _Reader(_as_bytes(payload), offset)
    value = r.u8("the change_cipher_spec byte")
    if value != 1:
        raise ParseError(
            f"Expected the change_cipher_spec value 1 but found {value}", offset=offset
        )
    r.done("the ChangeCipherSpec")
    return ChangeCipherSpec(value)


# RFC 8446 §6 (Alert Protocol):
#
#     enum { warning(1), fatal(2), (255) } AlertLevel;
#
#     struct {
#         AlertLevel level;
#         AlertDescription description;
#     } Alert;


@dataclass(frozen=True, repr=False)
class Alert(_Display):
    """A two-byte alert: level and description (e.g. fatal bad_record_mac)."""

    level: int
    description: int

    @property
    def level_name(self) -> str:
        return _name(ALERT_LEVELS, self.level, 2)

    @property
    def description_name(self) -> str:
        return alert_name(self.description)

    def __repr__(self) -> str:
        return f"Alert({self.level_name}, {self.description_name})"

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("level", f"{self.level} ({self.level_name})"),
            ("description", f"{self.description} ({self.description_name})"),
        ]


def parse_alert(payload: bytes | bytearray | memoryview, *, offset: int = 0) -> Alert:
    r = _Reader(_as_bytes(payload), offset)
    level = r.u8("the alert level")
    description = r.u8("the alert description")
    r.done("the Alert")
    return Alert(level, description)


# ---------------------------------------------------------------------------
# One entry point for any message
# ---------------------------------------------------------------------------


def decode_message(
    message: HandshakeMessage, *, tls13: bool | None = None, key_exchange: str | None = None
) -> Any:
    """Decode a handshake message into its dataclass, or return None for unknown types.

    ``tls13`` picks the layout of Certificate, CertificateRequest and NewSessionTicket
    (by default: TLS 1.2 for the first two, which are plaintext only in TLS 1.2, and a
    guess from the length fields for NewSessionTicket).
    ``key_exchange`` ("ECDHE"/"DHE"/"RSA") helps the TLS 1.2 key exchange messages.
    """
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
        return parse_server_key_exchange(body, key_exchange=kex, offset=offset)
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
    return None
