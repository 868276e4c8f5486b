"""Decrypt a TLS 1.3 connection from a key log (introduced in notebook 06).

Theory of operation
-------------------
A TLS 1.3 connection starts in the clear: the ClientHello and the ServerHello carry
two ephemeral (EC)DHE public keys. From then on *every* record is encrypted, even the
server's certificate. To read them, you need the secrets both ends derived, and a
passive observer cannot compute those: that is the whole point of ephemeral
Diffie-Hellman. But an endpoint can *tell* you its secrets. OpenSSL (and so Python's
``SSLContext.keylog_filename``), NSS, BoringSSL, Go and curl's ``SSLKEYLOGFILE`` all
write them in the NSS key log format, one line per secret::

    # comments and blank lines are allowed
    CLIENT_HANDSHAKE_TRAFFIC_SECRET <client_random, 64 hex digits> <secret, hex>
    SERVER_HANDSHAKE_TRAFFIC_SECRET <client_random> <secret>
    CLIENT_TRAFFIC_SECRET_0         <client_random> <secret>
    SERVER_TRAFFIC_SECRET_0         <client_random> <secret>
    EXPORTER_SECRET                 <client_random> <secret>

The ``client_random`` (the 32 random bytes of the ClientHello, sent in the clear)
says which connection a line belongs to, so one file can hold many connections.

**A key log is as dangerous as a private key, and worse in one way.** Whoever holds
it reads every byte of those connections: passwords, cookies, tokens. It is written
silently, in plain text, for as long as the variable or the setting is on. Forward
secrecy protects recorded traffic against a *later* theft of the server key; a key
log throws that protection away for the connections it covers. Never commit one,
never leave ``SSLKEYLOGFILE`` set in a shell profile, delete the file after the
lesson. The course writes key logs into temporary directories only.

The key schedule (RFC 8446 §7.1)
................................
Everything is derived with HKDF (RFC 5869): *Extract* concentrates entropy into a
pseudorandom key, *Expand* stretches a key into as many labelled outputs as needed.
This is the diagram of §7.1, quoted as is::

                 0
                 |
                 v
       PSK ->  HKDF-Extract = Early Secret
                 |
                 +-----> Derive-Secret(., "ext binder" | "res binder", "")
                 |                     = binder_key
                 |
                 +-----> Derive-Secret(., "c e traffic", ClientHello)
                 |                     = client_early_traffic_secret
                 |
                 +-----> Derive-Secret(., "e exp master", ClientHello)
                 |                     = early_exporter_master_secret
                 v
           Derive-Secret(., "derived", "")
                 |
                 v
       (EC)DHE -> HKDF-Extract = Handshake Secret
                 |
                 +-----> Derive-Secret(., "c hs traffic",
                 |                     ClientHello...ServerHello)
                 |                     = client_handshake_traffic_secret
                 |
                 +-----> Derive-Secret(., "s hs traffic",
                 |                     ClientHello...ServerHello)
                 |                     = server_handshake_traffic_secret
                 v
           Derive-Secret(., "derived", "")
                 |
                 v
       0 -> HKDF-Extract = Master Secret
                 |
                 +-----> Derive-Secret(., "c ap traffic",
                 |                     ClientHello...server Finished)
                 |                     = client_application_traffic_secret_0
                 |
                 +-----> Derive-Secret(., "s ap traffic",
                 |                     ClientHello...server Finished)
                 |                     = server_application_traffic_secret_0
                 |
                 +-----> Derive-Secret(., "exp master",
                 |                     ClientHello...server Finished)
                 |                     = exporter_master_secret
                 |
                 +-----> Derive-Secret(., "res master",
                                       ClientHello...client Finished)
                                       = resumption_master_secret

The key log holds the four *traffic secrets* (the ``=`` lines in the middle), so a
decryptor never needs the (EC)DHE secret. From each traffic secret, §7.3 derives a
write key and a write IV::

    [sender]_write_key = HKDF-Expand-Label(Secret, "key", "", key_length)
    [sender]_write_iv  = HKDF-Expand-Label(Secret, "iv", "", iv_length)

Record protection (RFC 8446 §5.2, §5.3)
.......................................
Every protected record looks like application data from the outside: type 23,
version 0x0303. The real content type travels *inside* the encryption, followed by
optional zero padding that hides the true length::

    struct {
        opaque content[TLSPlaintext.length];
        ContentType type;
        uint8 zeros[length_of_padding];
    } TLSInnerPlaintext;

The AEAD (AES-GCM or ChaCha20-Poly1305) authenticates the 5-byte record header as
*additional data*, so nobody can change the header either. Its nonce is never sent:
each side counts its records from 0 (the counter restarts at every key change), pads
the 64-bit sequence number on the left to the IV length and XORs it with the IV.
Records cannot be dropped, replayed or reordered without the tag check failing.

To decrypt, this module replays what the receiver does: split the bytes into
records (:class:`helpers.handshake.RecordParser`), follow the handshake
(:class:`helpers.handshake.HandshakeParser`) to know when each side switches keys,
open each record, and check what the endpoints checked: the CertificateVerify
signature (§4.4.3) and both Finished MACs (§4.4.4).

Not covered: 0-RTT early data (Python's ``ssl`` never sends it) and TLS 1.2.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from .errors import DecryptError, ParseError
from .handshake import (
    CONTENT_TYPES,
    Certificate,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    HandshakeMessage,
    HandshakeParser,
    NewSessionTicket,
    RecordParser,
    ServerHello,
    decode_message,
    parse_alert,
)
from .handshake import Record as WireRecord

if TYPE_CHECKING:
    from .capture import Capture

__all__ = [
    "SUITES",
    "CipherSuite",
    "Decrypted",
    "Explanation",
    "KeySchedule",
    "Message",
    "Record",
    "TrafficKeys",
    "decrypt",
    "decrypt_capture",
    "derive_secret",
    "finished_verify_data",
    "hkdf_expand_label",
    "hkdf_extract",
    "key_schedule",
    "open_record",
    "parse_inner_plaintext",
    "parse_keylog",
    "record_nonce",
    "seal_record",
    "traffic_keys",
    "verify_signature",
]

# ---------------------------------------------------------------------------
# Cipher suites (RFC 8446 §B.4)
# ---------------------------------------------------------------------------

AEAD = AESGCM | ChaCha20Poly1305


@dataclass(frozen=True)
class CipherSuite:
    """One TLS 1.3 cipher suite: an AEAD and the hash used by HKDF and the transcript."""

    code: int
    name: str
    hash_name: str  # a hashlib name, "sha256" or "sha384"
    key_length: int
    aead: Callable[[bytes], AEAD]
    iv_length: int = 12  # §5.3: iv_length = max(8 bytes, N_MIN) = 12 for all three
    tag_length: int = 16

    @property
    def hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA384() if self.hash_name == "sha384" else hashes.SHA256()

    @property
    def hash_length(self) -> int:
        return self.hash.digest_size

    def digest(self, data: bytes) -> bytes:
        """Transcript-Hash: the suite's hash over ``data``."""
        return hashlib.new(self.hash_name, data).digest()


