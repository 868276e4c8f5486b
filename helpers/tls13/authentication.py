"""What the endpoints check: CertificateVerify and Finished (introduced in notebook 06).

Inside its encrypted flight the server proves two things. **CertificateVerify**
(RFC 8446 §4.4.3): it holds the private key of the certificate it just sent, by signing
the hash of the handshake so far. **Finished** (§4.4.4): it saw the very same handshake
as the client, by a MAC over that hash keyed from its handshake traffic secret. The
client answers with its own Finished (and a CertificateVerify of its own when it
authenticates with a certificate).

These functions compute what each check compares; :mod:`.connection` keeps the
transcript as the messages go by, calls them, and stores the verdict in
:attr:`Message.ok <helpers.tls13.result.Message.ok>`.
"""

from __future__ import annotations

import hmac

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from .schedule import hkdf_expand_label
from .suites import CipherSuite


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


def finished_verify_data(suite: CipherSuite, base_key: bytes, transcript_hash: bytes) -> bytes:
    """The Finished MAC (RFC 8446 §4.4.4)::

        finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length)
        verify_data  = HMAC(finished_key, Transcript-Hash(Handshake Context,
                                                          Certificate*, CertificateVerify*))

    BaseKey is the sender's *handshake* traffic secret.
    """
    finished_key = hkdf_expand_label(suite, base_key, "finished", b"", suite.hash_length)
    return hmac.new(finished_key, transcript_hash, suite.hash_name).digest()
