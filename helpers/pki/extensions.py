"""Which extensions a CA and a leaf carry, and why (RFC 5280 §4.2; notebook 04).

A version 3 certificate carries *extensions*, each marked critical or not. A verifier
that meets a critical extension it does not understand must reject the certificate;
a non-critical one it may ignore. The two profiles below are what strict verifiers
(Python 3.13's ``VERIFY_X509_STRICT``, browsers) demand:

* a CA: critical basicConstraints ``CA:TRUE`` (with an optional path length) and a
  critical keyUsage ``keyCertSign, cRLSign, digitalSignature``; optionally a critical
  nameConstraints that fences in which names it may ever vouch for (the lab root does);
* a leaf: critical basicConstraints ``CA:FALSE``, a critical keyUsage
  ``digitalSignature`` (plus ``keyEncipherment`` for RSA), extendedKeyUsage
  ``serverAuth``/``clientAuth``, and the subjectAltName with its names.

The key identifiers every certificate also carries (subjectKeyIdentifier,
authorityKeyIdentifier) are added where the certificate is signed:
:mod:`helpers.pki.signing`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import PKIError

_USAGES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}


def _permitted_subtree(name: str | x509.GeneralName) -> x509.GeneralName:
    """One permitted subtree (RFC 5280 §4.2.1.10).

    ``"lab.localhost"`` permits that DNS name and every name under it; an address or a
    block (``"127.0.0.1"``, ``"127.0.0.0/8"``, ``"::1/128"``) permits those addresses.
    A ready-made :class:`x509.GeneralName` is taken as it is (``x509.DNSName("1.2.3.4")``
    when a dNSName subtree must look like an address: see the lab root in
    ``helpers/lab/build.py``).
    """
    if isinstance(name, x509.GeneralName):
        return name
    text = str(name).strip()
    try:
        return x509.IPAddress(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        if "/" in text or ":" in text:
            raise PKIError(
                f"{name!r} is not an address block ({exc}).",
                'Write it as network/prefix with the host bits zero: "127.0.0.0/8", "::1/128".',
            ) from None
    label = text.rstrip(".").lower()
    if not label or label.startswith(("*", ".")) or " " in label:
        raise PKIError(
            f"{name!r} is not a DNS subtree.",
            'Give a domain such as "lab.localhost": it permits that name and every name under it.',
        )
    return x509.DNSName(label)


def _name_constraints(permitted: Sequence[str | x509.GeneralName]) -> x509.NameConstraints:
    """A nameConstraints extension that permits only ``permitted`` (RFC 5280 §4.2.1.10).

    NameConstraints ::= SEQUENCE {
         permittedSubtrees       [0]     GeneralSubtrees OPTIONAL,
         excludedSubtrees        [1]     GeneralSubtrees OPTIONAL }

    Every certificate below this CA, at any depth, must name only things inside the
    permitted subtrees *of the same type*: with a dNSName ``lab.localhost`` and the
    iPAddress blocks ``127.0.0.0/8`` and ``::1/128``, a leaf for ``www.bank.example`` or
    ``192.0.2.1`` fails verification even though the CA signed it. Clients (OpenSSL,
    Chromium, ``cryptography``'s verifier) enforce this on the root too, so a lab root
    that ends up trusted somewhere it should not be can still only vouch for lab names.
    """
    return x509.NameConstraints(
        permitted_subtrees=[_permitted_subtree(n) for n in permitted], excluded_subtrees=None
    )


def key_usage(*bits: str) -> x509.KeyUsage:
    """``KeyUsage`` with only the named bits set, e.g. ``key_usage("digital_signature")``.

    RFC 5280 §4.2.1.3 lists nine bits; cryptography wants all nine spelled out, which
    hides the one or two that matter. Names are the constructor's keyword arguments.
    """
    names = (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
    )  # fmt: skip
    unknown = set(bits) - set(names)
    if unknown:
        raise PKIError(f"Unknown keyUsage bit {sorted(unknown)[0]!r}.", f"Use one of {names}.")
    return x509.KeyUsage(**{name: name in bits for name in names})


def _ca_extensions(
    path_length: int | None, permitted: Sequence[str | x509.GeneralName] = ()
) -> list[tuple[x509.ExtensionType, bool]]:
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
            key_usage("digital_signature", "key_cert_sign", "crl_sign"),
            True,
        ),
        # RFC 5280 §4.2.1.10: "Conforming CAs MUST mark this extension as critical", so
        # a client that cannot enforce the fence refuses the chain instead of ignoring it.
        *([(_name_constraints(permitted), True)] if permitted else []),
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
            key_usage(
                "digital_signature",
                *(["key_encipherment"] if isinstance(public_key, rsa.RSAPublicKey) else []),
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
