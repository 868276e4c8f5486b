"""Which extensions a CA and a leaf carry, and why (RFC 5280 §4.2; notebook 04).

A version 3 certificate carries *extensions*, each marked critical or not. A verifier
that meets a critical extension it does not understand must reject the certificate;
a non-critical one it may ignore. The two profiles below are what strict verifiers
(Python 3.13's ``VERIFY_X509_STRICT``, browsers) demand:

* a CA: critical basicConstraints ``CA:TRUE`` (with an optional path length) and a
  critical keyUsage ``keyCertSign, cRLSign, digitalSignature``;
* a leaf: critical basicConstraints ``CA:FALSE``, a critical keyUsage
  ``digitalSignature`` (plus ``keyEncipherment`` for RSA), extendedKeyUsage
  ``serverAuth``/``clientAuth``, and the subjectAltName with its names.

The key identifiers every certificate also carries (subjectKeyIdentifier,
authorityKeyIdentifier) are added where the certificate is signed:
:mod:`helpers.pki.signing`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import PKIError

_USAGES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}


def _ca_extensions(path_length: int | None) -> list[tuple[x509.ExtensionType, bool]]:
    # BasicConstraints ::= SEQUENCE {
    #      cA                      BOOLEAN DEFAULT FALSE,
    #      pathLenConstraint       INTEGER (0..MAX) OPTIONAL }       -- RFC 5280 §4.2.1.9
    return [
        # RFC 5280 §4.2.1.9: basicConstraints MUST be present and critical in CA
        # certificates. pathLenConstraint is how many *more* intermediate CAs may follow
        # below this one: 0 means "may sign leaves only", so a stolen intermediate key
        # cannot mint further CAs.
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        # RFC 5280 §4.2.1.3: a CA key signs certificates (keyCertSign) and CRLs (cRLSign);
        # digitalSignature lets it sign OCSP responses itself. Critical, so that a verifier
        # that does not understand keyUsage refuses rather than ignores it.
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
    ]


def _leaf_extensions(
    public_key: CertificatePublicKeyTypes,
    san_ext: x509.SubjectAlternativeName | None,
    subject: x509.Name,
    usages: Sequence[str],
    is_ca: bool,
) -> list[tuple[x509.ExtensionType, bool]]:
    unknown = [u for u in usages if u not in _USAGES]
    if unknown:
        raise PKIError(
            f"Unknown usage {unknown[0]!r}.", 'Use usages=("server",), ("client",) or both.'
        )
    exts: list[tuple[x509.ExtensionType, bool]] = [
        # RFC 5280 §4.2.1.9: critical, cA FALSE: this key must not sign other certificates.
        # (is_ca=True makes a deliberately wrong leaf for "bad issuer" exercises.)
        (x509.BasicConstraints(ca=is_ca, path_length=None), True),
        # RFC 5280 §4.2.1.3: a TLS key signs the handshake (digitalSignature). With RSA it
        # may also decrypt the TLS 1.2 RSA key exchange (keyEncipherment); EC keys never do.
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
    ]
    if usages:
        # RFC 5280 §4.2.1.12: extendedKeyUsage: TLS server and/or client. A server
        # certificate stolen from a web server cannot be used to log in as a client.
        exts.append((x509.ExtendedKeyUsage([_USAGES[u] for u in dict.fromkeys(usages)]), False))
    if san_ext is not None:
        # RFC 5280 §4.2.1.6: critical only when the subject is empty.
        exts.append((san_ext, len(subject) == 0))
    return exts
