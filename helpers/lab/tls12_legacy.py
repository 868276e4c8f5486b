"""A TLS 1.2 server from before 2010: no RFC 5746 ``renegotiation_info`` (notebook 09).

Why this server exists
----------------------
The lab's ``legacy-renegotiation`` scenario must be a server that *omits* the
renegotiation_info extension, as servers built before 2010 (and some appliances still
running in 2026) do. OpenSSL cannot play that part: as a server it always answers a
client's renegotiation_info or SCSV, whatever the options. So this module speaks TLS 1.2
by hand, with exactly one cipher suite, and never says "I know RFC 5746". Against it:

* an OpenSSL 3 client refuses the connection right after the ServerHello, with
  ``UNSAFE_LEGACY_RENEGOTIATION_DISABLED`` (OpenSSL 3.0 made that the default);
* a client that sets ``ssl.OP_LEGACY_SERVER_CONNECT`` (the name exists from Python
  3.12; it is ``0x4`` on 3.11) completes the handshake and gets an HTTP page.

The 2009 renegotiation attack (CVE-2009-3555)
---------------------------------------------
TLS let either side *renegotiate*: run a fresh handshake inside the encrypted
connection, for example when a web server decides half-way through a request that it
wants a client certificate. Marsh Ray and Steve Dispensa showed in November 2009 that
nothing tied the new handshake to the old one. A man in the middle opens his own TLS
connection to the bank, sends the start of a request (``GET /transfer?to=mallory
...`` with an unfinished header line ``X-Ignore:``), then passes the victim's
ClientHello through; the server takes it for a renegotiation *of Mallory's
connection*, and the victim's request, cookie and all, is glued to Mallory's prefix.
The victim's client saw a normal first handshake; the server saw one connection.

RFC 5746 (February 2010) fixed the protocol: each handshake carries the Finished
values of the previous one in a ``renegotiation_info`` extension (empty on the first
handshake), so a renegotiation that does not continue the *same* connection fails. A
client that cannot send extensions signals support with the cipher-suite value
``TLS_EMPTY_RENEGOTIATION_INFO_SCSV`` (0x00FF). A server that answers neither may still
be vulnerable, and the client cannot tell whether it renegotiates, hence OpenSSL's
refusal. ``OP_LEGACY_SERVER_CONNECT`` accepts the risk for that one server; use it in a
context made for that host only (notebook 09).

What is on the wire (one suite, no extensions)
----------------------------------------------
``TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`` when the certificate's key is EC (the lab's
leaves are P-256), ``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`` when it is RSA; X25519 or
P-256 for the key exchange (RFC 8422); the TLS 1.2 PRF with HMAC-SHA256 (RFC 5246 §5);
AES-GCM records (RFC 5246 §6.2.3.3, RFC 5288). The ServerHello has *no* extensions at
all: no renegotiation_info, no extended_master_secret (the client's offer is ignored),
no session ticket, no ec_point_formats (RFC 8422 §5.1.2: uncompressed points are the
only format and the extension "MAY still be included"), an empty session id (no
resumption). A handshake message after the handshake (a renegotiation) gets a
``no_renegotiation`` warning.

A real server of 2009 would more likely have used RSA key transport and CBC. The lab
keeps one failure per scenario: RSA key transport is ``rsa-kx-only``; this server
speaks a suite every default client offers, so the *only* thing wrong with it is the
missing renegotiation_info.

What clients make of it
-----------------------
Measured by ``tests/test_tls12_legacy.py`` with Python 3.11.7 + OpenSSL 3.0.22 (curl
7.88.1, gnutls-cli 3.7.9) and Python 3.13.5 + OpenSSL 3.5.9 (curl 8.14.1):

==========================================  ============================================
client                                      verdict
==========================================  ============================================
``ssl.create_default_context()``            ``SSLError``, reason
                                            ``UNSAFE_LEGACY_RENEGOTIATION_DISABLED``
the same with ``OP_LEGACY_SERVER_CONNECT``  TLSv1.2, ``ECDHE-ECDSA-AES128-GCM-SHA256``,
                                            HTTP 200
``openssl s_client``                        "Secure Renegotiation IS NOT supported",
                                            "unsafe legacy renegotiation disabled", exit 1
``openssl s_client -legacy_server_connect`` "Secure Renegotiation IS NOT supported", then
                                            the page
``curl``                                    exit 35, "unsafe legacy renegotiation
                                            disabled"; no command-line flag changes it,
                                            only ``Options = UnsafeLegacyServerConnect``
                                            in a file named by ``OPENSSL_CONF``
``gnutls-cli`` (3.7.9)                      connects: GnuTLS's default priority allows the
                                            first handshake with such a server (it refuses
                                            to *renegotiate* with it); with
                                            ``%SAFE_RENEGOTIATION``: "Safe renegotiation
                                            failed"
==========================================  ============================================

The client had signalled RFC 5746 itself: OpenSSL 3.0 with the SCSV cipher value,
OpenSSL 3.5 with an empty renegotiation_info extension (see :attr:`~LegacyRenegotiationServer.log`).

:class:`LegacyServerConnection` is the protocol, sans-IO (bytes in, bytes out, no
socket, as :class:`helpers.handshake.RecordParser`); :class:`LegacyRenegotiationServer`
puts it on a loopback port with a thread per connection, a connection cap, a per-read
timeout and an absolute deadline per connection, and answers one HTTP request.

How the lab (or a lesson) uses it::

    from helpers.lab.tls12_legacy import LegacyRenegotiationServer

    with LegacyRenegotiationServer("chain.pem", "key.pem", app=app_for(scenario)) as server:
        print(server.port)   # 127.0.0.1:<port>; server.url is https://127.0.0.1:<port>/
        ...                  # a client with OP_LEGACY_SERVER_CONNECT gets a page here

``chain`` is a PEM file (leaf first) or a list of certificates; ``key`` a PEM file or a
private key object; ``app`` (optional) the lab's page for the scenario
(:func:`helpers.lab.pages.app_for`), else a short page of its own.
:attr:`LegacyRenegotiationServer.log` keeps a line per connection (what the client
signalled, how it ended), handy in a lesson and in tests.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import pki
from ..errors import CourseError, ParseError, UsageError
from ..handshake.alerts import parse_alert
from ..handshake.hellos import ClientHello, parse_client_hello
from ..handshake.messages import HandshakeParser
from ..handshake.records import RecordParser
from ..handshake.registry import alert_name, cipher_suite_name, group_name, signature_scheme_name
from ..handshake.tls12 import parse_client_key_exchange
from ..servers import require_loopback_bind
from ..serving import ThreadedServer, set_nodelay
from .server import App, Request, Response, _error_page, _render

__all__ = [
    "LegacyRenegotiationServer",
    "default_app",
    "LegacyServerConnection",
    "TLSFailure",
    "prf",
]

# Record content types and handshake message types (RFC 5246 §6.2.1, §7.4).
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
CLIENT_HELLO, SERVER_HELLO, CERTIFICATE, SERVER_KEY_EXCHANGE = 1, 2, 11, 12
SERVER_HELLO_DONE, CLIENT_KEY_EXCHANGE, FINISHED = 14, 16, 20
TLS12 = 0x0303
# Alert descriptions (RFC 5246 §7.2) this server sends.
CLOSE_NOTIFY, UNEXPECTED_MESSAGE, BAD_RECORD_MAC, RECORD_OVERFLOW = 0, 10, 20, 22
HANDSHAKE_FAILURE, ILLEGAL_PARAMETER, DECODE_ERROR, DECRYPT_ERROR = 40, 47, 50, 51
PROTOCOL_VERSION, INTERNAL_ERROR, NO_RENEGOTIATION = 70, 80, 100

ECDHE_ECDSA_AES128_GCM = 0xC02B  # RFC 5289
ECDHE_RSA_AES128_GCM = 0xC02F  # RFC 5289
RENEGOTIATION_SCSV = 0x00FF  # RFC 5746 §3.3: read, reported in the log, never honoured
RENEGOTIATION_INFO = 0xFF01  # RFC 5746 §3.2: the same
X25519, SECP256R1 = 29, 23  # RFC 8422 §5.1.1 NamedCurve
#: Handshake bytes a client may buffer before its ClientHello is complete.
MAX_HANDSHAKE_BUFFER = 64 * 1024


class TLSFailure(CourseError, ConnectionError):
    """This server ended the handshake with a fatal alert (already queued to send)."""

    def __init__(self, description: int, why: str) -> None:
        super().__init__(f"Sent a fatal {alert_name(description)} alert: {why}.")
        self.description = description


# ---------------------------------------------------------------------------
# The PRF (RFC 5246 §5)
# ---------------------------------------------------------------------------

# RFC 5246 §5 (HMAC and the Pseudorandom Function):
#
#     P_hash(secret, seed) = HMAC_hash(secret, A(1) + seed) +
#                            HMAC_hash(secret, A(2) + seed) +
#                            HMAC_hash(secret, A(3) + seed) + ...
#
#     A() is defined as:
#        A(0) = seed
#        A(i) = HMAC_hash(secret, A(i-1))
#
#     PRF(secret, label, seed) = P_<hash>(secret, label + seed)
#
# "TLS 1.2 ... cipher suites MUST ... use P_SHA256" unless the suite says otherwise.


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def prf(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF with HMAC-SHA256: ``length`` bytes of P_SHA256(secret, label + seed)."""
    seed = label + seed
    out = b""
    a = seed  # A(0)
    while len(out) < length:
        a = _hmac_sha256(secret, a)  # A(i)
        out += _hmac_sha256(secret, a + seed)
    return out[:length]