SUITES: dict[int, CipherSuite] = {
    0x1301: CipherSuite(0x1301, "TLS_AES_128_GCM_SHA256", "sha256", 16, AESGCM),
    0x1302: CipherSuite(0x1302, "TLS_AES_256_GCM_SHA384", "sha384", 32, AESGCM),
    0x1303: CipherSuite(0x1303, "TLS_CHACHA20_POLY1305_SHA256", "sha256", 32, ChaCha20Poly1305),
}


def suite_named(name_or_code: str | int) -> CipherSuite:
    """Look a suite up by IANA name (``"TLS_AES_128_GCM_SHA256"``) or code (``0x1301``)."""
    for suite in SUITES.values():
        if name_or_code in (suite.name, suite.code):
            return suite
    raise DecryptError(
        f"{name_or_code!r} is not a TLS 1.3 cipher suite this module knows.",
        "Use one of " + ", ".join(s.name for s in SUITES.values()) + ".",
    )


# ---------------------------------------------------------------------------
# The NSS key log
# ---------------------------------------------------------------------------

KEYLOG_LABELS = {
    "CLIENT_EARLY_TRAFFIC_SECRET": "client_early_traffic_secret",
    "EARLY_EXPORTER_SECRET": "early_exporter_master_secret",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET": "client_handshake_traffic_secret",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET": "server_handshake_traffic_secret",
    "CLIENT_TRAFFIC_SECRET_0": "client_application_traffic_secret_0",
    "SERVER_TRAFFIC_SECRET_0": "server_application_traffic_secret_0",
    "EXPORTER_SECRET": "exporter_master_secret",
    "CLIENT_RANDOM": "TLS 1.2 master secret",
}

_KEYLOG_LINE = re.compile(r"^([A-Z0-9_]+)\s+([0-9a-fA-F]{64})\s+([0-9a-fA-F]+)$")


def parse_keylog(text: str | bytes) -> dict[bytes, dict[str, bytes]]:
    """Parse an NSS key log into ``{client_random: {label: secret}}``.

    Comment lines (``#``) and blank lines are skipped; any other line that is not
    ``LABEL <64 hex digits> <hex>`` raises :class:`~helpers.errors.ParseError`
    naming its line number.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    entries: dict[bytes, dict[str, bytes]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEYLOG_LINE.match(line)
        if match is None or len(match.group(3)) % 2:
            raise ParseError(
                f"Line {number} of the key log is not 'LABEL client_random secret': {line[:60]!r}",
                "A key log line is a label, 64 hex digits and a hex secret, separated by spaces.",
            )
        label, random_hex, secret_hex = match.groups()
        entries.setdefault(bytes.fromhex(random_hex), {})[label] = bytes.fromhex(secret_hex)
    return entries


# ---------------------------------------------------------------------------
# HKDF and the key schedule (RFC 5869, RFC 8446 §7.1)
# ---------------------------------------------------------------------------


def hkdf_extract(suite: CipherSuite, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, IKM) = HMAC-Hash(salt, IKM) (RFC 5869 §2.2).

    An absent salt or IKM is a string of Hash.length zero bytes (RFC 8446 §7.1).
    """
    salt = salt or bytes(suite.hash_length)
    ikm = ikm or bytes(suite.hash_length)
    mac = HMAC(salt, suite.hash)
    mac.update(ikm)
    return mac.finalize()


# RFC 8446 §7.1 (Key Schedule):
#
#     HKDF-Expand-Label(Secret, Label, Context, Length) =
#          HKDF-Expand(Secret, HkdfLabel, Length)
#
#     Where HkdfLabel is specified as:
#
#     struct {
#         uint16 length = Length;
#         opaque label<7..255> = "tls13 " + Label;
#         opaque context<0..255> = Context;
#     } HkdfLabel;


def hkdf_label(label: bytes | str, context: bytes, length: int) -> bytes:
    """Serialize an HkdfLabel: 2-byte length, then two vectors with 1-byte lengths."""
    if isinstance(label, str):
        label = label.encode("ascii")
    full_label = b"tls13 " + label
    return (
        length.to_bytes(2, "big")
        + bytes([len(full_label)])
        + full_label
        + bytes([len(context)])
        + context
    )


