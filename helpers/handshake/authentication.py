"""The authentication messages: Certificate, CertificateVerify, Finished (introduced in notebook 06).

These are the messages RFC 8446 §4.4 calls the *authentication messages*, and they
answer three questions. **Certificate**: who does the peer claim to be (its chain, leaf
first, as DER bytes)? **CertificateVerify**: does it hold the private key of that
certificate (a signature over the transcript so far)? **Finished**: did both ends see
the same handshake (a MAC over the whole transcript, keyed from the handshake secrets)?

The Certificate message travels in clear in TLS 1.2 and encrypted in TLS 1.3, with a
slightly different layout (each certificate gets its own extension block), hence the
``tls13`` flag of :func:`parse_certificate`. In TLS 1.3 a peer may send
**CompressedCertificate** (type 25, RFC 8879) instead: the same Certificate message,
compressed with an algorithm the other side listed in its ``compress_certificate``
extension (in ClientHello, or in CertificateRequest for the client's certificate). It
depends on the OpenSSL version: 3.0 does not implement RFC 8879 at all; from 3.2 on it
advertises the algorithms it was built with, and measured on OpenSSL 3.5.9 (Debian 13) a
mutual-TLS client sends its certificate zlib-compressed (1087 bytes become 884) while the
server's own Certificate stays plain. :class:`CompressedCertificate` decodes the
wrapper, and :meth:`~CompressedCertificate.certificate` gives the Certificate inside. In TLS 1.2 only a client with a
certificate sends a CertificateVerify: the server proves its key by signing its
ServerKeyExchange (see ``tls12``) or, with RSA key transport, by decrypting the
premaster secret. Finished is encrypted in both versions, and in TLS 1.3 so is the
server's CertificateVerify: you see them only after :mod:`helpers.tls13` has decrypted
them, which is where notebook 06 checks them by hand.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ParseError
from .display import _Display, _hex
from .extensions import Extension, _read_extensions
from .reader import _as_bytes, _Reader
from .registry import CERT_COMPRESSION, signature_scheme_name

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from cryptography import x509

__all__ = [
    "Certificate",
    "CertificateVerify",
    "CompressedCertificate",
    "Finished",
    "parse_certificate",
    "parse_compressed_certificate",
    "parse_certificate_verify",
    "parse_finished",
]


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
        """Load every certificate with ``cryptography`` (ParseError if one is not DER).

        The bytes are the peer's, so they can be anything. cryptography refuses what it
        cannot read with ``ValueError``, or ``InvalidVersion`` (not a ``ValueError``) for a
        version field other than v1-v3, and its Rust parser may even *panic*: a
        ``BaseException`` that ``except Exception`` misses (``helpers/pki/panics.py``).
        All three become :class:`~helpers.errors.ParseError`.
        """
        from cryptography import x509 as _x509

        from ..pki.panics import panics_as

        loaded = []
        for index, der in enumerate(self.certificates):
            with panics_as(
                ParseError,
                f"Certificate {index} of the chain could not be parsed",
                "The peer sent bytes cryptography cannot read as DER X.509; "
                "look at them with openssl x509 -inform der -noout -text.",
            ):
                try:
                    loaded.append(_x509.load_der_x509_certificate(der))
                except (ValueError, _x509.InvalidVersion) as exc:
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


# RFC 8879 §4 (Compressed Certificate), TLS 1.3 only, in place of Certificate:
#
#     struct {
#          CertificateCompressionAlgorithm algorithm;
#          uint24 uncompressed_length;
#          opaque compressed_certificate_message<1..2^24-1>;
#     } CompressedCertificate;


@dataclass(frozen=True, repr=False)
class CompressedCertificate(_Display):
    """A TLS 1.3 Certificate message, compressed (RFC 8879; OpenSSL 3.2+ sends it).

    The compressed bytes are the whole Certificate message *body*. The transcript hash
    covers this message as it was sent, compressed (RFC 8879 §4), so a decryptor hashes
    the raw message and decompresses only to read the certificates.
    """

    algorithm: int
    uncompressed_length: int
    compressed: bytes

    @property
    def algorithm_name(self) -> str:
        return CERT_COMPRESSION.get(self.algorithm, f"unknown (0x{self.algorithm:04x})")

    def decompress(self) -> bytes:
        """The Certificate body inside. zlib is in every Python; brotli and zstd need the
        ``brotli`` package or Python 3.14's ``compression.zstd``. RFC 8879 §4: a length
        that differs from ``uncompressed_length`` is a ``bad_certificate``."""
        limit = self.uncompressed_length + 1  # never inflate more than announced
        if self.algorithm == 1:  # zlib, RFC 1950
            inflater = zlib.decompressobj()
            try:
                data = inflater.decompress(self.compressed, limit)
            except zlib.error as exc:
                raise ParseError(
                    f"The zlib stream of this CompressedCertificate is corrupt ({exc})"
                ) from None
        else:
            decompress = _other_decompressor(self.algorithm_name)
            try:
                data = decompress(self.compressed)[:limit]
            except Exception as exc:  # brotli.error, zstd.ZstdError: corrupt input
                raise ParseError(
                    f"The {self.algorithm_name} stream of this CompressedCertificate is corrupt ({exc})"
                ) from None
        if len(data) != self.uncompressed_length:
            raise ParseError(
                f"This CompressedCertificate announces {self.uncompressed_length} bytes but "
                f"holds {len(data)}{'+' if len(data) == limit else ''}",
                "RFC 8879 §4: the receiver must abort with a bad_certificate alert.",
            )
        return data

    def certificate(self) -> Certificate:
        """The TLS 1.3 Certificate message this one carries, decoded."""
        return parse_certificate(self.decompress(), tls13=True)

    def __repr__(self) -> str:
        return (
            f"CompressedCertificate({self.algorithm_name}, {len(self.compressed)} -> "
            f"{self.uncompressed_length} bytes)"
        )

    def _rows(self) -> list[tuple[str, Any]]:
        return [
            ("algorithm", self.algorithm_name),
            ("compressed", f"{len(self.compressed)} bytes"),
            ("uncompressed", f"{self.uncompressed_length} bytes"),
        ]


def _other_decompressor(name: str) -> Any:
    """brotli or zstd, if this Python has a module for it; else one readable error."""
    try:
        if name == "brotli":
            import brotli  # type: ignore[import-not-found]

            return brotli.decompress
        if name == "zstd":
            from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+

            return zstd.decompress
    except ImportError:
        pass
    raise ParseError(
        f"This CompressedCertificate uses {name}, which this Python cannot decompress",
        "zlib works everywhere; brotli needs `pip install brotli`, zstd Python 3.14+.",
    )


def parse_compressed_certificate(
    body: bytes | bytearray | memoryview, *, offset: int = 0
) -> CompressedCertificate:
    """Decode a CompressedCertificate body (RFC 8879 §4)."""
    r = _Reader(_as_bytes(body), offset)
    algorithm = r.u16("the compression algorithm")
    length = r.u24("the uncompressed length")
    compressed = r.opaque(3, "the compressed Certificate message", 1)
    r.done("the CompressedCertificate message")
    return CompressedCertificate(algorithm, length, compressed)


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