# ---------------------------------------------------------------------------
# AEAD records (RFC 5246 §6.2.3.3, RFC 5288 §3)
# ---------------------------------------------------------------------------

# RFC 5246 §6.2.3.3 (AEAD Ciphers):
#
#     struct {
#        opaque nonce_explicit[SecurityParameters.record_iv_length];
#        aead-ciphered struct {
#            opaque content[TLSCompressed.length];
#        };
#     } GenericAEADCipher;
#
#     additional_data = seq_num + TLSCompressed.type +
#                       TLSCompressed.version + TLSCompressed.length;
#
# RFC 5288 §3: for AES-GCM the 12-byte nonce is the 4-byte implicit salt (the
# client/server_write_IV of the key block) followed by the 8-byte nonce_explicit, which
# travels in the record; "nonce_explicit MAY be the 64-bit sequence number" (it is here).
# Unlike TLS 1.3, the real content type stays in the clear, in the record header.


@dataclass
class _Direction:
    """One direction's record protection: AES-128-GCM key, 4-byte salt, sequence number."""

    key: bytes
    salt: bytes
    sequence: int = 0

    def _aad(self, content_type: int, length: int) -> bytes:
        return struct.pack("!QBHH", self.sequence, content_type, TLS12, length)

    def seal(self, content_type: int, content: bytes) -> bytes:
        explicit = self.sequence.to_bytes(8, "big")
        sealed = AESGCM(self.key).encrypt(
            self.salt + explicit, content, self._aad(content_type, len(content))
        )
        self.sequence += 1
        return explicit + sealed

    def open(self, content_type: int, fragment: bytes) -> bytes:
        if len(fragment) < 8 + 16:
            raise TLSFailure(BAD_RECORD_MAC, "an encrypted record too short for nonce and tag")
        explicit, sealed = fragment[:8], fragment[8:]
        try:
            content = AESGCM(self.key).decrypt(
                self.salt + explicit, sealed, self._aad(content_type, len(sealed) - 16)
            )
        except InvalidTag:
            raise TLSFailure(BAD_RECORD_MAC, "a record failed its GCM tag check") from None
        self.sequence += 1
        if len(content) > 2**14:
            raise TLSFailure(RECORD_OVERFLOW, "a record longer than 2^14 bytes of plaintext")
        return content


