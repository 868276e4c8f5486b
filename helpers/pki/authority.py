"""A certificate authority: roots, intermediates, issuing, revoking (notebook 04; CRLs: 08).

A :class:`CA` holds a CA certificate and the private key that signs with it.
``CA()`` makes a self-signed **root**; ``root.create_intermediate()`` an
**intermediate** signed by it, which does the daily signing while the root stays
offline. Either one can:

* :meth:`CA.issue` a :class:`~helpers.pki.Leaf` for some names (the trustme way: the
  CA makes the key too);
* :meth:`CA.sign_csr` a certificate signing request (the real-world way: the key never
  leaves the server; see :mod:`helpers.pki.csr`);
* :meth:`CA.revoke` a certificate and publish a :meth:`CA.crl`, a signed list of
  revoked serial numbers (RFC 5280 §5);
* :meth:`CA.configure_trust` an :class:`ssl.SSLContext`, which trusts the root only,
  as a trust store does.
"""

from __future__ import annotations

import datetime as _dt
import os
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)

from ..errors import PKIError
from .extensions import _ca_extensions, _leaf_extensions
from .files import CertFiles, Password, _pem, _write_files, private_key_pem
from .keys import ensure_key_matches, new_private_key
from .leaf import Leaf
from .names import _cn, _general_name, _leaf_subject_and_san, _subject
from .signing import _build_certificate, _Issuer, _signature_hash, _ski_of
from .validity import (
    BACKDATE,
    DEFAULT_CA_LIFETIME,
    DEFAULT_LEAF_LIFETIME,
    TimeSpec,
    _now,
    _validity,
)

if TYPE_CHECKING:
    from ..cards import CertificateCard

__all__ = ["CA"]

_REASONS = {flag.name: flag for flag in x509.ReasonFlags}


