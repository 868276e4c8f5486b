"""Certificate signing requests: the real-world way to get a certificate (notebook 04).

A CA that makes your key for you (:meth:`CA.issue <helpers.pki.CA.issue>`) is handy in
a lab and wrong everywhere else: whoever made the key could have kept a copy. In real
life (certbot, ACME, RFC 8555) the server makes its own key, and sends the CA a
*certificate signing request* (PKCS#10, RFC 2986): its public key and the names it
wants, signed with the private key to prove it holds it. The CA checks that signature
and signs a certificate (:meth:`CA.sign_csr <helpers.pki.CA.sign_csr>`), choosing every
extension itself.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from .names import _leaf_subject_and_san
from .signing import _signature_hash

__all__ = ["make_csr"]


def make_csr(
    key: CertificateIssuerPrivateKeyTypes, *names: str, common_name: str | None = None
) -> x509.CertificateSigningRequest:
    """A certificate signing request for ``names``, signed with ``key``.

    This is how certificates are obtained in real life (certbot, ACME, RFC 8555): the
    key is generated on the server and never leaves it; the CSR carries the public key
    and the names, and its signature proves possession of the private key.
    """
    # CertificationRequestInfo ::= SEQUENCE {
    #      version       INTEGER { v1(0) } (v1,...),
    #      subject       Name,
    #      subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
    #      attributes    [0] Attributes{{ CRIAttributes }} }        -- RFC 2986 §4.1
    # The SAN travels as an extensionRequest attribute (RFC 2985 §5.4.2).
    subject, san_ext = _leaf_subject_and_san(names, common_name, True)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if san_ext is not None:
        builder = builder.add_extension(san_ext, critical=len(subject) == 0)
    return builder.sign(key, _signature_hash(key))