# ---------------------------------------------------------------------------
# Messages this server builds
# ---------------------------------------------------------------------------


def _handshake(msg_type: int, body: bytes) -> bytes:
    """RFC 5246 §7.4: ``struct { HandshakeType msg_type; uint24 length; body }``."""
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def _vector(data: bytes, length_bytes: int) -> bytes:
    """An ``opaque x<..2^(8*length_bytes)-1>``: a big-endian length, then the bytes."""
    return len(data).to_bytes(length_bytes, "big") + data


# RFC 5246 §7.4.1.3 (Server Hello):
#
#     struct {
#         ProtocolVersion server_version;
#         Random random;
#         SessionID session_id;
#         CipherSuite cipher_suite;
#         CompressionMethod compression_method;
#         select (extensions_present) {
#             case false:
#                 struct {};
#             case true:
#                 Extension extensions<0..2^16-1>;
#         };
#     } ServerHello;
#
# Here: version 1.2, 32 random bytes (no RFC 8446 downgrade sentinel: this server does
# not speak TLS 1.3), an empty session_id ("the session will not be cached and therefore
# cannot be resumed"), the one suite, compression null, and *no extensions block*: that
# missing renegotiation_info is the whole point of the server.


def server_hello(server_random: bytes, suite: int) -> bytes:
    body = struct.pack("!H", TLS12) + server_random + _vector(b"", 1)
    body += struct.pack("!HB", suite, 0)
    return _handshake(SERVER_HELLO, body)


# RFC 5246 §7.4.2 (Server Certificate):
#
#     opaque ASN.1Cert<1..2^24-1>;
#
#     struct {
#         ASN.1Cert certificate_list<0..2^24-1>;
#     } Certificate;
#
# "The sender's certificate MUST come first in the list."


def certificate(chain_der: Sequence[bytes]) -> bytes:
    certs = b"".join(_vector(der, 3) for der in chain_der)
    return _handshake(CERTIFICATE, _vector(certs, 3))