class CA:
    """A certificate authority: a root (``parent=None``) or an intermediate.

    ``CA()`` makes a self-signed root; ``root.create_intermediate()`` an intermediate
    signed by it. Each CA keeps its own list of revoked serials for :meth:`crl`.
    """

    def __init__(
        self,
        common_name: str = "TLS Course Root CA",
        key_type: str = "ec",
        key_size: int | None = None,
        not_before: TimeSpec = None,
        not_after: TimeSpec = None,
        *,
        parent: CA | None = None,
        path_length: int | None = None,
        key: PrivateKeyTypes | None = None,
        organization: str | None = "TLS Course",
        signature_hash: str | None = None,
        permitted: Sequence[str | x509.GeneralName] = (),
    ) -> None:
        """``permitted`` fences the CA in with a critical nameConstraints extension
        (RFC 5280 §4.2.1.10): DNS subtrees (``"lab.localhost"``) and address blocks
        (``"127.0.0.0/8"``); everything issued below it must stay inside them."""
        self.key: CertificateIssuerPrivateKeyTypes = key or new_private_key(key_type, key_size)  # type: ignore[assignment]
        self.parent = parent
        subject = _subject(common_name, organization)
        nb, na = _validity(not_before, not_after, DEFAULT_CA_LIFETIME)
        public_key = self.key.public_key()
        if parent is None:
            # A root signs itself: issuer == subject, and its AKI names its own key.
            issuer = _Issuer(
                subject, self.key, x509.SubjectKeyIdentifier.from_public_key(public_key)
            )
        else:
            issuer = parent._issuer
        self.cert = _build_certificate(
            subject=subject,
            public_key=public_key,
            issuer=issuer,
            not_before=nb,
            not_after=na,
            extensions=_ca_extensions(path_length, permitted),
            signature_hash=signature_hash,
        )
        self._revoked: dict[int, tuple[_dt.datetime, x509.ReasonFlags | None]] = {}
        self._crl_number = 0

    @classmethod
    def from_parts(
        cls, cert: x509.Certificate, key: PrivateKeyTypes, parent: CA | None = None
    ) -> CA:
        """Wrap an existing certificate and key as a CA (e.g. loaded from a cache, or a
        leaf you want to *misuse* as an issuer in a "bad issuer" exercise).

        Pass ``parent`` for an intermediate, so that ``chain``, ``root`` and
        :meth:`configure_trust` know the way up to the root.
        """
        ensure_key_matches(cert, key)
        self = cls.__new__(cls)
        self.key = key  # type: ignore[assignment]
        self.parent = parent
        self.cert = cert
        self._revoked = {}
        self._crl_number = 0
        return self

    # --- identity
    @property
    def _issuer(self) -> _Issuer:
        return _Issuer(self.cert.subject, self.key, _ski_of(self.cert))

    @property
    def chain(self) -> list[x509.Certificate]:
        """``[this CA, its parents..., root]``."""
        out, ca = [], self
        while ca is not None:
            out.append(ca.cert)
            ca = ca.parent
        return out

    def _sent_chain(self) -> list[x509.Certificate]:
        """What a server sends above its leaf: this CA and its parents, minus the root."""
        chain = self.chain
        if chain[-1].issuer == chain[-1].subject:  # a self-issued root: clients have it
            chain = chain[:-1]
        return chain

    @property
    def root(self) -> CA:
        ca = self
        while ca.parent is not None:
            ca = ca.parent
        return ca

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    def key_pem(self, password: Password = None) -> bytes:
        return private_key_pem(self.key, password)

    # --- making things
    def create_intermediate(
        self,
        common_name: str = "TLS Course Intermediate CA",
        key_type: str = "ec",
        key_size: int | None = None,
        not_before: TimeSpec = None,
        not_after: TimeSpec = None,
        *,
        path_length: int | None = 0,
        signature_hash: str | None = None,
    ) -> CA:
        """An intermediate CA signed by this one (``path_length=0``: it may sign leaves
        only). Roots stay offline in real PKIs; intermediates do the daily signing, so a
        compromise can be fixed by revoking one intermediate instead of a root."""
        return CA(
            common_name,
            key_type,
            key_size,
            not_before,
            not_after,
            parent=self,
            path_length=path_length,
            signature_hash=signature_hash,
        )

    def issue(
        self,
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
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> Leaf:
        """Issue a leaf certificate for ``names`` (DNS names, ``*.`` wildcards or IPs).

        The names go into the subjectAltName extension, which is where clients look;
        the first one is also copied to the Common Name for humans. ``san=False`` leaves
        only the Common Name: the pre-2000 style that browsers now reject.

        ``not_before``/``not_after`` accept UTC datetimes or timedeltas from now; an
        expired certificate is simply one issued with ``not_after`` in the past.
        ``usages``: ``"server"`` and/or ``"client"`` (extendedKeyUsage). ``is_ca=True``
        makes a deliberately wrong leaf that claims CA:TRUE. ``serial``,
        ``signature_hash`` ("sha256", "sha384", "sha512") and extra ``extensions``
        (``(extension, critical)`` pairs) are for lab scenarios.
        """
        leaf_key = key or new_private_key(key_type, key_size)
        subject, san_ext = _leaf_subject_and_san(names, common_name, san)
        nb, na = _validity(not_before, not_after, DEFAULT_LEAF_LIFETIME)
        public_key = leaf_key.public_key()
        cert = _build_certificate(
            subject=subject,
            public_key=public_key,
            issuer=self._issuer,
            not_before=nb,
            not_after=na,
            extensions=[
                *_leaf_extensions(public_key, san_ext, subject, usages, is_ca),
                *extensions,
            ],
            serial=serial,
            signature_hash=signature_hash,
        )
        return Leaf(cert, leaf_key, self, [cert, *self._sent_chain()])

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        not_before: TimeSpec = None,
        not_after: TimeSpec = None,
        usages: Sequence[str] = ("server",),
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> x509.Certificate:
        """Sign a certificate signing request (PKCS#10, RFC 2986).

        The CSR's signature proves the requester holds the private key. The CA copies
        the subject and the requested subjectAltName and decides every other extension
        itself: a requester must not be able to ask for ``CA:TRUE``. A CSR without SAN
        gets its Common Name copied into the SAN, as public CAs do. Extra ``extensions``
        (``(extension, critical)`` pairs) are the CA's own additions, e.g. the CRL
        Distribution Point the ACME CA of notebook 10 puts in what it issues.
        """
        if not csr.is_signature_valid:
            raise PKIError(
                "The CSR's signature does not verify: it was not signed by the key it contains.",
                "Build it again with make_csr(key, ...), using the same key throughout.",
            )
        try:
            san_ext: x509.SubjectAlternativeName | None = csr.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
        except x509.ExtensionNotFound:
            cn = _cn(csr.subject)
            san_ext = x509.SubjectAlternativeName([_general_name(cn)]) if cn else None
        if san_ext is None:
            raise PKIError(
                "The CSR names nothing: it has neither a subjectAltName nor a Common Name.",
                "Pass names to make_csr(key, 'host.example').",
            )
        nb, na = _validity(not_before, not_after, DEFAULT_LEAF_LIFETIME)
        public_key = csr.public_key()
        return _build_certificate(
            subject=csr.subject,
            public_key=public_key,
            issuer=self._issuer,
            not_before=nb,
            not_after=na,
            extensions=[
                *_leaf_extensions(public_key, san_ext, csr.subject, usages, False),
                *extensions,
            ],
        )

    # --- revocation (RFC 5280 §5)
    def revoke(
        self,
        cert_or_serial: x509.Certificate | Leaf | int,
        reason: x509.ReasonFlags | str | None = None,
    ) -> None:
        """Put a certificate (or a bare serial number) on this CA's next CRL."""
        if isinstance(cert_or_serial, Leaf):
            cert_or_serial = cert_or_serial.cert
        if isinstance(cert_or_serial, x509.Certificate):
            if cert_or_serial.issuer != self.cert.subject:
                raise PKIError(
                    f"This certificate was issued by {_cn(cert_or_serial.issuer)!r}, "
                    f"not by {_cn(self.cert.subject)!r}.",
                    "Revoke it at the CA that issued it: a CRL only speaks for its own issuer.",
                )
            serial = cert_or_serial.serial_number
        else:
            serial = int(cert_or_serial)
        flag: x509.ReasonFlags | None
        if isinstance(reason, str):
            flag = _REASONS.get(reason.lower().replace(" ", "_").replace("-", "_"))
            if flag is None:
                raise PKIError(
                    f"Unknown revocation reason {reason!r}.",
                    "Use one of: " + ", ".join(sorted(_REASONS)) + ".",
                )
        else:
            flag = reason
        self._revoked[serial] = (_now(), flag)

    @property
    def revoked(self) -> list[int]:
        """Serial numbers revoked so far."""
        return list(self._revoked)

    def crl(self, days: int = 7) -> x509.CertificateRevocationList:
        """A fresh CRL, valid for ``days``, listing every serial revoked so far.

        CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
        TBSCertList ::= SEQUENCE { version, signature, issuer, thisUpdate, nextUpdate,
                                   revokedCertificates, crlExtensions [0] } (RFC 5280 §5.1)
        """
        now = _now()
        self._crl_number += 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            # thisUpdate is backdated like certificates, so a slow clock accepts it.
            .last_update(now - BACKDATE)
            .next_update(now + _dt.timedelta(days=days))
            # RFC 5280 §5.2.1: conforming CRLs MUST carry authorityKeyIdentifier ...
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski_of(self.cert)),
                critical=False,
            )
            # ... and §5.2.3: a monotonically increasing cRLNumber, so a client can tell
            # a newer CRL from an older one an attacker replays.
            .add_extension(x509.CRLNumber(self._crl_number), critical=False)
        )
        for serial, (when, flag) in self._revoked.items():
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            if flag is not None and flag is not x509.ReasonFlags.unspecified:
                # RFC 5280 §5.3.1: reasonCode, non-critical (and omitted for "unspecified").
                entry = entry.add_extension(x509.CRLReason(flag), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, _signature_hash(self.key))

    def crl_pem(self, days: int = 7) -> bytes:
        return self.crl(days).public_bytes(serialization.Encoding.PEM)

    # --- files and contexts
    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        """Make ``ctx`` trust the root this CA chains to (the root only: that is what
        a trust store holds)."""
        ctx.load_verify_locations(cadata=self.root.cert_pem.decode("ascii"))

    def write(
        self, directory: str | os.PathLike[str], name: str = "ca", password: Password = None
    ) -> CertFiles:
        """Write ``<name>-cert.pem``, ``<name>-key.pem`` (0600) and ``<name>-chain.pem``
        (this CA up to the root)."""
        return _write_files(directory, name, self.cert, self.chain, self.key, password)

    # --- display
    def card(self) -> CertificateCard:
        from ..cards import CertificateCard

        return CertificateCard(self.cert)

    def _repr_html_(self) -> str:
        return self.card()._repr_html_()

    def __repr__(self) -> str:
        kind = (
            "root"
            if self.parent is None
            else f"intermediate under {_cn(self.parent.cert.subject)!r}"
        )
        return f"<CA {_cn(self.cert.subject)!r} ({kind})>"
