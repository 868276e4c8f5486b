"""A server or client certificate with its key and chain; and self-signed ones (notebook 04).

A :class:`Leaf` is what :meth:`CA.issue <helpers.pki.CA.issue>` returns: an
end-entity certificate, the private key that goes with it, and the chain a server
sends (the leaf and its intermediates, never the root). It knows how to become bytes
(PEM, PKCS#12), files (:meth:`Leaf.write`) and, most often, a configured
:class:`ssl.SSLContext` (:meth:`Leaf.configure_server`, or :meth:`Leaf.configure_client`
for a client certificate in mutual TLS).

:func:`self_signed` makes a leaf that no CA vouches for: its issuer is itself.
Notebook 05 serves one to watch a client refuse it.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from .extensions import _leaf_extensions
from .files import CertFiles, Password, _encryption, _pem, _write_files, private_key_pem
from .keys import ensure_key_matches, new_private_key
from .names import _cn, _leaf_subject_and_san, _san_strings
from .signing import _build_certificate, _Issuer
from .validity import DEFAULT_LEAF_LIFETIME, TimeSpec, _validity

if TYPE_CHECKING:
    from ..cards import CertificateCard
    from .authority import CA

__all__ = ["Leaf", "self_signed"]


class Leaf:
    """An end-entity certificate, its private key, and the chain a server sends.

    ``chain`` is ``[leaf, intermediates...]`` and never includes the root: a client
    trusts a root because it is *already* in its trust store, never because a server
    sent it, so sending it only wastes bytes in every handshake (RFC 8446 §4.4.2 lets
    servers omit it; RFC 5246 §7.4.2 says the same for TLS 1.2).
    """

    def __init__(
        self,
        cert: x509.Certificate,
        key: PrivateKeyTypes,
        issuer: CA | Leaf | None,
        chain: Sequence[x509.Certificate] | None = None,
    ) -> None:
        self.cert = cert
        self.key = key
        self.issuer: CA | Leaf | None = issuer
        self.chain: list[x509.Certificate] = list(chain) if chain is not None else [cert]

    @classmethod
    def from_parts(
        cls,
        cert: x509.Certificate,
        key: PrivateKeyTypes,
        intermediates: Sequence[x509.Certificate] = (),
        issuer: CA | None = None,
    ) -> Leaf:
        """Wrap a certificate and key loaded from elsewhere (checks they match)."""
        ensure_key_matches(cert, key)
        return cls(cert, key, issuer, [cert, *intermediates])

    # --- bytes
    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def chain_pem(self) -> bytes:
        return b"".join(_pem(c) for c in self.chain)

    def key_pem(self, password: Password = None) -> bytes:
        """The private key as PEM PKCS#8; with ``password``, encrypted."""
        return private_key_pem(self.key, password)

    def pkcs12(self, password: Password = None, name: str | None = None) -> bytes:
        """A PKCS#12 (.p12/.pfx) bundle: key + certificate + intermediates, as browsers,
        Windows and Java import them. Python's ``ssl`` cannot load it directly; see
        :func:`load_pkcs12`."""
        label = name or (self.names or [_cn(self.cert.subject) or "tls-course"])[0]
        return pkcs12.serialize_key_and_certificates(
            label.encode("utf-8"),
            self.key,  # type: ignore[arg-type]
            self.cert,
            self.chain[1:] or None,
            _encryption(password),
        )

    @property
    def names(self) -> list[str]:
        """The SAN entries as text (DNS names and IP addresses)."""
        return _san_strings(self.cert)

    # --- files and contexts
    def write(
        self, directory: str | os.PathLike[str], name: str = "server", password: Password = None
    ) -> CertFiles:
        """Write ``<name>-cert.pem``, ``<name>-key.pem`` (0600) and ``<name>-chain.pem``
        (leaf + intermediates) into ``directory``."""
        return _write_files(directory, name, self.cert, self.chain, self.key, password)

    def configure_server(self, ctx: ssl.SSLContext) -> None:
        """Load this certificate chain and key into ``ctx`` (a server context, or a client
        context that presents a client certificate).

        ``ssl`` reads keys from files only, so they go to a private temporary directory
        (0700, key 0600) that is removed straight after loading.
        """
        with tempfile.TemporaryDirectory(prefix="tls-course-") as tmp:
            files = self.write(tmp, "leaf")
            ctx.load_cert_chain(files.chain, files.key)

    def configure_client(self, ctx: ssl.SSLContext) -> None:
        """Present this certificate as a *client* certificate (mutual TLS, notebook 05).

        The same ``load_cert_chain`` as :meth:`configure_server`: in TLS the client
        proves possession of its key exactly as a server does (a Certificate and a
        CertificateVerify message, RFC 8446 §4.4.2-4.4.3), only when the server asks
        (CertificateRequest, §4.3.2). The name says which side the context is for.
        """
        self.configure_server(ctx)

    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        """Trust this very certificate as a trust anchor (for a self-signed certificate).

        This is not what "pinning" usually means (an extra check on top of normal
        validation); it makes the certificate a root of its own, for this context only.
        """
        ctx.load_verify_locations(cadata=self.cert_pem.decode("ascii"))

    # --- display
    def card(self) -> CertificateCard:
        from ..cards import CertificateCard

        return CertificateCard(self.cert)

    def _repr_html_(self) -> str:
        return self.card()._repr_html_()

    def __repr__(self) -> str:
        cn = _cn(self.cert.subject) or ", ".join(self.names) or "?"
        return f"<Leaf {cn!r} issued by {_cn(self.cert.issuer) or '?'!r}>"


def self_signed(
    *names: str,
    common_name: str | None = None,
    san: bool = True,
    key_type: str = "ec",
    key_size: int | None = None,
    key: PrivateKeyTypes | None = None,
    not_before: TimeSpec = None,
    not_after: TimeSpec = None,
    usages: Sequence[str] = ("server",),
    is_ca: bool = False,
    serial: int | None = None,
    signature_hash: str | None = None,
) -> Leaf:
    """A certificate signed by its own key: no CA vouches for it.

    A client can only trust it by trusting *this very certificate*
    (:meth:`Leaf.configure_trust`), which is what "pinning" a self-signed certificate
    means. Anyone else sees X509 error 18, "self-signed certificate". The leaf's
    ``issuer`` is itself and its chain is just ``[leaf]``.
    """
    leaf_key = key or new_private_key(key_type, key_size)
    subject, san_ext = _leaf_subject_and_san(names, common_name, san)
    nb, na = _validity(not_before, not_after, DEFAULT_LEAF_LIFETIME)
    public_key = leaf_key.public_key()
    issuer = _Issuer(subject, leaf_key, x509.SubjectKeyIdentifier.from_public_key(public_key))  # type: ignore[arg-type]
    cert = _build_certificate(
        subject=subject,
        public_key=public_key,
        issuer=issuer,
        not_before=nb,
        not_after=na,
        extensions=_leaf_extensions(public_key, san_ext, subject, usages, is_ca),
        serial=serial,
        signature_hash=signature_hash,
    )
    leaf = Leaf(cert, leaf_key, None, [cert])
    leaf.issuer = leaf
    return leaf