def hkdf_expand_label(
    suite: CipherSuite, secret: bytes, label: bytes | str, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) = HKDF-Expand(Secret, HkdfLabel, Length)."""
    info = hkdf_label(label, context, length)
    return HKDFExpand(algorithm=suite.hash, length=length, info=info).derive(secret)


def derive_secret(suite: CipherSuite, secret: bytes, label: bytes | str, messages: bytes) -> bytes:
    """Derive-Secret(Secret, Label, Messages) =
    HKDF-Expand-Label(Secret, Label, Transcript-Hash(Messages), Hash.length)."""
    return hkdf_expand_label(suite, secret, label, suite.digest(messages), suite.hash_length)


@dataclass(frozen=True)
class KeySchedule:
    """Every secret of the §7.1 diagram for one (EC)DHE handshake without a PSK."""

    early_secret: bytes
    handshake_secret: bytes
    client_handshake_traffic_secret: bytes
    server_handshake_traffic_secret: bytes
    master_secret: bytes
    client_application_traffic_secret_0: bytes | None = None
    server_application_traffic_secret_0: bytes | None = None
    exporter_master_secret: bytes | None = None
    resumption_master_secret: bytes | None = None


def key_schedule(
    suite: CipherSuite,
    shared_secret: bytes,
    hello_messages: bytes,
    through_server_finished: bytes | None = None,
    through_client_finished: bytes | None = None,
) -> KeySchedule:
    """Walk the §7.1 diagram top to bottom, as the two endpoints do.

    ``hello_messages`` is ClientHello + ServerHello (handshake headers included);
    the later transcripts extend it. Without a PSK, the early secret extracts zeros.
    """
    early = hkdf_extract(suite, b"", b"")
    handshake = hkdf_extract(suite, derive_secret(suite, early, "derived", b""), shared_secret)
    master = hkdf_extract(suite, derive_secret(suite, handshake, "derived", b""), b"")
    app: dict[str, bytes] = {}
    if through_server_finished is not None:
        app["client_application_traffic_secret_0"] = derive_secret(
            suite, master, "c ap traffic", through_server_finished
        )
        app["server_application_traffic_secret_0"] = derive_secret(
            suite, master, "s ap traffic", through_server_finished
        )
        app["exporter_master_secret"] = derive_secret(
            suite, master, "exp master", through_server_finished
        )
    if through_client_finished is not None:
        app["resumption_master_secret"] = derive_secret(
            suite, master, "res master", through_client_finished
        )
    return KeySchedule(
        early_secret=early,
        handshake_secret=handshake,
        client_handshake_traffic_secret=derive_secret(
            suite, handshake, "c hs traffic", hello_messages
        ),
        server_handshake_traffic_secret=derive_secret(
            suite, handshake, "s hs traffic", hello_messages
        ),
        master_secret=master,
        **app,
    )


@dataclass(frozen=True)
class TrafficKeys:
    """The write key and IV derived from one traffic secret (RFC 8446 §7.3)."""

    secret: bytes
    key: bytes
    iv: bytes


def traffic_keys(suite: CipherSuite, secret: bytes) -> TrafficKeys:
    """[sender]_write_key / _write_iv = HKDF-Expand-Label(Secret, "key" / "iv", "", length)."""
    return TrafficKeys(
        secret=secret,
        key=hkdf_expand_label(suite, secret, "key", b"", suite.key_length),
        iv=hkdf_expand_label(suite, secret, "iv", b"", suite.iv_length),
    )


def next_traffic_secret(suite: CipherSuite, secret: bytes) -> bytes:
    """After a KeyUpdate (§7.2): application_traffic_secret_N+1 =
    HKDF-Expand-Label(application_traffic_secret_N, "traffic upd", "", Hash.length)."""
    return hkdf_expand_label(suite, secret, "traffic upd", b"", suite.hash_length)


def finished_verify_data(suite: CipherSuite, base_key: bytes, transcript_hash: bytes) -> bytes:
    """The Finished MAC (RFC 8446 §4.4.4)::

        finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length)
        verify_data  = HMAC(finished_key, Transcript-Hash(Handshake Context,
                                                          Certificate*, CertificateVerify*))

    BaseKey is the sender's *handshake* traffic secret.
    """
    finished_key = hkdf_expand_label(suite, base_key, "finished", b"", suite.hash_length)
    return hmac.new(finished_key, transcript_hash, suite.hash_name).digest()


# ---------------------------------------------------------------------------
# Record protection (RFC 8446 §5.2, §5.3)
# ---------------------------------------------------------------------------


def record_nonce(iv: bytes, sequence: int) -> bytes:
    """The per-record nonce (§5.3): the 64-bit sequence number, left-padded with zeros
    to the IV length, XORed with the static write IV."""
    padded = sequence.to_bytes(len(iv), "big")
    return bytes(a ^ b for a, b in zip(padded, iv, strict=True))


def parse_inner_plaintext(plaintext: bytes) -> tuple[int, bytes]:
    """Split a TLSInnerPlaintext (§5.2) into (content type, content).

    ::

        struct {
            opaque content[TLSPlaintext.length];
            ContentType type;
            uint8 zeros[length_of_padding];
        } TLSInnerPlaintext;

    The type is the last non-zero byte; everything after it is padding.
    """
    end = len(plaintext)
    while end and plaintext[end - 1] == 0:
        end -= 1
    if end == 0:
        raise DecryptError(
            "The decrypted record is all zeros: it has no content type.",
            "RFC 8446 §5.4 calls this an unexpected_message; the sender is broken.",
        )
    return plaintext[end - 1], plaintext[: end - 1]


def open_record(
    suite: CipherSuite, keys: TrafficKeys, sequence: int, header: bytes, encrypted: bytes
) -> tuple[int, bytes]:
    """AEAD-Decrypt one protected record (§5.2) and return (inner type, content).

    ``header`` is the 5-byte record header, used as the additional data; ``encrypted``
    is everything after it (ciphertext and tag).
    """
    nonce = record_nonce(keys.iv, sequence)
    try:
        plaintext = suite.aead(keys.key).decrypt(nonce, encrypted, header)
    except InvalidTag:
        raise DecryptError(
            f"A record failed its {suite.name} authentication check (sequence number {sequence}):"
            " the key is wrong or the bytes were changed.",
            "Use the key log written during this very connection; one flipped bit is enough"
            " for the AEAD to refuse the whole record.",
        ) from None
    return parse_inner_plaintext(plaintext)


def seal_record(
    suite: CipherSuite,
    keys: TrafficKeys,
    sequence: int,
    content_type: int,
    content: bytes,
    padding_length: int = 0,
) -> bytes:
    """The sender's side of :func:`open_record`: a complete protected record."""
    inner = content + bytes([content_type]) + bytes(padding_length)
    length = len(inner) + suite.tag_length
    header = bytes([23, 3, 3]) + length.to_bytes(2, "big")
    nonce = record_nonce(keys.iv, sequence)
    return header + suite.aead(keys.key).encrypt(nonce, inner, header)


