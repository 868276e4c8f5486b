"""Extensions: the type-length-value blocks at the end of the hellos (introduced in notebook 06).

Almost everything TLS added after 1999 rides in *extensions*: SNI, ALPN, the groups
and signature schemes a client supports, and in TLS 1.3 the real version negotiation
(``supported_versions``) and the key exchange itself (``key_share``). Each extension is
a two-byte type, a two-byte length and that many bytes, so a parser that does not know
a type can still skip it. That is what lets the protocol grow.

:func:`parse_extensions` reads the block and decodes the extensions a learner meets
into plain Python values (a host name, a list of names, :class:`KeyShareEntry`
objects); anything else keeps its raw bytes and a ``value`` of None. The same number
can mean different structures in different messages (a client offers a list of
versions, a server answers with one), so decoding takes a ``context``: the message the
block came from. :class:`_HasExtensions` is the mixin that gives every message with an
extension block its ``extension(name)`` lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .display import _describe, _Display, _hex
from .reader import _as_bytes, _Reader
from .registry import (
    CERT_COMPRESSION,
    EC_POINT_FORMATS,
    EXTENSION_TYPES,
    PSK_MODES,
    _name,
    extension_name,
    group_name,
    signature_scheme_name,
    version_name,
)

__all__ = [
    "Extension",
    "KeyShareEntry",
    "parse_extensions",
]


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