# RFC 8422 §5.4 (Server Key Exchange), replacing RFC 5246 §7.4.3 for ECDHE:
#
#     enum { explicit_prime (1), explicit_char2 (2), named_curve (3), reserved(248..255)
#     } ECCurveType;
#
#     struct {
#         ECCurveType    curve_type;
#         select (curve_type) {
#             case named_curve:
#                 NamedCurve namedcurve;
#         };
#     } ECParameters;
#
#     struct { opaque point <1..2^8-1>; } ECPoint;
#
#     struct {
#         ECParameters    curve_params;
#         ECPoint         public;
#     } ServerECDHParams;
#
#     select (KeyExchangeAlgorithm) {
#         case ec_diffie_hellman:
#             ServerECDHParams    params;
#             Signature           signed_params;
#     } ServerKeyExchange;
#
#     signed_params = digitally-signed struct {
#         opaque client_random[32];
#         opaque server_random[32];
#         ServerECDHParams params;
#     }
#
# RFC 5246 §4.7: digitally-signed is { SignatureAndHashAlgorithm algorithm;
# opaque signature<0..2^16-1>; }, the algorithm being one the client listed in its
# signature_algorithms extension (§7.4.1.4.1).


def server_key_exchange(
    group: int,
    public: bytes,
    scheme: int,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    client_random: bytes,
    server_random: bytes,
) -> bytes:
    params = struct.pack("!BH", 3, group) + _vector(public, 1)
    signature = _sign(key, scheme, client_random + server_random + params)
    return _handshake(
        SERVER_KEY_EXCHANGE, params + struct.pack("!H", scheme) + _vector(signature, 2)
    )


# RFC 5246 §7.4.5 (Server Hello Done):
#
#     struct { } ServerHelloDone;


def server_hello_done() -> bytes:
    return _handshake(SERVER_HELLO_DONE, b"")


# RFC 5246 §7.4.9 (Finished):
#
#     struct {
#         opaque verify_data[verify_data_length];
#     } Finished;
#
#     verify_data
#        PRF(master_secret, finished_label, Hash(handshake_messages))
#           [0..verify_data_length-1];
#
# finished_label is "client finished" or "server finished"; verify_data_length is 12;
# handshake_messages are all handshake messages of this handshake, ClientHello up to
# but not including this Finished, without records and without ChangeCipherSpec.


def finished_verify_data(master_secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    return prf(master_secret, label, transcript_hash, 12)


# ---------------------------------------------------------------------------
# Choosing what to speak
# ---------------------------------------------------------------------------

_EC_SCHEMES = {"secp256r1": 0x0403, "secp384r1": 0x0503, "secp521r1": 0x0603}
_EC_HASHES = {0x0403: hashes.SHA256, 0x0503: hashes.SHA384, 0x0603: hashes.SHA512}
_RSA_SCHEMES = (0x0804, 0x0401)  # rsa_pss_rsae_sha256, then rsa_pkcs1_sha256


def _sign(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, scheme: int, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_EC_HASHES[scheme]()))
    if scheme == 0x0804:  # RSASSA-PSS, salt as long as the hash (RFC 8446 §4.2.3)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        return key.sign(data, pss, hashes.SHA256())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _check_version(hello: ClientHello) -> None:
    """TLS 1.2 or nothing. A TLS 1.3 client lists its versions in supported_versions
    (RFC 8446 §4.2.1) and keeps legacy_version at 1.2; an older one says its highest
    version in client_version (RFC 5246 §7.4.1.2, Appendix E.1)."""
    offered = hello.supported_versions
    if offered:
        if "TLSv1.2" not in offered:
            raise TLSFailure(
                PROTOCOL_VERSION, f"the client offers {'/'.join(offered)}, not TLS 1.2"
            )
    elif hello.legacy_version < TLS12:
        raise TLSFailure(
            PROTOCOL_VERSION, f"the client's highest version is 0x{hello.legacy_version:04x}"
        )


def _choose_group(hello: ClientHello) -> int:
    groups = hello.supported_groups
    if not groups:  # RFC 8422 §5.1: "the server is free to choose any one"
        return SECP256R1
    for group in (X25519, SECP256R1):
        if group_name(group) in groups:
            return group
    raise TLSFailure(HANDSHAKE_FAILURE, "the client offers neither x25519 nor secp256r1")


