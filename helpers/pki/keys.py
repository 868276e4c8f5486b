"""Private keys: making one, and checking that one belongs to a certificate (notebook 04).

A certificate is only half of what a server needs; the other half is the private key
whose public half the certificate names. :func:`new_private_key` makes one of the
three kinds the course uses, and :func:`ensure_key_matches` answers the question
behind OpenSSL's "key values mismatch": does this key belong to this certificate?

Why EC P-256 is the default
    A P-256 key is generated in tens of microseconds; an RSA-2048 key needs two random
    ~1024-bit primes and takes tens of milliseconds (often far more). P-256 gives about
    128-bit security (RSA needs 3072 bits for that), its signatures are 64 bytes, and
    every TLS 1.2/1.3 client supports it. The lab makes ~20 certificates at start-up, so
    this matters. Ask for ``key_type="rsa"`` when a lesson is *about* RSA.

Writing a key to disk (PEM, a password, mode 0600) is in :mod:`helpers.pki.files`;
reading one back is in :mod:`helpers.pki.loading`.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..errors import KeyMismatchError, PKIError
from .names import _cn

__all__ = ["PrivateKey", "ensure_key_matches", "new_private_key"]

#: The key types this module generates. (``load_private_key`` reads any type.)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def new_private_key(key_type: str = "ec", size: int | None = None) -> PrivateKey:
    """Generate a private key.

    ``"ec"``: NIST P-256 (``size`` 256, the default), P-384 (384) or P-521 (521).
    ``"rsa"``: 2048 bits by default, any size ``cryptography`` accepts (>= 1024; a
    1024-bit key is useful only to watch OpenSSL's security level reject it).
    ``"ed25519"``: fine for Python and OpenSSL, but browsers do not accept it in the Web PKI.
    """
    kind = key_type.lower()
    if kind == "ec":
        curves: dict[int, ec.EllipticCurve] = {
            256: ec.SECP256R1(),
            384: ec.SECP384R1(),
            521: ec.SECP521R1(),
        }
        curve = curves.get(size or 256)
        if curve is None:
            raise PKIError(
                f"There is no EC key of size {size} here.",
                "Use key_size=None or 256 (P-256), 384 (P-384) or 521 (P-521).",
            )
        return ec.generate_private_key(curve)
    if kind == "rsa":
        bits = size or 2048
        if bits < 1024:
            raise PKIError(
                f"An RSA key of {bits} bits is too small to generate with cryptography.",
                "Use key_size=1024 or more (2048 is the usual minimum today).",
            )
        # 65537 is the public exponent everyone uses; tiny exponents such as 3 invited
        # padding attacks (Bleichenbacher 2006 signature forgery).
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise PKIError(
        f"Unknown key type {key_type!r}.",
        'Use key_type="ec" (the default), "rsa" or "ed25519".',
    )


def ensure_key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> None:
    """Raise :class:`~helpers.errors.KeyMismatchError` unless ``key`` belongs to ``cert``.

    A certificate holds a *public* key; the pair matches when the private key's public
    half is that same key. Servers fail with "key values mismatch" otherwise.
    """
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise KeyMismatchError(
            f"The private key does not belong to the certificate for {_cn(cert.subject) or 'this subject'!r}: their public keys differ.",
            "Pair the certificate with the key it was issued for (compare "
            "cert.public_key() with key.public_key()), or issue a new certificate for this key.",
        )
