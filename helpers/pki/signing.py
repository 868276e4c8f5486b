"""Fill in a certificate and sign it (RFC 5280 §4.1; notebook 04).

Every certificate in this package, root, intermediate, leaf or self-signed, is made by
:func:`_build_certificate`: the issuer's name and key, the subject's name and public
key, a validity period, a random serial number and a list of extensions go into a
*TBSCertificate* ("to be signed"), and the issuer's private key signs its DER bytes.

Two extensions are added here for every certificate, because they link it to its
issuer: the subjectKeyIdentifier names this certificate's key, the
authorityKeyIdentifier names the key that signed it. The hash that goes with the
signature is matched to the signing key's strength (:func:`_signature_hash`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)

from ..errors import PKIError


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.HashAlgorithm | None:
    """The hash a CA uses with its key: matched to the key's strength (RFC 5758 §3.2)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size >= 521:
            return hashes.SHA512()
        return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    return None  # Ed25519/Ed448 fix their own hash: cryptography wants None


def _hash_by_name(
    name: str | None, key: CertificateIssuerPrivateKeyTypes
) -> hashes.HashAlgorithm | None:
    if name is None:
        return _signature_hash(key)
    if name.lower().replace("-", "") == "sha1":
        raise PKIError(
            "cryptography refuses to make new SHA-1 signatures (chosen-prefix collisions are "
            "practical since 2020, SHAttered/Shambles).",
            "Use sha256; to show a SHA-1 certificate being rejected, sign the TBS bytes by hand.",
        )
    table = {
        "sha256": hashes.SHA256,
        "sha384": hashes.SHA384,
        "sha512": hashes.SHA512,
    }
    try:
        return table[name.lower().replace("-", "")]()
    except KeyError:
        raise PKIError(
            f"Unknown signature hash {name!r}.", "Use 'sha256', 'sha384' or 'sha512'."
        ) from None


class _Issuer(NamedTuple):
    """What signing needs to know about the issuer."""

    name: x509.Name
    key: CertificateIssuerPrivateKeyTypes
    ski: x509.SubjectKeyIdentifier


def _ski_of(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


def _build_certificate(
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: _Issuer,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    extensions: Iterable[tuple[x509.ExtensionType, bool]],
    serial: int | None = None,
    signature_hash: str | None = None,
) -> x509.Certificate:
    """Fill in and sign a certificate (RFC 5280 §4.1):

    TBSCertificate  ::=  SEQUENCE  {
         version         [0]  EXPLICIT Version DEFAULT v1,     -- v3: we have extensions
         serialNumber         CertificateSerialNumber,
         signature            AlgorithmIdentifier,
         issuer               Name,
         validity             Validity,                        -- notBefore, notAfter
         subject              Name,
         subjectPublicKeyInfo SubjectPublicKeyInfo,
         extensions      [3]  EXPLICIT Extensions OPTIONAL }
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name)
        .public_key(public_key)
        # RFC 5280 §4.1.2.2: positive, unique per issuer, at most 20 octets. Random serials
        # (CA/B Forum: >= 64 bits of entropy) made the 2008 MD5 rogue-CA collision attack
        # impossible, because the attacker can no longer predict the signed bytes.
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # RFC 5280 §4.2.1.2: subjectKeyIdentifier names this certificate's key ...
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        # ... and §4.2.1.1: authorityKeyIdentifier names the key that signed it (MUST be
        # non-critical). Verifiers use the pair to pick the right issuer when several CAs
        # share a name (a root renewed with a new key, say). Python 3.13's
        # VERIFY_X509_STRICT rejects certificates without them.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer.ski),
            critical=False,
        )
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer.key, _hash_by_name(signature_hash, issuer.key))