def _choose_scheme(hello: ClientHello, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> int:
    offered = hello.signature_algorithms
    if isinstance(key, ec.EllipticCurvePrivateKey):
        wanted: tuple[int, ...] = (_EC_SCHEMES[key.curve.name],)
    else:
        wanted = _RSA_SCHEMES
    for scheme in wanted:
        if signature_scheme_name(scheme) in offered:
            return scheme
    # Without signature_algorithms the RFC 5246 §7.4.1.4.1 default is SHA-1: not here.
    raise TLSFailure(
        HANDSHAKE_FAILURE,
        f"the client accepts no {'/'.join(signature_scheme_name(s) for s in wanted)} signature",
    )


# ---------------------------------------------------------------------------
# The connection, sans-IO
# ---------------------------------------------------------------------------

# RFC 5246 §7.4.1.2 (Client Hello):
#
#     struct {
#         ProtocolVersion client_version;
#         Random random;
#         SessionID session_id;
#         CipherSuite cipher_suites<2..2^16-2>;
#         CompressionMethod compression_methods<1..2^8-1>;
#         select (extensions_present) {
#             case false:
#                 struct {};
#             case true:
#                 Extension extensions<0..2^16-1>;
#         };
#     } ClientHello;
#
# (decoded by helpers/handshake/hellos.py)
#
# RFC 8422 §5.7 (Client Key Exchange), for ECDHE:
#
#     struct {
#         select (KeyExchangeAlgorithm) {
#             case ec_diffie_hellman: ClientECDiffieHellmanPublic;
#         } exchange_keys;
#     } ClientKeyExchange;
#
#     struct { ECPoint ecdh_Yc; } ClientECDiffieHellmanPublic;   /* opaque point<1..2^8-1> */
#
# (decoded by helpers/handshake/tls12.py)
#
# RFC 5246 §8.1: master_secret = PRF(pre_master_secret, "master secret",
#     ClientHello.random + ServerHello.random)[0..47];
# §6.3: key_block = PRF(master_secret, "key expansion",
#     server_random + client_random), cut into client_write_MAC_key, server_write_MAC_key
#     (none for AEAD), client_write_key, server_write_key, client_write_IV, server_write_IV.


class LegacyServerConnection:
    """One server-side TLS 1.2 connection without RFC 5746, as bytes in and bytes out.

    Feed what the socket received to :meth:`receive`; it returns the application data
    that arrived (decrypted), and queues whatever the server must answer, which
    :meth:`data_to_send` hands over. :meth:`receive` raises :class:`TLSFailure` after
    queuing a fatal alert: send it, then close. ``peer_closed`` turns true on the
    client's close_notify or alert. :meth:`send` and :meth:`close` queue application
    data and our close_notify once :attr:`established`.
    """

    def __init__(
        self,
        chain_der: Sequence[bytes],
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    ) -> None:
        self._chain = list(chain_der)
        self._key = key
        self._suite = (
            ECDHE_ECDSA_AES128_GCM
            if isinstance(key, ec.EllipticCurvePrivateKey)
            else ECDHE_RSA_AES128_GCM
        )
        self._records = RecordParser()
        self._handshake = HandshakeParser()
        self._transcript = hashes.Hash(hashes.SHA256())
        self._out = bytearray()
        self._state = "client_hello"
        self._read: _Direction | None = None
        self._write: _Direction | None = None
        self._client_random = self._server_random = self._master = b""
        self._ecdh: x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey | None = None
        self._group = 0
        self._scheme = 0
        self._client_keys = self._server_keys = _Direction(b"", b"")  # set by ClientKeyExchange
        #: What the client sent that this server ignores (RFC 5746 signals, EMS), for the log.
        self.notes: list[str] = []
        self.peer_closed = False
        self.peer_alert: str | None = None

    @property
    def established(self) -> bool:
        return self._state == "open"

    @property
    def suite(self) -> int:
        return self._suite

    @property
    def suite_name(self) -> str:
        return cipher_suite_name(self._suite)

    @property
    def group(self) -> str | None:
        return group_name(self._group) if self._group else None

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def send(self, data: bytes) -> None:
        """Queue application data (in records of at most 2^14 bytes)."""
        if not self.established:
            raise UsageError("No application data before the handshake is complete.")
        for i in range(0, len(data), 2**14):
            self._record(APPLICATION_DATA, data[i : i + 2**14])

    def close(self) -> None:
        """Queue our close_notify (RFC 5246 §7.2.1)."""
        if self._state != "closed":
            self._record(ALERT, bytes([1, CLOSE_NOTIFY]))
            self._state = "closed"

    def receive(self, data: bytes) -> bytes:
        """Process bytes from the client; return the application data among them."""
        try:
            return self._receive(data)
        except TLSFailure as failure:
            self._fatal(failure.description)
            raise
        except ParseError as exc:
            self._fatal(DECODE_ERROR)
            raise TLSFailure(
                DECODE_ERROR, f"the client's bytes do not parse ({exc.what})"
            ) from None

    # -- internals ----------------------------------------------------------

    def _fatal(self, description: int) -> None:
        if self._state != "closed":
            self._record(ALERT, bytes([2, description]))
            self._state = "closed"

    def _record(self, content_type: int, content: bytes) -> None:
        if self._write is not None:
            content = self._write.seal(content_type, content)
        self._out += struct.pack("!BHH", content_type, TLS12, len(content)) + content

    def _receive(self, data: bytes) -> bytes:
        app = bytearray()
        for record in self._records.feed(data):
            if self._state == "closed" or self.peer_closed:
                break
            payload = record.payload
            if self._read is not None:
                payload = self._read.open(record.content_type, payload)
            if record.content_type == ALERT:
                alert = parse_alert(payload)
                self.peer_closed = True
                self.peer_alert = alert.description_name
            elif record.content_type == CHANGE_CIPHER_SPEC:
                self._change_cipher_spec(payload)
            elif record.content_type == HANDSHAKE:
                for message in self._handshake.feed(payload):
                    self._on_handshake(message.msg_type, message.body, message.raw)
                if self._handshake.buffered > MAX_HANDSHAKE_BUFFER:
                    raise TLSFailure(DECODE_ERROR, "a handshake message over 64 KiB")
            elif record.content_type == APPLICATION_DATA and self._state == "open":
                app += payload
            else:
                raise TLSFailure(
                    UNEXPECTED_MESSAGE, f"a {record.type_name} record before the handshake ended"
                )
        return bytes(app)

    def _change_cipher_spec(self, payload: bytes) -> None:
        # RFC 5246 §7.1: one byte, 1; it must arrive between ClientKeyExchange and
        # Finished, on a message boundary.
        if self._state != "change_cipher_spec" or payload != b"\x01" or self._handshake.buffered:
            raise TLSFailure(UNEXPECTED_MESSAGE, "a ChangeCipherSpec out of place")
        self._read = self._client_keys
        self._state = "finished"

    def _on_handshake(self, msg_type: int, body: bytes, raw: bytes) -> None:
        if self._state == "open":
            # RFC 5246 §7.2.2: no_renegotiation, a warning; the connection goes on.
            self.notes.append("refused a renegotiation")
            self._record(ALERT, bytes([1, NO_RENEGOTIATION]))
            return
        expected = {
            "client_hello": CLIENT_HELLO,
            "client_key_exchange": CLIENT_KEY_EXCHANGE,
            "finished": FINISHED,
        }
        if expected.get(self._state) != msg_type:
            raise TLSFailure(
                UNEXPECTED_MESSAGE, f"handshake message {msg_type} while waiting for {self._state}"
            )
        if msg_type == CLIENT_HELLO:
            self._client_hello(parse_client_hello(body))
        elif msg_type == CLIENT_KEY_EXCHANGE:
            self._client_key_exchange(body)
        else:
            self._finished(body)
            return  # the client's Finished entered the transcript inside _finished
        self._transcript.update(raw)
        if msg_type == CLIENT_HELLO:
            self._send_server_flight()

    def _client_hello(self, hello: ClientHello) -> None:
        if RENEGOTIATION_SCSV in hello.cipher_suites:
            self.notes.append("client sent TLS_EMPTY_RENEGOTIATION_INFO_SCSV (ignored)")
        if hello.extension(RENEGOTIATION_INFO) is not None:
            self.notes.append("client sent renegotiation_info (ignored)")
        if hello.extension(23) is not None:
            self.notes.append("client offered extended_master_secret (ignored)")
        _check_version(hello)
        if self._suite not in hello.cipher_suites:
            raise TLSFailure(HANDSHAKE_FAILURE, f"the client does not offer {self.suite_name}")
        if 0 not in hello.compression_methods:
            raise TLSFailure(ILLEGAL_PARAMETER, "the client does not offer null compression")
        self._group = _choose_group(hello)
        self._scheme = _choose_scheme(hello, self._key)
        self._client_random = hello.random
        self._server_random = secrets.token_bytes(32)

    def _send_server_flight(self) -> None:
        if self._group == X25519:
            self._ecdh = x25519.X25519PrivateKey.generate()
            public = self._ecdh.public_key().public_bytes_raw()
        else:
            self._ecdh = ec.generate_private_key(ec.SECP256R1())
            public = self._ecdh.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        flight = server_hello(self._server_random, self._suite)
        flight += certificate(self._chain)
        flight += server_key_exchange(
            self._group, public, self._scheme, self._key, self._client_random, self._server_random
        )
        flight += server_hello_done()
        self._transcript.update(flight)
        for i in range(0, len(flight), 2**14):
            self._record(HANDSHAKE, flight[i : i + 2**14])
        self._state = "client_key_exchange"

    def _client_key_exchange(self, body: bytes) -> None:
        point = parse_client_key_exchange(body, key_exchange="ECDHE").exchange_keys
        try:
            if isinstance(self._ecdh, x25519.X25519PrivateKey):
                shared = self._ecdh.exchange(x25519.X25519PublicKey.from_public_bytes(point))
            else:
                assert self._ecdh is not None
                peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
                shared = self._ecdh.exchange(ec.ECDH(), peer)
        except ValueError:
            raise TLSFailure(
                ILLEGAL_PARAMETER, "the client's ECDH point is not on the curve"
            ) from None
        randoms = self._client_random + self._server_random
        self._master = prf(shared, b"master secret", randoms, 48)
        block = prf(self._master, b"key expansion", self._server_random + self._client_random, 40)
        self._client_keys = _Direction(block[0:16], block[32:36])
        self._server_keys = _Direction(block[16:32], block[36:40])
        self._state = "change_cipher_spec"

    def _finished(self, body: bytes) -> None:
        expected = finished_verify_data(
            self._master, b"client finished", self._transcript.copy().finalize()
        )
        if not hmac.compare_digest(body, expected):
            raise TLSFailure(DECRYPT_ERROR, "the client's Finished does not match the handshake")
        self._transcript.update(_handshake(FINISHED, body))
        ours = finished_verify_data(
            self._master, b"server finished", self._transcript.copy().finalize()
        )
        self._record(CHANGE_CIPHER_SPEC, b"\x01")
        self._write = self._server_keys
        self._record(HANDSHAKE, _handshake(FINISHED, ours))
        self._state = "open"


# ---------------------------------------------------------------------------
# The server: a loopback port, a thread per connection, one HTTP answer
# ---------------------------------------------------------------------------

_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>legacy-renegotiation</title>'
    '</head><body style="font-family:sans-serif"><h1>legacy-renegotiation</h1>'
    "<p>You reached a TLS 1.2 server that does not send RFC 5746 renegotiation_info. "
    "Your client accepted that risk (in OpenSSL: OP_LEGACY_SERVER_CONNECT).</p></body></html>\n"
)
#: Bytes of request line and headers read at most (as the lab's reactor).
MAX_REQUEST = 16 * 1024
_OPENSSL_NAMES = {
    ECDHE_ECDSA_AES128_GCM: "ECDHE-ECDSA-AES128-GCM-SHA256",
    ECDHE_RSA_AES128_GCM: "ECDHE-RSA-AES128-GCM-SHA256",
}


