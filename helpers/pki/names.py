"""The names a certificate carries: its subject and its subjectAltName (notebook 04).

A leaf certificate names its holder twice. The *subject* is an X.500 distinguished
name (``CN=www.example.com, O=...``), a relic of the 1990s directory; the
*subjectAltName* extension (RFC 5280 §4.2.1.6) lists typed names: ``dNSName`` for host
names and wildcards, ``iPAddress`` for addresses. Clients match the host they dialled
against the SAN; the Common Name is for humans (and for Python's fallback, below).

This module turns the strings a caller passes (``"www.lab.localhost"``,
``"*.wild.lab.localhost"``, ``"127.0.0.1"``, an internationalised name) into those
structures, and reads them back out of a certificate for display.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..errors import PKIError


def _dns_ascii(name: str) -> str:
    """A DNS name as it goes into a certificate: ASCII, internationalised labels as
    ``xn--`` A-labels (RFC 5280 §7.2 requires the A-label form in dNSName)."""
    if name.isascii():
        return name
    return ".".join(
        label if label == "*" else label.encode("idna").decode("ascii") for label in name.split(".")
    )


def _general_name(name: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> x509.GeneralName:
    # RFC 5280 §4.2.1.6: an IP address goes in an iPAddress entry (4 or 16 raw bytes),
    # never as text in a dNSName; clients connecting to "127.0.0.1" look only there.
    if isinstance(name, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return x509.IPAddress(name)
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(_dns_ascii(name))


def _subject(common_name: str | None, organization: str | None = None) -> x509.Name:
    attrs = []
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if common_name:
        if len(common_name) > 64:  # ub-common-name, RFC 5280 Appendix A.1
            raise PKIError(
                f"A Common Name is limited to 64 characters; {common_name[:20]!r}... has {len(common_name)}.",
                "Pass a shorter common_name= (the full name belongs in the SAN anyway).",
            )
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _leaf_subject_and_san(
    names: Sequence[str], common_name: str | None, san: bool
) -> tuple[x509.Name, x509.SubjectAlternativeName | None]:
    """Subject and subjectAltName for a leaf.

    SAN vs Common Name: the subject's CN is where names lived in the 1990s. RFC 2818
    (2000) moved them to the subjectAltName extension, typed (DNS name vs IP address),
    and RFC 9525 tells clients to ignore the CN entirely. Browsers stopped reading it in
    2017 (Chrome 58). Python still falls back to the CN when a certificate has no SAN
    (``SSLContext.hostname_checks_common_name``, True by default), which is why the
    course can show a CN-only certificate (``san=False``) working in Python and failing
    in a browser.
    """
    if not names and (san or not common_name):
        raise PKIError(
            "A leaf certificate needs at least one name.",
            'Pass names, e.g. issue("www.lab.localhost", "127.0.0.1").',
        )
    if common_name is None and names:
        first = str(names[0])
        common_name = first if len(first) <= 64 else None  # long names live in the SAN only
    subject = _subject(common_name)
    if not san:
        return subject, None
    return subject, x509.SubjectAlternativeName([_general_name(n) for n in names])


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _san_strings(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(g.value) for g in san if isinstance(g, (x509.DNSName, x509.IPAddress))]
