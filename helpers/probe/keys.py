"""How strong a key is, in RSA-equivalent bits, and the certificate's key (introduced in notebook 08).

Key sizes cannot be compared across algorithms by their bit counts: a 256-bit elliptic
curve is about as hard to break as a 3072-bit RSA modulus. The grade compares every
key of a server (the certificate's and each key exchange group) on one scale, *RSA
equivalent bits*, from NIST SP 800-57 Part 1, Table 2 (:data:`_EC_RSA_EQUIVALENT`).
RSA, DSA and finite-field DH groups are their own equivalent: a 1024-bit prime is
RSA-1024.

:class:`CertificateFacts` is what the scan reads from the server's leaf certificate:
its key type and size, that size in RSA-equivalent bits, and the hash of the CA's
signature on it (SHA-1 and MD5 signatures can be forged with collisions).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

__all__ = ["CertificateFacts"]

#: RSA-equivalent strength of elliptic-curve groups (NIST SP 800-57 Part 1, Table 2):
#: a 256-bit curve gives ~128-bit security, like RSA-3072.
_EC_RSA_EQUIVALENT = {
    "x25519": 3072,
    "secp256r1": 3072,
    "prime256v1": 3072,
    "x448": 7680,
    "secp384r1": 7680,
    "secp521r1": 15360,
    "ffdhe2048": 2048,
    "ffdhe3072": 3072,
    "ffdhe4096": 4096,
}


def _group_bits(group: str) -> int:
    sizes = {"x25519": 255, "x448": 448, "secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
    if group in sizes:
        return sizes[group]
    if group.startswith("ffdhe") and group[5:].isdigit():
        return int(group[5:])
    return 0


@dataclass(frozen=True)
class CertificateFacts:
    """What the scan read from the server's certificate (the leaf)."""

    cert: x509.Certificate
    key_type: str  # "RSA", "EC", "Ed25519", ...
    key_bits: int
    rsa_bits: int  # RSA-equivalent strength of the key
    signature_hash: str  # "sha256", "sha1", ... (the CA's signature on this certificate)
    subject: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateFacts:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            kind, bits, equivalent = "RSA", key.key_size, key.key_size
        elif isinstance(key, ec.EllipticCurvePublicKey):
            kind, bits = "EC", key.curve.key_size
            equivalent = _EC_RSA_EQUIVALENT.get(key.curve.name, 3072 if bits >= 256 else 2048)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            kind, bits, equivalent = "Ed25519", 256, 3072
        elif isinstance(key, ed448.Ed448PublicKey):
            kind, bits, equivalent = "Ed448", 456, 7680
        elif isinstance(key, dsa.DSAPublicKey):
            kind, bits, equivalent = "DSA", key.key_size, key.key_size
        else:  # pragma: no cover - other key types do not occur in TLS server certificates
            kind, bits, equivalent = type(key).__name__, 0, 0
        digest = cert.signature_hash_algorithm
        subject = cert.subject.rfc4514_string() or "(empty subject)"
        return cls(cert, kind, bits, equivalent, digest.name if digest else "none", subject)