def default_app(request: Request) -> Response:
    """The page served when no ``app`` is given: GET and HEAD only."""
    if request.method not in ("GET", "HEAD"):
        return Response(405, _error_page(405))
    return Response(200, _PAGE.encode())


class _Negotiated:
    """What the lab's pages ask of ``Request.tls`` (an :class:`ssl.SSLSocket` on the
    reactor's sites), answered for this hand-written connection."""

    def __init__(self, conn: LegacyServerConnection) -> None:
        self._conn = conn

    def version(self) -> str:
        return "TLSv1.2"

    def cipher(self) -> tuple[str, str, int]:
        return (_OPENSSL_NAMES[self._conn.suite], "TLSv1.2", 128)

    def getpeercert(self) -> dict[str, object]:
        return {}  # this server asks for no client certificate


def _parse_request(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    """Request line and headers (RFC 9112 §3, §5); None if they are not HTTP/1.x."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None  # RFC 9112 §5.1: no whitespace before the colon
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class LegacyRenegotiationServer(ThreadedServer):
    """The ``legacy-renegotiation`` server: TLS 1.2 without RFC 5746, on loopback.

    ``chain``: a PEM file (leaf first, then intermediates), PEM bytes, or a list of
    :class:`cryptography.x509.Certificate`. ``key``: the leaf's private key, as a PEM
    file, PEM bytes or an EC/RSA key object. An EC key gives
    ``TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256``, an RSA key
    ``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256``.

    ``app`` answers the one HTTP request of each connection: the lab passes its
    scenario page (``helpers.lab.pages.app_for(scenario)``, the same
    :class:`~helpers.lab.server.Request`/``Response`` as the reactor's sites, with
    ``request.tls.version()``/``cipher()`` answered for this connection); without it,
    :func:`default_app`'s short page.

    ``host`` must be loopback unless ``allow_network=True``; ``port=0`` lets the OS pick.
    At most ``max_connections`` are served at once, ``max_per_address`` from one client
    address (more are closed on arrival: one student cannot take every slot); a
    connection has ``idle_timeout`` seconds per read and ``deadline`` seconds in all
    (handshake, request and answer). :meth:`start`/:meth:`stop` or ``with``;
    :attr:`address`, :attr:`port`, :attr:`url`; :attr:`log` has a line per connection
    (who, how it ended, what the client offered). The accept loop, the caps and
    ``stop()`` are :class:`helpers.serving.ThreadedServer`'s.
    """

    what = "The legacy-renegotiation server"
    thread_name = "tls12-legacy"

    def __init__(
        self,
        chain: str | os.PathLike[str] | bytes | Sequence[x509.Certificate],
        key: str | os.PathLike[str] | bytes | PrivateKey,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_network: bool = False,
        app: App | None = None,
        max_connections: int = 64,
        max_per_address: int = 8,
        idle_timeout: float = 5.0,
        deadline: float = 10.0,
    ) -> None:
        require_loopback_bind(host, allow_network=allow_network, what=self.what)
        super().__init__(
            host,
            port,
            max_connections=max_connections,
            max_per_address=max_per_address,
            idle_timeout=idle_timeout,
            deadline=deadline,
        )
        certs = (
            list(chain)
            if isinstance(chain, Sequence) and not isinstance(chain, (str, bytes))
            else pki.load_certificates(chain)
        )
        private = (
            key
            if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
            else pki.load_private_key(key)
        )
        if not isinstance(private, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise UsageError(
                f"A {type(private).__name__} cannot sign a TLS 1.2 ECDHE_ECDSA/ECDHE_RSA key exchange.",
                "Give the server an EC (P-256/P-384/P-521) or RSA key and its certificate.",
            )
        if (
            isinstance(private, ec.EllipticCurvePrivateKey)
            and private.curve.name not in _EC_SCHEMES
        ):
            raise UsageError(
                f"The curve {private.curve.name} has no TLS 1.2 signature scheme.",
                "Use a P-256 key.",
            )
        if not certs:
            raise UsageError(
                "The certificate chain is empty.",
                "Pass the leaf certificate first, then intermediates.",
            )
        pki.ensure_key_matches(certs[0], private)
        self._chain_der = [c.public_bytes(serialization.Encoding.DER) for c in certs]
        self._key: PrivateKey = private
        self.app: App = app or default_app

    def serve(self, sock: socket.socket, peer: tuple[str, int]) -> str:
        """One connection (:class:`helpers.serving.ThreadedServer` closes it and logs
        the line returned: how it ended, then what the client signalled)."""
        set_nodelay(sock)  # each flight is one write: no need to wait (Nagle)
        conn = LegacyServerConnection(self._chain_der, self._key)
        outcome = "closed"
        try:
            outcome = self._converse(sock, conn, peer)
        except TLSFailure as failure:
            outcome = failure.what
        except TimeoutError:
            outcome = "timed out"
        except OSError as exc:
            outcome = f"socket error ({exc.strerror or type(exc).__name__})"
        except Exception as exc:  # noqa: BLE001 - a lesson's server must not print tracebacks
            outcome = f"internal error ({type(exc).__name__})"
        finally:
            with contextlib.suppress(OSError):
                sock.sendall(conn.data_to_send())
        notes = "; ".join(conn.notes)
        return outcome + (f" [{notes}]" if notes else "")

    def _converse(
        self, sock: socket.socket, conn: LegacyServerConnection, peer: tuple[str, int]
    ) -> str:
        """Handshake, read one request, answer it, close_notify; return what happened."""
        end = time.monotonic() + self.deadline
        request = bytearray()
        while True:
            data = self._recv(sock, end)
            if data is None:
                return "timed out (idle timeout or deadline)"
            if not data:
                return (
                    "client hung up"
                    if not conn.established
                    else "client hung up before its request"
                )
            try:
                request += conn.receive(data)
            finally:
                sock.sendall(conn.data_to_send())
            if conn.peer_closed:
                return f"client sent alert {conn.peer_alert}"
            if b"\r\n\r\n" in request or len(request) > MAX_REQUEST:
                break
        answer, response = self._answer(bytes(request), conn, sock.getsockname()[:2], peer)
        conn.send(answer)
        conn.close()
        sock.sendall(conn.data_to_send())
        if response.on_sent is not None:
            response.on_sent()
        # Half-close, then read until the client hangs up (briefly): closing with its
        # close_notify still unread would make the kernel send a reset instead of a FIN.
        # A reset now (the client closed with our close_notify unread) changes nothing.
        linger = min(end, time.monotonic() + 1.0)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
            while self._recv(sock, linger):
                pass
        return f"served HTTP {response.status} over TLS 1.2, {conn.suite_name}, {conn.group}"

    def _answer(
        self,
        data: bytes,
        conn: LegacyServerConnection,
        local: tuple[str, int],
        peer: tuple[str, int],
    ) -> tuple[bytes, Response]:
        """The HTTP answer to one request head (the connection closes after it)."""
        end = data.find(b"\r\n\r\n", 0, MAX_REQUEST + 4)
        parsed = _parse_request(data[:end]) if end >= 0 else None
        if parsed is None:
            status = 431 if end < 0 else 400
            response = Response(status, _error_page(status))
            return _render(response, False, "GET"), response
        method, target, version, headers = parsed
        # Request.tls is typed as ssl.SSLSocket; _Negotiated answers the same questions.
        request = Request(method, target, version, headers, _Negotiated(conn), local, peer)  # type: ignore[arg-type]
        try:
            response = self.app(request)
        except Exception:  # noqa: BLE001 - a bug in a page must not print a traceback
            response = Response(500, _error_page(500))
        return _render(response, False, method), response

    def _recv(self, sock: socket.socket, end: float) -> bytes | None:
        """One read, bounded by the idle timeout and the connection's deadline (None: time's up)."""
        try:
            sock.settimeout(self.read_timeout(end))
            return sock.recv(16384)
        except TimeoutError:
            return None