# ---------------------------------------------------------------------------
# Reading the handshake messages that are encrypted (RFC 8446 §4.3, §4.4, §4.6)
# ---------------------------------------------------------------------------


def certificate_verify_content(transcript_hash: bytes, *, server: bool = True) -> bytes:
    """What a CertificateVerify signs (§4.4.3)::

        The digital signature is then computed over the concatenation of:
        -  A string that consists of octet 32 (0x20) repeated 64 times
        -  The context string ("TLS 1.3, server CertificateVerify")
        -  A single 0 byte which serves as the separator
        -  The content to be signed [Transcript-Hash(Handshake Context, Certificate)]

    The 64 spaces make the signed bytes useless as a TLS 1.2 signature (whose input
    starts with the client random), so a signature cannot be replayed across versions.
    """
    who = b"server" if server else b"client"
    return b"\x20" * 64 + b"TLS 1.3, " + who + b" CertificateVerify" + b"\x00" + transcript_hash


_SCHEME_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    0x0403: hashes.SHA256,  # ecdsa_secp256r1_sha256
    0x0503: hashes.SHA384,  # ecdsa_secp384r1_sha384
    0x0603: hashes.SHA512,  # ecdsa_secp521r1_sha512
    0x0804: hashes.SHA256,  # rsa_pss_rsae_sha256
    0x0805: hashes.SHA384,  # rsa_pss_rsae_sha384
    0x0806: hashes.SHA512,  # rsa_pss_rsae_sha512
    0x0809: hashes.SHA256,  # rsa_pss_pss_sha256
    0x080A: hashes.SHA384,  # rsa_pss_pss_sha384
    0x080B: hashes.SHA512,  # rsa_pss_pss_sha512
}


def verify_signature(
    certificate: x509.Certificate, scheme: int, signature: bytes, content: bytes
) -> bool:
    """Check ``signature`` over ``content`` with the certificate's public key.

    ECDSA, RSA-PSS with a salt as long as the hash (§4.2.3; PKCS #1 v1.5 signatures
    are not allowed in a TLS 1.3 CertificateVerify), Ed25519 and Ed448. Returns False
    for a bad signature or a key that does not fit the scheme.
    """
    key = certificate.public_key()
    try:
        if scheme in (0x0403, 0x0503, 0x0603) and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, content, ec.ECDSA(_SCHEME_HASHES[scheme]()))
        elif scheme in _SCHEME_HASHES and isinstance(key, rsa.RSAPublicKey):
            digest = _SCHEME_HASHES[scheme]()
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            key.verify(signature, content, pss, digest)
        elif scheme == 0x0807 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, content)
        elif scheme == 0x0808 and isinstance(key, ed448.Ed448PublicKey):
            key.verify(signature, content)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


# RFC 8446 §4.6.3 (Key and Initialization Vector Update):
#
#     enum {
#         update_not_requested(0), update_requested(1), (255)
#     } KeyUpdateRequest;
#
#     struct {
#         KeyUpdateRequest request_update;
#     } KeyUpdate;


def decode_key_update(body: bytes) -> dict[str, bool]:
    """The one message :mod:`helpers.handshake` does not decode: KeyUpdate."""
    if len(body) != 1 or body[0] > 1:
        raise ParseError(
            f"Expected a one-byte KeyUpdate (0 or 1) but found {body.hex() or 'nothing'}",
            "The peer sent a malformed KeyUpdate.",
        )
    return {"update_requested": body[0] == 1}


# ---------------------------------------------------------------------------
# What decrypt() returns
# ---------------------------------------------------------------------------

Direction = str  # "c2s" (client to server) or "s2c"


@dataclass
class Message:
    """One handshake message with its decoded body and the check an endpoint makes.

    ``decoded`` is the :mod:`helpers.handshake` dataclass (EncryptedExtensions,
    Certificate, CertificateVerify, Finished, NewSessionTicket, ...). ``ok`` says
    whether a CertificateVerify signature or a Finished MAC verified; ``expected``
    holds the verify_data this module computed for a Finished.
    """

    direction: Direction
    message: HandshakeMessage
    encrypted: bool
    decoded: Any = None
    ok: bool | None = None
    expected: bytes | None = None

    @property
    def name(self) -> str:
        return self.message.type_name

    @property
    def msg_type(self) -> int:
        return self.message.msg_type

    @property
    def raw(self) -> bytes:
        """Header + body: the bytes hashed into the transcript."""
        return self.message.raw

    @property
    def body(self) -> bytes:
        return self.message.body

    def summary(self) -> str:
        d, name = self.decoded, self.name
        if isinstance(d, EncryptedExtensions):
            notes = [f"ALPN {d.alpn}"] if d.alpn else []
            notes += ["server_name acknowledged"] if d.extension(0) is not None else []
            return f"{name} ({', '.join(notes) or ', '.join(d.extension_names) or 'empty'})"
        if isinstance(d, Certificate):
            count = f"{len(d.certificates)} {'entry' if len(d.certificates) == 1 else 'entries'}"
            return f"{name} ({count}: {', '.join(d._subjects())})"
        if isinstance(d, CertificateVerify):
            return f"{name} ({d.algorithm_name}, signature {_verdict(self.ok)})"
        if isinstance(d, Finished):
            return f"{name} (verify_data {_verdict(self.ok)})"
        if isinstance(d, NewSessionTicket):
            nonce = d.nonce.hex() if d.nonce else "empty"
            return f"{name} (lifetime {d.lifetime} s, age_add {d.age_add}, nonce {nonce})"
        if isinstance(d, ServerHello):
            return f"{name} ({d.version}, {d.cipher_suite_name})"
        if isinstance(d, ClientHello):
            return f"{name} (SNI {d.server_name!r}, random {d.random.hex()[:16]}…)"
        if isinstance(d, dict):
            return f"{name} ({', '.join(f'{k}={v}' for k, v in d.items())})"
        return name


