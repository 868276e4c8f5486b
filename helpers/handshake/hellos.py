"""The hellos: ClientHello, ServerHello and HelloRetryRequest (introduced in notebook 06).

The hellos are the negotiation. The client's ClientHello *offers*: the versions, the
cipher suites, the groups and signature schemes it supports, the host name it wants
(SNI) and, in TLS 1.3, a guess at the key exchange (``key_share``). The server's
ServerHello *chooses*: one version, one suite, one key share. Both travel in clear in
every TLS version, and in a TLS 1.3 capture they are the only handshake messages you
can read without a key log (:mod:`helpers.tls13` decrypts the rest).

TLS 1.3 hides inside a TLS 1.2-shaped hello for the sake of middleboxes: the
``legacy_version`` fields say 0x0303 and the real versions travel in the
``supported_versions`` extension, which is why :attr:`ClientHello.versions` and
:attr:`ServerHello.version` look there first. A HelloRetryRequest is a ServerHello with
a magic random (:data:`~helpers.handshake.HRR_RANDOM`), sent when the client guessed
the wrong group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .display import _describe, _hex
from .extensions import Extension, KeyShareEntry, _HasExtensions, _read_extensions
from .reader import _as_bytes, _Reader
from .registry import (
    COMPRESSION_METHODS,
    DOWNGRADE_TLS11,
    DOWNGRADE_TLS12,
    HRR_RANDOM,
    VERSIONS,
    _name,
    cipher_suite_name,
    is_grease,
    version_name,
)

__all__ = [
    "ClientHello",
    "ServerHello",
    "parse_client_hello",
    "parse_server_hello",
]


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
