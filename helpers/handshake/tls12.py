"""TLS 1.2 key exchange: ServerKeyExchange, ServerHelloDone, ClientKeyExchange (introduced in notebook 06).

In TLS 1.2 the key exchange happens *after* the hellos, in plaintext messages of its
own, which is why it costs a second round trip. The ServerHello picks a cipher suite
whose name says the key exchange (``TLS_ECDHE_RSA_WITH_...``:
:func:`~helpers.handshake.key_exchange_of`). For (EC)DHE the server then sends its
ephemeral public value in a **ServerKeyExchange**, signed together with both randoms by
its certificate's key, and a **ServerHelloDone** that ends its flight. The client
answers with its own public value in a **ClientKeyExchange** (or, with static RSA key
transport, the premaster secret encrypted to the server's key: no forward secrecy).

TLS 1.3 deleted all three: the key shares moved into the hellos (``key_share``), and
the signature into CertificateVerify. Notebook 08's probe reads the ServerKeyExchange
to learn which group a server uses, which Python's ``ssl`` does not report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ParseError
from .display import _Display, _hex
from .reader import _as_bytes, _Reader
from .registry import group_name, signature_scheme_name

__all__ = [
    "ServerKeyExchange",
    "ServerHelloDone",
    "ClientKeyExchange",
    "parse_server_key_exchange",
    "parse_server_hello_done",
    "parse_client_key_exchange",
]


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

    @property
    def signed_with(self) -> str:
        """The signature scheme, or why there is none on the wire."""
        if not self.signature:
            return "nothing (anonymous suite)"
        return self.signature_algorithm_name or "the hash TLS 1.0/1.1 imply (no algorithm field)"

    def __repr__(self) -> str:
        return (
            f"ServerKeyExchange({self.key_exchange}, {self.group_name}, public {len(self.public)} bytes, "
            f"signed with {self.signed_with})"
        )

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("key exchange", self.key_exchange),
            ("group", self.group_name),
            ("public value", f"{len(self.public)} bytes: {_hex(self.public)}"),
            ("signature algorithm", self.signed_with),
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