def _verdict(ok: bool | None) -> str:
    return {True: "ok", False: "WRONG", None: "not checked"}[ok]


@dataclass
class Record:
    """One TLS record of the connection, decrypted if it was protected."""

    direction: Direction
    index: int  # position among this direction's records
    offset: int  # first byte of the header in this direction's byte stream
    wire: bytes  # header + payload, exactly as it travelled
    outer_type: int
    encrypted: bool
    inner_type: int
    content: bytes  # the plaintext content (handshake bytes, application data, alert)
    messages: list[Message] = field(default_factory=list)
    key_label: str | None = None  # which traffic secret protected it
    keys: TrafficKeys | None = None
    sequence: int | None = None
    t: float | None = None  # seconds since capture start, when known

    @property
    def type_name(self) -> str:
        return CONTENT_TYPES.get(self.inner_type, f"type {self.inner_type}")

    @property
    def header(self) -> bytes:
        """The 5-byte record header: the AEAD's additional data."""
        return self.wire[:5]

    @property
    def nonce(self) -> bytes | None:
        if self.keys is None or self.sequence is None:
            return None
        return record_nonce(self.keys.iv, self.sequence)

    def summary(self) -> str:
        if self.messages:
            return "; ".join(m.summary() for m in self.messages)
        if self.keys is None and self.encrypted:
            return "0-RTT early data (not decrypted by this module)"
        if self.inner_type == 21 and len(self.content) == 2:
            alert = parse_alert(self.content)
            return f"alert {alert.description_name} ({alert.level_name})"
        if self.inner_type == 23:
            return f"application data, {len(self.content)} bytes: {_preview(self.content)}"
        if self.inner_type == 20:
            return "change_cipher_spec (middlebox compatibility, ignored)"
        if self.inner_type == 22:
            return "handshake fragment"
        return self.type_name


def _preview(data: bytes, limit: int = 48) -> str:
    text = repr(data[:limit])
    return text + ("…" if len(data) > limit else "")


@dataclass
class AppData:
    """The application bytes each side sent, decrypted and joined."""

    client: bytes
    server: bytes


@dataclass
class Explanation:
    """Step-by-step values of the key schedule and the record decryption, for notebook 06."""

    title: str
    rows: list[tuple[str, str, str]]  # (step, value, how it was obtained)

    def __repr__(self) -> str:
        width = max(len(step) for step, _, _ in self.rows)
        lines = [self.title]
        for step, value, how in self.rows:
            lines.append(f"{step:<{width}}  {value}")
            if how:
                lines.append(f"{'':<{width}}    ↳ {how}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td style='text-align:left'>{html.escape(step)}</td>"
            f"<td style='text-align:left;font-family:monospace;word-break:break-all'>"
            f"{html.escape(value)}</td>"
            f"<td style='text-align:left'>{html.escape(how)}</td></tr>"
            for step, value, how in self.rows
        )
        return (
            f"<table><caption>{html.escape(self.title)}</caption>"
            "<tr><th>step</th><th>value</th><th>how</th></tr>"
            f"{cells}</table>"
        )


