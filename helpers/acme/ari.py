"""ACME Renewal Information: when should this certificate be renewed? (RFC 9773; notebook 10).

Theory of operation
-------------------
A client that renews "30 days before expiry" breaks the day lifetimes shrink (a 6-day
certificate is never 30 days from expiry), and a million clients that all renew at the
same moment knock the CA over. ARI lets the CA *say* when to renew:

1. The directory has a ``renewalInfo`` URL (RFC 9773 §3).
2. The client builds the certificate's **CertID** from the certificate alone (§4.1)::

       base64url(AKI keyIdentifier) "." base64url(serial number's DER content octets)

   and sends an unauthenticated ``GET renewalInfo/<CertID>``.
3. The answer is a **suggested window** (§4.2) and a ``Retry-After`` header saying when
   to ask again::

       {"suggestedWindow": {"start": "2026-12-20T00:00:00Z", "end": "2026-12-22T00:00:00Z"},
        "explanationURL": "https://ca.example/why"}   (optional)

4. The client picks a time *uniformly at random* inside the window (so renewals spread
   out) and renews then. If the window is already in the past, "renew now": that is how
   a CA that must revoke certificates early (a mis-issuance) gets every client to
   replace them within hours.
5. The new order names the certificate it replaces (``"replaces": CertID``, §5), so the
   CA can link old and new (and exempt it from rate limits).

Without ARI, a client should renew at about **two thirds** of the lifetime
(:func:`two_thirds`): Let's Encrypt's advice, and what certbot does for short-lived
certificates. The lab CA suggests ``[2/3, 3/4]`` of the lifetime (:func:`suggested_window`).
"""

from __future__ import annotations

import datetime as _dt
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from ..errors import ParseError
from .jws import b64url, b64url_decode

__all__ = [
    "RenewalWindow",
    "cert_id",
    "format_time",
    "parse_cert_id",
    "parse_time",
    "serial_octets",
    "suggested_window",
    "two_thirds",
]


def serial_octets(serial: int) -> bytes:
    """The content octets of the serial number's DER INTEGER (X.690 §8.3).

    Big-endian two's complement in the fewest bytes: a leading ``00`` is added when the
    top bit is set, so the number stays positive (``0x87654321`` -> ``00 87 65 43 21``).
    """
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def cert_id(cert: x509.Certificate) -> str:
    """The ARI CertID of ``cert`` (RFC 9773 §4.1): AKI keyIdentifier "." serial.

    Both parts are base64url without padding. The AKI names the *issuer's* key and the
    serial is unique per issuer, so together they name one certificate; a certificate
    without an AKI keyIdentifier has no CertID (:class:`ParseError`).
    """
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        aki = None
    if aki is None or aki.key_identifier is None:
        raise ParseError(
            "this certificate has no authorityKeyIdentifier keyIdentifier, so it has no ARI CertID",
            "ARI needs it (RFC 9773 §4.1); certificates from the lab CA always carry one.",
        )
    return f"{b64url(aki.key_identifier)}.{b64url(serial_octets(cert.serial_number))}"


def parse_cert_id(text: str) -> tuple[bytes, int]:
    """``(AKI keyIdentifier, serial)`` from a CertID; :class:`ParseError` if malformed."""
    parts = text.split(".")
    if len(parts) != 2 or not all(parts):
        raise ParseError(
            f"{text[:80]!r} is not an ARI CertID",
            'A CertID is two base64url parts joined by "." (RFC 9773 §4.1).',
        )
    key_id, serial = b64url_decode(parts[0]), b64url_decode(parts[1])
    if serial and serial[0] & 0x80:
        raise ParseError(
            "the CertID's serial is negative",
            "Serials are positive DER INTEGERs: a leading 00 byte keeps the top bit clear.",
        )
    return key_id, int.from_bytes(serial, "big")


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(text: str) -> _dt.datetime:
    """An RFC 3339 timestamp as an aware UTC datetime (``Z``, offsets, up to ns digits)."""
    if not isinstance(text, str):
        raise ParseError("a timestamp must be a string", "Use RFC 3339: 2026-12-06T08:00:00Z.")
    cleaned = _FRACTION.sub(r"\1", text.strip()).replace("z", "Z")
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        when = _dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise ParseError(
            f"{text[:60]!r} is not an RFC 3339 timestamp", "Write it like 2026-12-06T08:00:00Z."
        ) from None
    if when.tzinfo is None:
        raise ParseError(f"{text[:60]!r} has no time zone", "RFC 3339 times end in Z or an offset.")
    return when.astimezone(_dt.UTC)


def format_time(when: _dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, whole seconds (as ACME servers send)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RenewalWindow:
    """A suggested renewal window (RFC 9773 §4.2): renew at a random time in [start, end)."""

    start: _dt.datetime
    end: _dt.datetime
    explanation_url: str | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ParseError(
                "a renewal window must end after it starts",
                "RFC 9773 §4.2: a client treats such a window as invalid.",
            )

    def pick(self, rng: random.Random | None = None) -> _dt.datetime:
        """A time chosen uniformly at random in the window (RFC 9773 §4.2), so that the
        clients of one CA do not all renew at the same second."""
        span = (self.end - self.start).total_seconds()
        return self.start + _dt.timedelta(seconds=(rng or random).uniform(0, span))

    def contains(self, when: _dt.datetime) -> bool:
        return self.start <= when < self.end

    def as_json(self) -> dict[str, Any]:
        """The renewalInfo response body (RFC 9773 §4.2)."""
        doc: dict[str, Any] = {
            "suggestedWindow": {"start": format_time(self.start), "end": format_time(self.end)}
        }
        if self.explanation_url:
            doc["explanationURL"] = self.explanation_url
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RenewalWindow:
        """Read a renewalInfo response; :class:`ParseError` if it is not one."""
        window = doc.get("suggestedWindow") if isinstance(doc, Mapping) else None
        if not isinstance(window, Mapping) or "start" not in window or "end" not in window:
            raise ParseError(
                "the renewalInfo answer has no suggestedWindow with start and end",
                "RFC 9773 §4.2 requires both.",
            )
        url = doc.get("explanationURL")
        return cls(
            parse_time(window["start"]),
            parse_time(window["end"]),
            url if isinstance(url, str) else None,
        )


def _validity(cert: x509.Certificate) -> tuple[_dt.datetime, _dt.datetime]:
    return cert.not_valid_before_utc, cert.not_valid_after_utc


#: The fraction of its lifetime after which a certificate is due for renewal: ACME clients
#: renew at about two thirds (certbot: 30 days before the end of 90). The one definition
#: of the rule: the cards (helpers/cards.py) and the expiry plots (helpers/plots/status.py)
#: use it too.
RENEW_AT = 2 / 3


def two_thirds(cert: x509.Certificate) -> _dt.datetime:
    """``not_before`` plus two thirds (:data:`RENEW_AT`) of the lifetime: when to renew without ARI.

    (notAfter is inclusive in X.509, RFC 5280 §4.1.2.5; one second does not matter here.)
    """
    nb, na = _validity(cert)
    return nb + (na - nb) * RENEW_AT


def suggested_window(cert: x509.Certificate) -> RenewalWindow:
    """The lab CA's policy: from 2/3 to 3/4 of the lifetime (a 90-day certificate: day 60
    to day 67.5; a 160-hour one: hour 106.7 to hour 120)."""
    nb, na = _validity(cert)
    return RenewalWindow(nb + (na - nb) * 2 / 3, nb + (na - nb) * 3 / 4)
