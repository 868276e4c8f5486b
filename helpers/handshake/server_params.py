"""The server parameters: EncryptedExtensions and CertificateRequest (introduced in notebook 06).

RFC 8446 §4.3 calls these two the *server parameters*. In TLS 1.3 they follow the
ServerHello, already encrypted. **EncryptedExtensions** holds every server extension
that is not needed to set up the keys (the chosen ALPN protocol, for instance), so that
an observer sees as little as possible. **CertificateRequest** asks the client for a
certificate of its own (mutual TLS); it exists in TLS 1.2 too, in clear and with a
different layout, hence the ``tls13`` flag of :func:`parse_certificate_request`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .display import _describe, _hex
from .extensions import Extension, _HasExtensions, _read_extensions
from .reader import _as_bytes, _Reader
from .registry import signature_scheme_name

__all__ = [
    "EncryptedExtensions",
    "CertificateRequest",
    "parse_encrypted_extensions",
    "parse_certificate_request",
]


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
