"""A private certificate authority in a few objects (introduced in notebook 04, used from 02).

Theory of operation
-------------------
A certificate is a signed statement: "the holder of *this public key* may call itself
*these names* from *not_before* until *not_after*". The signature comes from an issuer
(a certificate authority) whose own certificate says the same about *its* key, and so
on up to a **root**: a self-signed certificate the client already has in its trust
store. Verifying a server therefore means building a chain

    leaf (sent by server) -> intermediate(s) (sent by server) -> root (in the trust store)

and checking every signature, every validity period and every constraint on the way
(RFC 5280 §6). Names are checked last, against the leaf only (RFC 9525, was RFC 6125).

This package makes such chains, the way ``trustme`` does, on top of ``cryptography``:

* :class:`CA` is a root (``CA()``) or an intermediate (``root.create_intermediate()``);
  it holds a certificate and the private key that signs with it.
* :meth:`CA.issue` makes a :class:`Leaf`: a server or client certificate plus its key,
  with ``.chain`` (what a server sends) and helpers to write files or configure an
  :class:`ssl.SSLContext`.
* :meth:`CA.revoke` / :meth:`CA.crl` publish a certificate revocation list (RFC 5280 §5).
* :func:`make_csr` / :meth:`CA.sign_csr` show the real-world path: the key never leaves
  the server; only a *certificate signing request* travels to the CA.
* :func:`load_certificate` / :func:`load_private_key` read PEM or DER and, when the bytes
  are wrong, say so in one sentence instead of an ASN.1 traceback.

Every certificate carries what strict verifiers (Python 3.13's ``VERIFY_X509_STRICT``,
browsers) demand: a critical basicConstraints, a critical keyUsage, and the
authority/subject key identifiers that link a certificate to its issuer's key. Keys
are EC P-256 unless you ask otherwise (``keys.py`` says why).

Nothing here touches the network, and nothing happens at import time.

The files, in reading order
---------------------------
Everything below is importable from ``helpers.pki`` itself.

=================  ========================================================================
``keys.py``        ``new_private_key`` (why P-256 is the default), ``ensure_key_matches``
``names.py``       subject and subjectAltName: DNS names, wildcards, IP addresses, IDNs
``validity.py``    notBefore/notAfter: default lifetimes, ``BACKDATE``, expired on purpose
``extensions.py``  what a CA and a leaf carry: basicConstraints, keyUsage, EKU, SAN
``signing.py``     the TBSCertificate filled in and signed; SKI/AKI; the signature hash
``authority.py``   ``CA``: root, intermediate, ``issue``, ``sign_csr``, ``revoke``, ``crl``
``leaf.py``        ``Leaf`` (PEM, PKCS#12, files, ``SSLContext``) and ``self_signed``
``csr.py``         ``make_csr``: the request a server sends to a real CA
``files.py``       ``CertFiles``, ``private_key_pem``, ``write_private_key`` (mode 0600)
``loading.py``     ``load_certificate(s)``, ``load_private_key``, ``load_pkcs12``
``panics.py``      a Rust panic inside ``cryptography`` turned into one sentence
=================  ========================================================================
"""

from __future__ import annotations

from .authority import CA
from .csr import make_csr
from .files import CertFiles, private_key_pem, write_private_key
from .keys import PrivateKey, ensure_key_matches, new_private_key
from .leaf import Leaf, self_signed
from .loading import load_certificate, load_certificates, load_pkcs12, load_private_key
from .validity import BACKDATE, DEFAULT_CA_LIFETIME, DEFAULT_LEAF_LIFETIME

# Also importable from here, as they were before the package was split (not in __all__):
# the type aliases in signatures.
from .files import Password as Password  # isort: skip
from .validity import TimeSpec as TimeSpec  # isort: skip

__all__ = [
    "BACKDATE",
    "CA",
    "DEFAULT_CA_LIFETIME",
    "DEFAULT_LEAF_LIFETIME",
    "CertFiles",
    "Leaf",
    "PrivateKey",
    "ensure_key_matches",
    "load_certificate",
    "load_certificates",
    "load_pkcs12",
    "load_private_key",
    "make_csr",
    "new_private_key",
    "private_key_pem",
    "self_signed",
    "write_private_key",
]
