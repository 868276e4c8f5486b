"""How strong a key is, in RSA-equivalent bits, and the certificate's key (introduced in notebook 08).

Key sizes cannot be compared across algorithms by their bit counts: a 256-bit elliptic
curve is about as hard to break as a 3072-bit RSA modulus. The grade compares every
key of a server (the certificate's and each key exchange group) on one scale, *RSA
equivalent bits*, from NIST SP 800-57 Part 1, Table 2 (:data:`_EC_RSA_EQUIVALENT`).
RSA, DSA and finite-field DH groups are their own equivalent: a 1024-bit prime is
RSA-1024. Hybrid post-quantum groups (X25519MLKEM768, which OpenSSL >= 3.5 sends first)
are rated by their classical part: :func:`_group_strength` gives the rule and its source.

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
    "ffdhe6144": 6144,
    "ffdhe8192": 8192,
}

#: Post-quantum ML-KEM parameter sets (FIPS 203 §8, Table 2: NIST security categories 1,
#: 3 and 5, i.e. as hard as AES-128, -192 and -256 key search) in RSA-equivalent bits
#: (SP 800-57 Part 1, Table 2). Against a *classical* attacker, that is.
_ML_KEM_RSA_EQUIVALENT = {"ML-KEM-512": 3072, "ML-KEM-768": 7680, "ML-KEM-1024": 15360}

#: Hybrid groups: one classical (EC)DH share and one ML-KEM share in the same key_share
#: entry, both secrets fed to the key schedule (draft-ietf-tls-ecdhe-mlkem; OpenSSL >= 3.5
#: offers X25519MLKEM768 first). Names as IANA / OpenSSL spell them.
_HYBRID_GROUPS: dict[str, tuple[str, str]] = {
    "x25519mlkem768": ("x25519", "ML-KEM-768"),
    "secp256r1mlkem768": ("secp256r1", "ML-KEM-768"),
    "secp384r1mlkem1024": ("secp384r1", "ML-KEM-1024"),
    "x25519kyber768draft00": ("x25519", "ML-KEM-768"),  # its pre-standard ancestor (Kyber)
}
_PURE_ML_KEM = {"mlkem512": "ML-KEM-512", "mlkem768": "ML-KEM-768", "mlkem1024": "ML-KEM-1024"}
_CURVE_BITS = {"x25519": 255, "x448": 448, "secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
_ALIASES = {
    "prime256v1": "secp256r1",
    "p-256": "secp256r1",
    "p-384": "secp384r1",
    "p-521": "secp521r1",
}


def _group_bits(group: str) -> int:
    """Size of a group: curve bits, prime bits (ffdhe), or a hybrid's classical curve."""
    name = _ALIASES.get(group.lower(), group.lower())
    if name in _HYBRID_GROUPS:
        name = _HYBRID_GROUPS[name][0]
    if name in _CURVE_BITS:
        return _CURVE_BITS[name]
    if name.startswith("ffdhe") and name[5:].isdigit():
        return int(name[5:])
    if name in _PURE_ML_KEM:
        return int(name[5:])  # the ML-KEM parameter set (512, 768, 1024), not a curve size
    return 0


def _group_strength(group: str) -> int:
    """RSA-equivalent strength of a key-exchange group (0 if unknown).

    The rule for a **hybrid** group (X25519MLKEM768...): its strength is *at least* that
    of its classical part, because the two shared secrets are concatenated into the key
    schedule and an attacker must recover both: the construction aims at "security even if a
    way is found to defeat the encryption for all but one of the component algorithms"
    (RFC 9954, *Hybrid Key Exchange in TLS 1.3*, April 2026, abstract; the group itself is
    draft-ietf-tls-ecdhe-mlkem). This course credits it
    with exactly its classical part: the ML-KEM half protects recorded traffic against a
    future quantum computer ("harvest now, decrypt later"), which SSL Labs-style scores
    (measured against today's classical attackers) do not reward, and it keeps the grade
    of a server the same whether the probe runs on OpenSSL 3.0 (x25519) or 3.5+ (hybrid).
    A pure ML-KEM group is rated by its FIPS 203 security category.
    """
    name = _ALIASES.get(group.lower(), group.lower())
    if name in _HYBRID_GROUPS:
        name = _HYBRID_GROUPS[name][0]
    if name in _PURE_ML_KEM:
        return _ML_KEM_RSA_EQUIVALENT[_PURE_ML_KEM[name]]
    return _EC_RSA_EQUIVALENT.get(name, _group_bits(name) if name.startswith("ffdhe") else 0)


def _post_quantum_part(group: str) -> str | None:
    """The ML-KEM parameter set inside a group (``"ML-KEM-768"``), or None if classical."""
    name = group.lower()
    if name in _HYBRID_GROUPS:
        return _HYBRID_GROUPS[name][1]
    return _PURE_ML_KEM.get(name)


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