@dataclass
class Decrypted:
    """A decrypted TLS 1.3 connection: records, messages and the checks that were made."""

    suite: CipherSuite
    client_random: bytes
    records: list[Record]  # both directions, in time order when known
    server_certificates: list[x509.Certificate]
    keylog_secrets: dict[str, bytes]

    @property
    def client_records(self) -> list[Record]:
        return [r for r in self.records if r.direction == "c2s"]

    @property
    def server_records(self) -> list[Record]:
        return [r for r in self.records if r.direction == "s2c"]

    @property
    def messages(self) -> list[Message]:
        return [m for r in self.records for m in r.messages]

    def find(self, name: str, direction: Direction | None = None) -> Message | None:
        """The first handshake message called ``name`` (from ``direction``), or None."""
        for message in self.messages:
            if message.name == name and direction in (None, message.direction):
                return message
        return None

    @property
    def certificate(self) -> x509.Certificate | None:
        """The server's certificate: the first entry of its Certificate message."""
        return self.server_certificates[0] if self.server_certificates else None

    @property
    def alpn(self) -> str | None:
        ee = self.find("EncryptedExtensions")
        return ee.decoded.alpn if ee else None

    @property
    def certificate_verify_ok(self) -> bool | None:
        message = self.find("CertificateVerify", "s2c")
        return message.ok if message else None

    @property
    def server_finished_ok(self) -> bool | None:
        message = self.find("Finished", "s2c")
        return message.ok if message else None

    @property
    def client_finished_ok(self) -> bool | None:
        message = self.find("Finished", "c2s")
        return message.ok if message else None

    @property
    def application_data(self) -> AppData:
        def joined(direction: Direction) -> bytes:
            return b"".join(
                r.content for r in self.records if r.direction == direction and r.inner_type == 23
            )

        return AppData(client=joined("c2s"), server=joined("s2c"))

    def explain(self, direction: Direction = "s2c", index: int = 0) -> Explanation:
        """The values that decrypt the ``index``-th protected record sent in ``direction``.

        With the defaults: the server's first encrypted record, the one that carries
        EncryptedExtensions (and usually the certificate).
        """
        protected = [r for r in self.records if r.direction == direction and r.keys is not None]
        if not protected:
            raise DecryptError(
                f"There is no encrypted record in direction {direction!r}.",
                "Use 's2c' for the server's records or 'c2s' for the client's.",
            )
        record = protected[min(index, len(protected) - 1)]
        assert record.keys is not None and record.sequence is not None
        suite, keys = self.suite, record.keys
        label = record.key_label or "?"
        padded_seq = record.sequence.to_bytes(suite.iv_length, "big")
        rows = [
            ("client_random", self.client_random.hex(), "ClientHello.random, sent in the clear"),
            ("cipher suite", f"{suite.name} (0x{suite.code:04x})", "ServerHello.cipher_suite"),
            (label, keys.secret.hex(), "looked up in the key log by client_random"),
            (
                "HkdfLabel for the key",
                hkdf_label("key", b"", suite.key_length).hex(),
                'uint16 length, "tls13 key", empty context (§7.1)',
            ),
            (
                "write key",
                keys.key.hex(),
                f'HKDF-Expand-Label(secret, "key", "", {suite.key_length})',
            ),
            (
                "write iv",
                keys.iv.hex(),
                f'HKDF-Expand-Label(secret, "iv", "", {suite.iv_length})',
            ),
            ("sequence number", padded_seq.hex(), f"record {record.sequence} under this key"),
            (
                "nonce",
                record_nonce(keys.iv, record.sequence).hex(),
                "iv XOR padded sequence (§5.3)",
            ),
            ("additional data", record.header.hex(), "the 5-byte record header (§5.2)"),
            (
                "encrypted_record",
                _preview(record.wire[5 : -suite.tag_length], 24),
                f"{len(record.wire) - 5 - suite.tag_length} bytes of ciphertext",
            ),
            (
                "authentication tag",
                record.wire[-suite.tag_length :].hex(),
                "last 16 bytes; a wrong key or one changed bit fails this check",
            ),
            (
                "inner content type",
                f"{record.inner_type} ({record.type_name})",
                "last non-zero byte of TLSInnerPlaintext",
            ),
            ("content", _preview(record.content, 32), f"{len(record.content)} bytes"),
        ]
        return Explanation(f"Decrypting record {record.index} ({direction})", rows)

    def __repr__(self) -> str:
        checks = (
            f"CertificateVerify {_verdict(self.certificate_verify_ok)}, "
            f"server Finished {_verdict(self.server_finished_ok)}, "
            f"client Finished {_verdict(self.client_finished_ok)}"
        )
        lines = [f"<Decrypted {self.suite.name}, {len(self.records)} records; {checks}>"]
        for r in self.records:
            arrow = "→" if r.direction == "c2s" else "←"
            lock = "🔒" if r.encrypted else "  "
            lines.append(f"  {arrow} {lock} {r.type_name:<18} {r.summary()}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = []
        for r in self.records:
            arrow = "client → server" if r.direction == "c2s" else "server → client"
            rows.append(
                "<tr>"
                f"<td>{r.index}</td><td>{arrow}</td>"
                f"<td>{'🔒 ' + html.escape(r.key_label or '') if r.encrypted else 'clear'}</td>"
                f"<td>{html.escape(r.type_name)}</td>"
                f"<td style='text-align:left'>{html.escape(r.summary())}</td>"
                "</tr>"
            )
        return (
            f"<table><caption>TLS 1.3, {html.escape(self.suite.name)}</caption>"
            "<tr><th>#</th><th>direction</th><th>protection</th><th>content type</th>"
            "<th>content</th></tr>" + "".join(rows) + "</table>"
        )


# ---------------------------------------------------------------------------
# Following one connection
# ---------------------------------------------------------------------------

_LABELS = {
    ("c2s", "handshake"): "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    ("s2c", "handshake"): "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    ("c2s", "application"): "CLIENT_TRAFFIC_SECRET_0",
    ("s2c", "application"): "SERVER_TRAFFIC_SECRET_0",
}


@dataclass
class _Side:
    """The receive state for one direction: its records, its keys, its counter."""

    direction: Direction
    wire: list[WireRecord]  # the records as they travelled (helpers.handshake.Record)
    parser: HandshakeParser = field(default_factory=HandshakeParser)
    position: int = 0
    keys: TrafficKeys | None = None
    key_label: str | None = None
    sequence: int = 0
    done: list[Record] = field(default_factory=list)

    def switch(self, label: str, keys: TrafficKeys) -> None:
        self.key_label, self.keys, self.sequence = label, keys, 0


_EARLY_DATA = "CLIENT_EARLY_TRAFFIC_SECRET (0-RTT, not decrypted)"

# ClientHello enters the transcript in read_client_hellos (and HRR replaces it);
# NewSessionTicket and KeyUpdate come after the handshake (§4.6) and never enter it.
_NOT_IN_TRANSCRIPT = {1, 4, 24}


class _Connection:
    """Replays a connection, one direction after the other (see :func:`decrypt`)."""

    def __init__(self, client_bytes: bytes, server_bytes: bytes, keylog: str | bytes) -> None:
        # Bytes after the last complete record (a cut capture) are left out.
        self.client = _Side("c2s", RecordParser().feed(client_bytes))
        self.server = _Side("s2c", RecordParser().feed(server_bytes))
        self.keylog = parse_keylog(keylog)
        self.transcript: list[bytes] = []
        self.client_hellos: list[bytes] = []
        self.suite: CipherSuite | None = None
        self.secrets: dict[str, bytes] = {}
        self.client_random = b""
        self.certificates: list[x509.Certificate] = []
        self.client_certificates: list[x509.Certificate] = []
        self.early_data_offered = False

    # -- the clear part ---------------------------------------------------

    def read_client_hellos(self) -> None:
        """The client's first records are in the clear: ClientHello (twice after HRR)."""
        side = self.client
        while side.position < len(side.wire):
            raw = side.wire[side.position]
            if raw.content_type == 23:
                break
            self.plain_record(side, raw)
            side.position += 1
        hellos = [m.decoded for r in side.done for m in r.messages if m.msg_type == 1]
        if not hellos:
            raise DecryptError(
                "The client's bytes do not start with a ClientHello.",
                "Pass the bytes the client sent (Capture.client_bytes) from the first byte on.",
            )
        self.client_hellos = [m.raw for r in side.done for m in r.messages if m.msg_type == 1]
        self.early_data_offered = hellos[0].extension(42) is not None
        client_random = hellos[0].random
        if client_random not in self.keylog:
            raise DecryptError(
                f"The key log has no secrets for this connection (client random {client_random.hex()[:16]}…).",
                "Pass the key log written during this connection (SSLContext.keylog_filename).",
            )
        self.client_random = client_random
        self.secrets = self.keylog[client_random]
        self.transcript = [self.client_hellos[0]]

    def plain_record(self, side: _Side, raw: WireRecord) -> Record:
        record = Record(
            direction=side.direction,
            index=len(side.done),
            offset=raw.offset,
            wire=raw.raw,
            outer_type=raw.content_type,
            encrypted=False,
            inner_type=raw.content_type,
            content=raw.payload,
        )
        if raw.content_type == 22:
            for msg in side.parser.feed(raw.payload):
                record.messages.append(self.on_message(side, msg, encrypted=False))
        side.done.append(record)
        return record

    # -- the protected part -----------------------------------------------

    def secret(self, label: str) -> bytes:
        try:
            return self.secrets[label]
        except KeyError:
            raise DecryptError(
                f"The key log has no {label} for this connection.",
                "Key logs written by OpenSSL, NSS or Python hold it for TLS 1.3; was this TLS 1.2?",
            ) from None

    def protected_record(self, side: _Side, raw: WireRecord) -> Record:
        assert self.suite is not None
        if side.keys is None:
            phase = "handshake"
            label = _LABELS[(side.direction, phase)]
            side.switch(label, traffic_keys(self.suite, self.secret(label)))
        assert side.keys is not None
        header = raw.raw[:5]
        who = "client" if side.direction == "c2s" else "server"
        try:
            inner_type, content = open_record(
                self.suite, side.keys, side.sequence, header, raw.payload
            )
        except DecryptError as error:
            if self.is_early_data(side):
                return self.skip_early_data(side, raw)
            raise DecryptError(
                f"Record {len(side.done)} from the {who} (offset {raw.offset}, sequence number"
                f" {side.sequence}, {side.key_label}) failed authentication: the key log does"
                " not match or the bytes were changed.",
                error.hint,
            ) from None
        record = Record(
            direction=side.direction,
            index=len(side.done),
            offset=raw.offset,
            wire=raw.raw,
            outer_type=raw.content_type,
            encrypted=True,
            inner_type=inner_type,
            content=content,
            key_label=side.key_label,
            keys=side.keys,
            sequence=side.sequence,
        )
        side.sequence += 1
        side.done.append(record)
        if inner_type == 22:
            for msg in side.parser.feed(content):
                record.messages.append(self.on_message(side, msg, encrypted=True))
        return record

    def is_early_data(self, side: _Side) -> bool:
        """0-RTT records come before the client's first handshake-key record (§2.3)."""
        return (
            side.direction == "c2s"
            and self.early_data_offered
            and side.sequence == 0
            and (side.key_label or "").startswith("CLIENT_HANDSHAKE")
        )

    def skip_early_data(self, side: _Side, raw: WireRecord) -> Record:
        record = Record(
            direction=side.direction,
            index=len(side.done),
            offset=raw.offset,
            wire=raw.raw,
            outer_type=23,
            encrypted=True,
            inner_type=23,
            content=b"",
            key_label=_EARLY_DATA,
        )
        side.done.append(record)
        return record

    def run(self, side: _Side) -> None:
        while side.position < len(side.wire):
            raw = side.wire[side.position]
            side.position += 1
            if raw.content_type == 23 and self.suite is not None:
                self.protected_record(side, raw)
            else:
                self.plain_record(side, raw)

    # -- what each handshake message changes -----------------------------

    def on_message(self, side: _Side, msg: HandshakeMessage, *, encrypted: bool) -> Message:
        message = Message(side.direction, msg, encrypted)
        kind = msg.msg_type
        message.decoded = (
            decode_key_update(msg.body) if kind == 24 else decode_message(msg, tls13=True)
        )
        if kind == 2:
            self.on_server_hello(message)
            return message
        if kind == 11:
            self.keep_certificates(side, message)
        elif kind == 15:
            self.check_certificate_verify(side, message)
        elif kind == 20:
            self.check_finished(side, message)
        if kind not in _NOT_IN_TRANSCRIPT:
            self.transcript.append(message.raw)
        if kind == 20:
            # §7.2: Finished is the last message under the handshake keys.
            label = _LABELS[(side.direction, "application")]
            side.switch(label, traffic_keys(self.current_suite(), self.secret(label)))
        elif kind == 24:
            self.key_update(side)
        return message

    def on_server_hello(self, message: Message) -> None:
        hello = message.decoded
        assert isinstance(hello, ServerHello)
        if hello.is_hello_retry_request:
            # §4.4.1: after a HelloRetryRequest, ClientHello1 is replaced in the
            # transcript by a synthetic message_hash message carrying its hash.
            suite = SUITES.get(hello.cipher_suite, SUITES[0x1301])
            first = suite.digest(self.transcript[0])
            self.transcript = [bytes([254, 0, 0, len(first)]) + first, message.raw]
            self.transcript += self.client_hellos[1:2]
            return
        if hello.version != "TLSv1.3":
            raise DecryptError(
                f"This connection negotiated {hello.version}, not TLS 1.3.",
                "This module decrypts TLS 1.3 only; set minimum_version = TLSVersion.TLSv1_3.",
            )
        if hello.cipher_suite not in SUITES:
            raise DecryptError(
                f"The server chose {hello.cipher_suite_name}, which this module does not decrypt.",
                "Python and OpenSSL negotiate one of "
                + ", ".join(s.name for s in SUITES.values())
                + ".",
            )
        self.suite = SUITES[hello.cipher_suite]
        self.transcript.append(message.raw)

    def keep_certificates(self, side: _Side, message: Message) -> None:
        assert isinstance(message.decoded, Certificate)
        certificates = message.decoded.x509()
        if side.direction == "s2c":
            self.certificates = certificates
        else:
            self.client_certificates = certificates

    def check_certificate_verify(self, side: _Side, message: Message) -> None:
        verify = message.decoded
        assert isinstance(verify, CertificateVerify)
        server = side.direction == "s2c"
        certificates = self.certificates if server else self.client_certificates
        content = certificate_verify_content(self.transcript_hash(), server=server)
        message.ok = bool(certificates) and verify_signature(
            certificates[0], verify.algorithm, verify.signature, content
        )

    def check_finished(self, side: _Side, message: Message) -> None:
        label = _LABELS[(side.direction, "handshake")]
        suite = self.current_suite()
        message.expected = finished_verify_data(suite, self.secret(label), self.transcript_hash())
        message.ok = hmac.compare_digest(message.expected, message.body)

    def key_update(self, side: _Side) -> None:
        assert side.keys is not None
        suite = self.current_suite()
        label = re.sub(r"_(\d+)$", lambda m: f"_{int(m.group(1)) + 1}", side.key_label or "")
        side.switch(label, traffic_keys(suite, next_traffic_secret(suite, side.keys.secret)))

    def current_suite(self) -> CipherSuite:
        if self.suite is None:
            raise DecryptError(
                "An encrypted handshake message arrived before the ServerHello.",
                "Pass each direction's bytes from its first byte on.",
            )
        return self.suite

    def transcript_hash(self) -> bytes:
        return self.current_suite().digest(b"".join(self.transcript))

    # -- the whole connection --------------------------------------------

    def replay(self) -> Decrypted:
        self.read_client_hellos()
        # The server's flight only needs the ClientHello(s); the client's Finished
        # needs the server's whole flight in the transcript: server first.
        self.run(self.server)
        if self.suite is None:
            raise DecryptError(
                "The server's bytes contain no ServerHello.",
                "Pass the bytes the server sent (Capture.server_bytes) from the first byte on.",
            )
        self.run(self.client)
        return Decrypted(
            suite=self.suite,
            client_random=self.client_random,
            records=_interleave(self.client.done, self.server.done),
            server_certificates=self.certificates,
            keylog_secrets=dict(self.secrets),
        )


def _phase(record: Record) -> int:
    """A guess at protocol order when there are no timestamps (see :func:`decrypt`)."""
    names = {m.name for m in record.messages}
    if record.direction == "c2s":
        if record.key_label is None or record.keys is None:
            return 0
        return 3 if record.key_label.startswith("CLIENT_HANDSHAKE") or "Finished" in names else 4
    if record.key_label is None:
        return 1
    return 2 if record.key_label.startswith("SERVER_HANDSHAKE") else 5


def _interleave(client: list[Record], server: list[Record]) -> list[Record]:
    both = client + server
    if all(r.t is not None for r in both) and both:
        return sorted(both, key=lambda r: (r.t, r.direction != "c2s", r.index))
    return sorted(both, key=lambda r: (_phase(r), r.direction != "c2s", r.index))


def decrypt(client_bytes: bytes, server_bytes: bytes, keylog: str | bytes) -> Decrypted:
    """Decrypt one TLS 1.3 connection from the raw bytes of each direction and a key log.

    ``client_bytes`` is everything the client sent (starting with its ClientHello),
    ``server_bytes`` everything the server sent: a :class:`~helpers.capture.Capture`,
    the TCP payloads of a pcap, or a published trace such as RFC 8448. Raises
    :class:`~helpers.errors.DecryptError` when a record does not authenticate.

    Without timestamps the two directions are merged in protocol order (hellos,
    server flight, client flight, then the client's records before the server's).
    """
    return _Connection(client_bytes, server_bytes, keylog).replay()


def decrypt_capture(capture: Capture, keylog: str | bytes) -> Decrypted:
    """:func:`decrypt` for a :class:`~helpers.capture.Capture`, ordered by the capture's clock."""
    result = decrypt(capture.client_bytes, capture.server_bytes, keylog)
    _stamp(result.records, capture.chunks)
    result.records = _interleave(result.client_records, result.server_records)
    return result


def _stamp(records: Sequence[Record], chunks: Iterable[Any]) -> None:
    """Give each record the time of the chunk that completed it."""
    ends: dict[str, list[tuple[int, float]]] = {"c2s": [], "s2c": []}
    totals = {"c2s": 0, "s2c": 0}
    for chunk in chunks:
        totals[chunk.direction] += len(chunk.data)
        ends[chunk.direction].append((totals[chunk.direction], chunk.t))
    for record in records:
        last_byte = record.offset + len(record.wire)
        for end, t in ends[record.direction]:
            if end >= last_byte:
                record.t = t
                break
